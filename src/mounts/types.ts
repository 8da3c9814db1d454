/**
 * The shapes of the mounts REST contract (af_lab/mounts/handlers.py).
 */

export type MountMode = 'cache' | 'stream' | 'replica';

export type MountState =
  'queued' | 'fetching' | 'replicating' | 'ready' | 'failed' | 'cancelled';

/**
 * States in which a background job runs (cancel applies).
 */
export const ACTIVE_STATES: readonly MountState[] = [
  'queued',
  'fetching',
  'replicating'
];

export interface IMountRule {
  id: string;
  rse: string;
  state: string;
  locks_ok_cnt: number;
  locks_replicating_cnt: number;
  locks_stuck_cnt: number;
  locks_total: number;
  expires_at: number | null;
}

export interface IMountProblem {
  path: string;
  error: string;
}

/**
 * One mount as `GET /af-lab/mounts` and the `mounts/<id>` events send it.
 */
export interface IMount {
  id: string;
  did: string;
  did_type: 'file' | 'dataset' | 'container';
  instance: string;
  mode: MountMode;
  source: string;
  state: MountState;
  message: string;
  /**
   * Workspace-relative path: the folder (or link, or fileset file).
   */
  target: string;
  created: number;
  updated: number;
  finished: number | null;
  files: { total: number; done: number; failed: number; active: number };
  bytes: { total: number; done: number; failed: number };
  rate_bytes_per_s: number;
  eta_s: number | null;
  active: { path: string; bytes: number; bytes_done: number }[];
  problems: IMountProblem[];
  /**
   * Why the mount, though ready, would not read now (a stream mount whose
   * XCache did not answer the last status probe); null when nothing is known
   * against it.
   */
  warning?: string | null;
  timings?: Record<string, number>;
  rule?: IMountRule;
  /**
   * Stream mode: the workspace path of the fileset file.
   */
  fileset?: string;
}

/**
 * One file of a mount (`GET mounts/<id>/files`).
 */
export interface IMountFile {
  path: string;
  did: string;
  bytes: number;
  adler32: string | null;
  state: string;
  source: string | null;
  error: string | null;
  /**
   * The local path of the link, or the root:// URL (stream); null until done.
   */
  location: string | null;
}

/**
 * The shared cache (`GET mounts/cache`).
 */
export interface ICacheUsage {
  path: string;
  quota_bytes: number;
  used_bytes: number;
  pinned_bytes: number;
  evictable_bytes: number;
  reserved_bytes: number;
  available_bytes: number;
  disk_free_bytes: number;
  files: number;
  files_fetched?: number;
  bytes_fetched?: number;
  files_evicted?: number;
  bytes_evicted?: number;
  checksum_mismatches?: number;
}

/**
 * The body of `POST /af-lab/mounts`.
 */
export interface IMountRequest {
  did: string;
  mode?: MountMode;
  instance?: string;
  target?: string;
  source?: 'auto' | 'xcache' | 'direct';
  prefer_rses?: string[];
  format?: 'json' | 'yaml';
  treename?: string;
  rse?: string;
  request_rule?: boolean;
  lifetime_days?: number;
  refresh?: boolean;
}

/**
 * The answer of `DELETE /af-lab/mounts/<id>`.
 */
export interface IUnmountResult {
  removed: string;
  target: string;
  kept: string[];
  notes: string[];
}

/**
 * What a `mounts/<id>` event carries when a mount is gone.
 */
export interface IMountRemoved {
  id: string;
  state: 'removed';
}
