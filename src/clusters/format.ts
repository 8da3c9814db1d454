/**
 * Wording shared by the Clusters view (pure functions, unit-tested).
 */
import { ClusterState, ICluster, IJobCounts, IJobsResponse } from './types';
import { plural } from '../common/units';

export const CLUSTER_STATE_LABELS: Record<ClusterState, string> = {
  starting: 'Starting',
  running: 'Running',
  stopping: 'Shutting down',
  stopped: 'Stopped',
  failed: 'Failed'
};

export const CLUSTER_STATE_HELP: Record<ClusterState, string> = {
  starting: 'The scheduler and the first workers are starting.',
  running: 'The scheduler runs; workers connect to it as they start.',
  stopping: 'Workers, batch jobs and the scheduler are being stopped.',
  stopped: 'The cluster ended; the message says why. Dismiss it when done.',
  failed: 'The cluster failed; the message says why. Dismiss it when done.'
};

/**
 * `12` → "12 s", `75` → "1 min 15 s", `3700` → "1 h 1 min".
 */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    const rest = s % 60;
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  const h = Math.floor(m / 60);
  const rest = m % 60;
  return rest ? `${h} h ${rest} min` : `${h} h`;
}

/**
 * The per-worker resources a cluster was created with, e.g.
 * "1 core · 2.00 GiB memory · 4.00 GiB disk per worker".
 */
export function describeWorkerOptions(cluster: ICluster): string {
  const o = cluster.options;
  if (!o) {
    return '';
  }
  const parts = [plural(o.cores, 'core'), `${o.memory} memory`];
  if (o.disk) {
    parts.push(`${o.disk} disk`);
  }
  if (o.gpus) {
    parts.push(plural(o.gpus, 'GPU'));
  }
  return `${parts.join(' · ')} per worker`;
}

/**
 * The line that says what the cluster is doing right now, or null when it is
 * settled. `now` in ms.
 */
export function progressText(cluster: ICluster, now: number): string | null {
  const since = cluster.pending?.since
    ? ` (${formatDuration(now / 1000 - cluster.pending.since)})`
    : '';
  switch (cluster.state) {
    case 'starting':
      return cluster.backend !== 'local'
        ? 'Starting the scheduler and submitting the first jobs…'
        : 'Starting the scheduler and the first workers…';
    case 'stopping':
      return 'Shutting down…';
    case 'running':
      if (cluster.workers < cluster.requested_workers) {
        const verb =
          cluster.backend !== 'local'
            ? 'Waiting for workers'
            : 'Starting workers';
        return `${verb}: ${cluster.workers} of ${cluster.requested_workers} connected${since}`;
      }
      if (cluster.workers > cluster.requested_workers && !cluster.adapt) {
        return `Stopping workers: ${cluster.workers} connected, ${cluster.requested_workers} wanted…`;
      }
      return null;
    default:
      return null;
  }
}

/**
 * Why some requested workers are not there, from the job counts; null when
 * every requested worker is connected (or nothing can be said).
 */
export function explainMissingWorkers(
  cluster: ICluster,
  jobs: IJobsResponse | null | undefined
): string | null {
  if (cluster.state !== 'running') {
    return null;
  }
  const missing = cluster.requested_workers - cluster.workers;
  if (missing <= 0) {
    return null;
  }
  const counts = jobs?.counts;
  if (!counts) {
    return null;
  }
  const reasons: string[] = [];
  if (counts.held > 0) {
    reasons.push(
      `${plural(counts.held, 'job')} ${counts.held === 1 ? 'is' : 'are'} held by HTCondor and will not start until released or removed`
    );
  }
  if (counts.idle > 0) {
    reasons.push(
      `${plural(counts.idle, 'job')} ${counts.idle === 1 ? 'waits' : 'wait'} in the queue for a free slot`
    );
  }
  const runningNotConnected = (jobs?.jobs ?? []).filter(
    j => j.status === 'running' && !j.connected
  ).length;
  if (runningNotConnected > 0) {
    reasons.push(
      `${plural(runningNotConnected, 'job')} ${runningNotConnected === 1 ? 'runs' : 'run'}, ${runningNotConnected === 1 ? 'its worker is' : 'their workers are'} connecting`
    );
  }
  if (reasons.length === 0) {
    return null;
  }
  const lead =
    cluster.workers === 0
      ? `No worker yet: `
      : `${plural(missing, 'worker')} missing: `;
  return lead + reasons.join('; ') + '.';
}

/**
 * The job counts worth showing, in a fixed order, without zeros (except
 * running, which is always shown).
 */
export function jobCountEntries(
  counts: IJobCounts,
  backend = 'htcondor'
): { key: keyof IJobCounts; label: string; value: number }[] {
  const order: { key: keyof IJobCounts; label: string }[] = [
    { key: 'running', label: 'running' },
    // Each batch system's own word for a job waiting in the queue.
    { key: 'idle', label: backend === 'htcondor' ? 'idle' : 'pending' },
    { key: 'held', label: 'held' },
    { key: 'done', label: 'done' }
  ];
  return order
    .map(o => ({ ...o, value: counts[o.key] ?? 0 }))
    .filter(o => o.value > 0 || o.key === 'running');
}

/**
 * The distinct hold reasons of a cluster's held jobs, each with its count.
 */
export function holdReasons(
  jobs: IJobsResponse | null | undefined
): { reason: string; count: number }[] {
  const byReason = new Map<string, number>();
  for (const job of jobs?.jobs ?? []) {
    if (job.status === 'held') {
      const reason = job.hold_reason || 'no reason given';
      byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
    }
  }
  return Array.from(byReason, ([reason, count]) => ({ reason, count }));
}
