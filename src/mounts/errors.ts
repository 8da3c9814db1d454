import { AFLabRequestError, describeError } from '../request';
import { formatBytes, plural } from '../common/units';

/**
 * A server error explained for the user: a title, the server's own message,
 * the facts in its typed details, and a list (e.g. files) when it has one.
 */
export interface IExplainedError {
  title: string;
  /**
   * The server's error type (`no_replica`, `conflict`, ...), or ''.
   */
  kind: string;
  /**
   * The key facts in a few words (e.g. "needs 790 GiB, 66 GiB free"), or ''.
   */
  summary: string;
  message: string;
  facts: string[];
  items: string[];
  /**
   * The user has to log in to Rucio first.
   */
  needsCredentials: boolean;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/**
 * Explain an error of a mount request (create, cancel, retry, unmount).
 */
export function explainMountError(
  error: unknown,
  action = 'Mount'
): IExplainedError {
  const out: IExplainedError = {
    title: `${action} failed`,
    kind: error instanceof AFLabRequestError ? error.type : '',
    summary: '',
    message: describeError(error),
    facts: [],
    items: [],
    needsCredentials: false
  };
  if (!(error instanceof AFLabRequestError)) {
    return out;
  }
  const d = error.details;
  switch (error.type) {
    case 'insufficient_storage': {
      out.title = 'Not enough room in the cache';
      const needed = num(d.needed_bytes);
      const available = num(d.available_bytes);
      const quota = num(d.quota_bytes);
      const pinned = num(d.pinned_bytes);
      const disk = num(d.disk_free_bytes);
      if (needed !== null) {
        out.facts.push(`needs ${formatBytes(needed)}`);
      }
      if (available !== null) {
        out.facts.push(`${formatBytes(available)} can be made free`);
      }
      if (quota !== null) {
        out.facts.push(`quota ${formatBytes(quota)}`);
      }
      if (pinned !== null) {
        out.facts.push(`${formatBytes(pinned)} held by mounts`);
      }
      if (disk !== null) {
        out.facts.push(`${formatBytes(disk)} free on disk`);
      }
      if (needed !== null && available !== null) {
        out.summary = `needs ${formatBytes(needed)}, ${formatBytes(available)} free`;
      }
      break;
    }
    case 'no_replica': {
      out.title = 'Some files have no readable replica';
      if (Array.isArray(d.files)) {
        out.items = d.files.map(f =>
          typeof f === 'string'
            ? f
            : f && typeof f === 'object' && 'name' in f
              ? String((f as any).did ?? (f as any).name)
              : JSON.stringify(f)
        );
        out.summary =
          out.items.length >= 10
            ? `${out.items.length}+ files`
            : plural(out.items.length, 'file');
      }
      break;
    }
    case 'credentials':
      out.title = 'Rucio needs your login';
      out.needsCredentials = true;
      break;
    case 'not_found':
      out.title = 'Not found';
      break;
    case 'conflict':
      out.title = `Cannot ${action.toLowerCase()}`;
      break;
    case 'bad_request':
      out.title = 'The server refused the request';
      if (typeof d.field === 'string') {
        out.facts.push(`field: ${d.field}`);
      }
      break;
    case 'unavailable':
      out.title = 'A facility service is unreachable';
      break;
    default:
      break;
  }
  if (error.status > 0) {
    out.facts.push(`HTTP ${error.status}`);
  }
  return out;
}
