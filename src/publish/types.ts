/**
 * The JSON shapes of the Publish routes (`af_lab/publish/handlers.py`).
 */

/**
 * One scope the account owns. Embargoed scopes need a group claim; when the
 * user's token lacks it, `allowed` is false and `reason` says why.
 */
export interface IScopeOption {
  scope: string;
  embargoed: boolean;
  allowed: boolean;
  group?: string;
  reason?: string;
}

/**
 * One RSE the account may write to. A null quota means "no limit" (e.g. an
 * admin account without a quota entry).
 */
export interface IRSEOption {
  rse: string;
  default: boolean;
  quota_bytes: number | null;
  used_bytes: number;
  free_bytes: number | null;
}

/**
 * Rucio's naming rules (regular expressions as Python writes them; the ones
 * Rucio uses are also valid JavaScript).
 */
export interface INamingRules {
  pattern: string;
  max_length: number;
  scope_pattern: string;
  scope_max_length: number;
}

/**
 * `GET publish/options`: what the dialog offers.
 */
export interface IPublishOptions {
  instance: string;
  instances: { name: string; display_name: string }[];
  account: string;
  scopes: IScopeOption[];
  rses: IRSEOption[];
  defaults: {
    scope: string | null;
    rse: string | null;
    lifetime_days: number | null;
    allow_no_lifetime: boolean;
  };
  naming: INamingRules;
}

/**
 * The body of `POST publish/validate` and `POST publish/jobs`.
 */
export interface IPublishRequest {
  paths: string[];
  instance?: string;
  scope?: string;
  rse?: string;
  lifetime_days?: number | null;
  dataset?: string | null;
  container?: string | null;
  name?: string | null;
  name_prefix?: string;
  notebook?: string | null;
  inputs?: string[];
  cluster_profile?: string | null;
  allow_empty?: boolean;
}

/**
 * A dataset or container the job attaches to; `new` when it will be created.
 */
export interface ICollectionRef {
  did: string;
  new: boolean;
}

/**
 * `POST publish/validate`: what a publish would do (dry run).
 */
export interface IPublishPlan {
  instance: string;
  account: string;
  scope: string;
  rse: string;
  lifetime_days: number | null;
  dataset: ICollectionRef | null;
  container: ICollectionRef | null;
  files_total: number;
  bytes_total: number;
  files_already_named: number;
  /**
   * The first 50 DID names.
   */
  names: string[];
  /**
   * Hidden and checkpoint paths left out.
   */
  skipped: string[];
  quota: {
    needed_bytes?: number;
    used_bytes?: number;
    limit_bytes?: number | null;
    admin?: boolean;
  };
  warnings: string[];
}

export type JobState =
  'queued' | 'running' | 'interrupted' | 'done' | 'failed' | 'cancelled';

export type JobPhase =
  | 'checking'
  | 'copying'
  | 'registering'
  | 'protecting'
  | 'finishing'
  | 'rolling back'
  | 'ended';

/**
 * The server's error object as a job carries it.
 */
export interface IJobError {
  type: string;
  message: string;
  suggestion?: string;
  [key: string]: unknown;
}

/**
 * Where a published DID came from.
 */
export interface IProvenance {
  notebook?: string | null;
  git_commit?: string | null;
  git_dirty?: boolean | null;
  inputs?: string[];
  cluster_profile?: string | null;
  af_lab_version?: string;
  published_at?: string;
  published_by?: string;
  publish_job?: string;
  source?: string;
  [key: string]: unknown;
}

/**
 * A publish job, as listed and as pushed on the `publish` event topic.
 */
export interface IPublishJob {
  id: string;
  state: JobState;
  phase: JobPhase;
  message: string;
  created: number;
  updated: number;
  account?: string;
  user?: string | null;
  request: IPublishRequest & { instance?: string; scope?: string };
  dataset: ICollectionRef | null;
  container: ICollectionRef | null;
  /**
   * The main DID: the dataset, or the single file; null for several loose
   * files.
   */
  did: string | null;
  files_total: number;
  bytes_total: number;
  progress: {
    files_done: number;
    bytes_done: number;
    files_skipped: number;
    bytes_hashed: number;
  };
  rule_ids?: string[];
  rules_total?: number;
  rule_state?: string | null;
  expires_at?: string | null;
  lifetime_s?: number | null;
  provenance?: IProvenance;
  provenance_in_rucio?: boolean | null;
  warnings?: string[];
  skipped_paths?: string[];
  error: IJobError | null;
  resumable?: boolean;
  noop?: boolean;
}

/**
 * One file of a job (`GET publish/jobs/<id>`).
 */
export interface IJobFile {
  path: string;
  did: string;
  bytes: number;
  adler32: string | null;
  state: string;
  error: string | null;
}

export interface IJobDetail {
  job: IPublishJob;
  offset: number;
  files: IJobFile[];
}

/**
 * `GET publish/provenance?did=`.
 */
export interface IProvenanceAnswer {
  did: string;
  source: 'rucio' | 'af-lab';
  provenance: IProvenance;
}
