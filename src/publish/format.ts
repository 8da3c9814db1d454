import { formatBytes, plural } from '../common/units';
import { IPublishJob, JobPhase, JobState } from './types';

/**
 * `30` → `30 days`, `1` → `1 day`, `0.5` → `0.5 days`.
 */
export function formatDays(days: number | null | undefined): string {
  if (days === null || days === undefined) {
    return 'no expiry';
  }
  return `${days} ${days === 1 ? 'day' : 'days'}`;
}

/**
 * What the state badge says.
 */
export const STATE_LABELS: Record<JobState, string> = {
  queued: 'Queued',
  running: 'Running',
  interrupted: 'Interrupted',
  done: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled'
};

/**
 * What each phase means for the user, while the job runs.
 */
export const PHASE_LABELS: Record<JobPhase, string> = {
  checking: 'Checking files (checksums)',
  copying: 'Copying to storage',
  registering: 'Registering in Rucio',
  protecting: 'Creating the replication rule',
  finishing: 'Attaching and recording provenance',
  'rolling back': 'Rolling back',
  ended: 'Ended'
};

export const PHASE_ORDER: JobPhase[] = [
  'checking',
  'copying',
  'registering',
  'protecting',
  'finishing'
];

export function isActive(job: IPublishJob): boolean {
  return job.state === 'queued' || job.state === 'running';
}

export function isEnded(job: IPublishJob): boolean {
  return (
    job.state === 'done' || job.state === 'failed' || job.state === 'cancelled'
  );
}

/**
 * Progress as a fraction (0..1) and a line of text, for the current phase:
 * checksums while checking, bytes copied afterwards.
 */
export function jobProgress(job: IPublishJob): {
  fraction: number | null;
  text: string;
} {
  const p = job.progress ?? {
    files_done: 0,
    bytes_done: 0,
    files_skipped: 0,
    bytes_hashed: 0
  };
  const total = job.bytes_total || 0;
  const files = `${p.files_done} of ${plural(job.files_total, 'file')}`;
  if (job.state === 'queued') {
    return {
      fraction: null,
      text: `${plural(job.files_total, 'file')}, ${formatBytes(total)}`
    };
  }
  if (job.phase === 'checking') {
    const fraction = total > 0 ? p.bytes_hashed / total : null;
    return {
      fraction,
      text: `${formatBytes(p.bytes_hashed)} of ${formatBytes(total)} checked`
    };
  }
  const skipped =
    p.files_skipped > 0 ? ` (${p.files_skipped} already in Rucio)` : '';
  if (job.phase === 'copying') {
    const fraction = total > 0 ? p.bytes_done / total : null;
    return {
      fraction,
      text: `${files} · ${formatBytes(p.bytes_done)} of ${formatBytes(total)}${skipped}`
    };
  }
  return {
    fraction: total > 0 ? Math.min(1, p.bytes_done / total) : null,
    text: `${files} · ${formatBytes(p.bytes_done)} of ${formatBytes(total)}${skipped}`
  };
}

/**
 * A short title for a job: its main DID, else its first path.
 */
export function jobTitle(job: IPublishJob): string {
  if (job.did) {
    return job.did;
  }
  const paths = job.request?.paths ?? [];
  if (paths.length === 0) {
    return `Job ${job.id}`;
  }
  return paths.length === 1
    ? paths[0]
    : `${paths[0]} and ${paths.length - 1} more`;
}
