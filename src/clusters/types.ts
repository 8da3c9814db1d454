/**
 * The REST model of `<baseUrl>/af-lab/clusters` (see the contract at the top
 * of `af_lab/clusters/handlers.py`).
 */

/**
 * The life of a cluster. `stopped` and `failed` clusters stay listed until
 * they are dismissed (DELETE), so the user sees why a cluster ended.
 */
export type ClusterState =
  'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/**
 * The states in which a cluster can be scaled, used and shut down.
 */
export const LIVE_STATES: ReadonlyArray<ClusterState> = ['starting', 'running'];

export interface IAdaptBounds {
  minimum: number;
  maximum: number;
}

/**
 * The validated options a cluster was created with (per worker, plus the
 * initial size).
 */
export interface IClusterOptions {
  cores: number;
  memory: string;
  disk: string | null;
  gpus: number;
  image: string | null;
  universe: string | null;
  workers: number;
  adapt: IAdaptBounds | null;
}

/**
 * The bearer token shipped to the workers; null when none is shipped.
 */
export interface IWorkerToken {
  state: 'ok' | 'expiring' | 'unavailable';
  expires_at: number | null;
  refreshed_at?: number;
  message: string;
}

/**
 * One cluster, as `GET /af-lab/clusters[/<id>]` reports it.
 */
export interface ICluster {
  id: string;
  name: string;
  /**
   * The profile's name (e.g. `local`, `htcondor`).
   */
  profile: string;
  backend: 'local' | 'htcondor' | string;
  state: ClusterState;
  /**
   * Why it is stopped or failed, or that it was reattached after a restart.
   */
  message: string;
  options: IClusterOptions;
  scheduler_address: string;
  /**
   * The scheduler's own dashboard (loopback only): do not open this one.
   */
  dashboard_link: string;
  /**
   * The dashboard as the browser should open it: proxied by the Jupyter
   * server under `<baseUrl>dask/dashboard/<id>/status`, or the direct link
   * when dask-labextension's server extension is not enabled.
   */
  dashboard_url: string;
  /**
   * Connected workers.
   */
  workers: number;
  /**
   * Workers asked for (started or submitted), connected or not.
   */
  requested_workers: number;
  cores: number;
  memory: string;
  memory_bytes: number;
  adapt: IAdaptBounds | null;
  pending: { workers: number; since: number | null } | null;
  warnings: string[];
  token: IWorkerToken | null;
  /**
   * Seconds since the epoch.
   */
  created: number;
}

export interface IClustersResponse {
  clusters: ICluster[];
}

/**
 * HTCondor job counts of one cluster.
 */
export interface IJobCounts {
  submitted: number;
  idle: number;
  running: number;
  held: number;
  done: number;
}

export type JobStatus =
  'idle' | 'running' | 'held' | 'suspended' | 'done' | 'removed' | 'completed';

export interface IJob {
  job_id: string;
  /**
   * The Dask worker name the job runs; null for a job af-lab did not submit.
   */
  worker: string | null;
  connected: boolean;
  status: JobStatus | string;
  since: number | null;
  hold_reason: string | null;
}

/**
 * `GET /af-lab/clusters/<id>/jobs`. `counts` is null for a local cluster
 * (no batch jobs).
 */
export interface IJobsResponse {
  cluster: string;
  backend: string;
  queried_at: number;
  counts: IJobCounts | null;
  jobs: IJob[];
  message: string;
}

/**
 * The subset of JSON Schema (draft 7) the profiles' option forms use.
 */
export interface ISchemaProperty {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  pattern?: string;
  properties?: Record<string, ISchemaProperty>;
  required?: string[];
  additionalProperties?: boolean;
  /**
   * af-lab's extension for byte sizes given as strings ("4 GiB").
   */
  'x-maximum-bytes'?: number;
}

export interface IFormSchema extends ISchemaProperty {
  properties: Record<string, ISchemaProperty>;
}

export interface IProfileLimits {
  max_workers?: number;
  max_cores?: number;
  max_memory?: string;
  max_disk?: string;
  max_gpus?: number;
  max_clusters?: number;
  images?: string[];
  universes?: string[];
}

export interface IProfile {
  name: string;
  display_name: string;
  description: string;
  backend: 'local' | 'htcondor' | string;
  limits: IProfileLimits;
  schema: IFormSchema;
}

/**
 * `GET /af-lab/clusters/profiles`.
 */
export interface IProfilesResponse {
  default: string;
  profiles: IProfile[];
  /**
   * Profiles the site configured wrongly (left out), written for admins.
   */
  errors: string[];
}

/**
 * The body of `POST /af-lab/clusters`.
 */
export interface ICreateClusterBody {
  profile?: string;
  name?: string;
  cores?: number;
  memory?: string;
  disk?: string;
  gpus?: number;
  image?: string;
  universe?: string;
  workers?: number;
  adapt?: IAdaptBounds | null;
  [key: string]: unknown;
}
