/**
 * The shapes of the Rucio browsing and credentials REST contracts
 * (af_lab/rucio/handlers.py, af_lab/vault/handlers.py).
 */

export type DIDType = 'container' | 'dataset' | 'file';

/**
 * The `type` filter of a DID search.
 */
export type SearchType =
  'all' | 'collection' | 'container' | 'dataset' | 'file';

export interface IRucioInstance {
  name: string;
  display_name: string;
  auth_type: string;
  account: string | null;
  rucio_host: string;
  webui_url: string | null;
  default: boolean;
}

export interface IReplica {
  rse: string;
  /**
   * Rucio's replica state: AVAILABLE, UNAVAILABLE, COPYING, BEING_DELETED,
   * BAD, TEMPORARY_UNAVAILABLE.
   */
  state: string;
}

/**
 * A search hit, a collection member or (with replicas) a file.
 */
export interface IDIDItem {
  scope: string;
  name: string;
  did: string;
  type: DIDType | string;
  bytes: number | null;
  length: number | null;
  adler32?: string | null;
  md5?: string | null;
  replicas?: IReplica[];
}

/**
 * One page of a listing (`dids`, `content`, `replicas`).
 */
export interface IPage<T> {
  items: T[];
  /**
   * The next page, or null on the last page.
   */
  cursor: string | null;
  /**
   * Rucio has sent everything.
   */
  complete: boolean;
  /**
   * Rows fetched so far on the server.
   */
  count: number;
  /**
   * The number of rows, once complete.
   */
  total: number | null;
  cached_at: number;
  expires_at: number;
}

export interface IRSEAvailability {
  rse: string;
  files: number;
  bytes: number;
  files_available: number;
  bytes_available: number;
}

export interface IAvailability {
  /**
   * Every replica was counted.
   */
  complete: boolean;
  /**
   * False when the server did not count (big collections, ask `full`).
   */
  computed?: boolean;
  files_scanned: number;
  rses: IRSEAvailability[];
  message?: string;
}

/**
 * `GET instances/<inst>/dids/<did>`.
 */
export interface IDIDDetails {
  did: string;
  scope: string;
  name: string;
  type: DIDType | string;
  bytes: number | null;
  length: number | null;
  account?: string | null;
  open?: boolean | null;
  adler32?: string | null;
  md5?: string | null;
  replicas?: IReplica[];
  availability?: IAvailability;
}

/**
 * One instance in `GET /af-lab/credentials`. Never a secret.
 */
export interface ICredentialStatus {
  instance: string;
  display_name: string;
  auth_type: string;
  account: string | null;
  logged_in: boolean;
  expires_at: number | null;
  vault_reachable: boolean | null;
  source?: string;
  message: string;
}

export interface ICredentialsAnswer {
  vault: {
    reachable: boolean;
    logged_in: boolean;
    user?: string;
    auth?: string;
    expires_at?: number | null;
    message?: string;
  } | null;
  instances: ICredentialStatus[];
}

/**
 * The body of `PUT /af-lab/credentials/<instance>`.
 */
export type CredentialsBody =
  | {
      auth_type: 'userpass';
      username: string;
      password: string;
      account?: string;
    }
  | { auth_type: 'oidc'; token: string };
