/**
 * What the Clusters view keeps per cluster besides the cluster (operations
 * and what their cards say, errors, job states, creations), how a creation
 * is matched to the cluster the server lists for it, what a server event
 * says, and the form field a server error names.
 */
import { plural } from '../common/units';
import {
  IAdaptBounds,
  ICluster,
  ICreateClusterBody,
  IJobsResponse,
  IProfile,
  LIVE_STATES
} from './types';

/**
 * An action running on one cluster; the card shows it with a spinner.
 */
export interface IOperation {
  kind: 'scale' | 'adapt' | 'shutdown' | 'dismiss';
  /**
   * What the card says while it runs, e.g. "Asking for 2 workers…".
   */
  text: string;
  startedAt: number;
}

/**
 * A failed action on one cluster, shown on its card until dismissed.
 */
export interface IOperationError {
  /**
   * e.g. "Scaling to 2 workers failed".
   */
  title: string;
  error: unknown;
  at: number;
}

/**
 * An action about to start, and the title of its error if it fails.
 */
export interface IPlannedOperation {
  op: IOperation;
  failure: string;
}

/**
 * Scaling to `workers`.
 */
export function scaleOperation(
  workers: number,
  startedAt: number
): IPlannedOperation {
  return {
    op: {
      kind: 'scale',
      text: `Asking for ${plural(workers, 'worker')}…`,
      startedAt
    },
    failure: `Scaling to ${plural(workers, 'worker')} failed`
  };
}

/**
 * Starting or changing adaptive scaling, or stopping it (`null`).
 */
export function adaptOperation(
  bounds: IAdaptBounds | null,
  startedAt: number
): IPlannedOperation {
  const text = bounds
    ? `Switching to adaptive scaling (${bounds.minimum}–${bounds.maximum} workers)…`
    : 'Stopping adaptive scaling…';
  const title = bounds
    ? 'Adaptive scaling could not be set'
    : 'Adaptive scaling could not be stopped';
  return { op: { kind: 'adapt', text, startedAt }, failure: title };
}

/**
 * Shutting a cluster down, or dismissing a stopped/failed one.
 */
export function shutdownOperation(
  cluster: ICluster | undefined,
  startedAt: number
): IPlannedOperation {
  const live = !cluster || LIVE_STATES.includes(cluster.state);
  return {
    op: {
      kind: live ? 'shutdown' : 'dismiss',
      text: live
        ? cluster?.backend !== 'local'
          ? 'Shutting down: removing the batch jobs and stopping the scheduler…'
          : 'Shutting down: stopping the workers and the scheduler…'
        : 'Removing…',
      startedAt
    },
    failure: live ? 'Shutting down failed' : 'Removing the cluster failed'
  };
}

/**
 * The HTCondor jobs of a cluster, as last fetched.
 */
export interface IJobsState {
  data: IJobsResponse | null;
  error: unknown;
  loading: boolean;
  /**
   * When the last attempt ended (ms), 0 before.
   */
  at: number;
}

/**
 * A cluster being created (POST in flight) or whose creation failed.
 */
export interface ICreation {
  key: number;
  profile: IProfile | null;
  profileName: string;
  /**
   * The requested name, or the server's once the cluster appears in the list.
   */
  name: string;
  body: ICreateClusterBody;
  startedAt: number;
  state: 'creating' | 'failed';
  error: unknown;
  /**
   * The cluster ids that existed before this creation started.
   */
  knownIds: Set<string>;
}

/**
 * What the view asks the sidebar to show (from a command).
 */
export type UIRequest =
  { kind: 'create'; profile?: string } | { kind: 'scale'; id: string };

/**
 * The form field a server error names (`error.field`), if any.
 */
export function fieldOf(error: unknown): string | null {
  if (
    typeof error === 'object' &&
    error !== null &&
    'details' in error &&
    'status' in error &&
    (error as { status: number }).status === 400
  ) {
    const field = (error as { details: Record<string, unknown> }).details.field;
    return typeof field === 'string' && field ? field : null;
  }
  return null;
}

/**
 * The placeholder for a cluster whose creation is starting now.
 */
export function newCreation(
  key: number,
  profileName: string,
  profile: IProfile | null,
  name: string,
  body: ICreateClusterBody,
  startedAt: number,
  clusters: readonly ICluster[] | null
): ICreation {
  return {
    key,
    profile,
    profileName,
    name: name.trim(),
    body,
    startedAt,
    state: 'creating',
    error: null,
    knownIds: new Set((clusters ?? []).map(c => c.id))
  };
}

/**
 * The body of the POST that creates the cluster a creation stands for.
 */
export function creationRequest(creation: ICreation): ICreateClusterBody {
  const request: ICreateClusterBody = {
    ...creation.body,
    profile: creation.profileName
  };
  if (creation.name) {
    request.name = creation.name;
  }
  return request;
}

/**
 * The running creation a listed cluster stands for, if any: a starting
 * cluster of the same profile (and name, when one was asked for) that did
 * not exist when the creation started.
 */
export function creationFor(
  creations: readonly ICreation[],
  cluster: ICluster
): ICreation | undefined {
  if (cluster.state !== 'starting') {
    return undefined;
  }
  return creations.find(
    c =>
      c.state === 'creating' &&
      c.profileName === cluster.profile &&
      !c.knownIds.has(cluster.id) &&
      (!c.name || c.name === cluster.name)
  );
}

/**
 * Give running creations that asked for no name the server's name once a
 * matching cluster is listed (updates them in place).
 */
export function adoptListedNames(
  creations: readonly ICreation[],
  clusters: readonly ICluster[]
): void {
  for (const c of creations) {
    const match = clusters.find(
      k =>
        k.state === 'starting' &&
        k.profile === c.profileName &&
        !c.knownIds.has(k.id)
    );
    if (match && c.state === 'creating' && !c.name) {
      c.name = match.name;
    }
  }
}

/**
 * What a `clusters/<id>` or `clusters/<id>/jobs` server event says; null for
 * another topic or a malformed event.
 */
export type ClusterEvent =
  | { kind: 'cluster'; id: string; cluster: ICluster }
  | { kind: 'removed'; id: string }
  | { kind: 'jobs'; id: string; jobs: IJobsResponse };

export function readClusterEvent(
  topic: string,
  data: unknown
): ClusterEvent | null {
  const match = /^clusters\/([^/]+)(\/jobs)?$/.exec(topic);
  if (!match || !data || typeof data !== 'object') {
    return null;
  }
  const id = match[1];
  if (match[2]) {
    return { kind: 'jobs', id, jobs: data as IJobsResponse };
  }
  const cluster = data as ICluster;
  if (cluster.id !== id) {
    return null;
  }
  return (cluster.state as string) === 'removed'
    ? { kind: 'removed', id }
    : { kind: 'cluster', id, cluster };
}
