/**
 * The state of one facility service, as `GET /af-lab/status` reports it.
 */
export type ServiceState =
  'connected' | 'unreachable' | 'error' | 'not_configured';

/**
 * One service in the answer of `GET /af-lab/status`.
 */
export interface IServiceStatus {
  /**
   * Stable id, e.g. `rucio:demo`.
   */
  id: string;
  /**
   * Display name, e.g. `Rucio (Demo)`.
   */
  name: string;
  state: ServiceState;
  /**
   * What the check found, written for the user.
   */
  message: string;
  /**
   * Extra facts (endpoint, version, account, ...).
   */
  details?: Record<string, unknown>;
  /**
   * Round-trip time of the check; null when nothing was measured.
   */
  latency_ms: number | null;
}

/**
 * The answer of `GET /af-lab/status`.
 */
export interface IStatusResponse {
  services: IServiceStatus[];
}
