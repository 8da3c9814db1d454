/**
 * Which toasts af-lab shows. The sections show every mount and publish job
 * of the user, from any session; a toast is only for what *this* browser
 * session started, when it needs the user or has a next step (open the
 * folder, insert code, retry, show the published data).
 */

/**
 * The ids of mounts and publish jobs started from this browser session.
 */
export class OwnActions {
  add(id: string | null | undefined): void {
    if (id) {
      this._ids.add(id);
    }
  }

  has(id: string): boolean {
    return this._ids.has(id);
  }

  private _ids = new Set<string>();
}

/**
 * What a toast offers, in this order.
 */
export type NoticeAction =
  'open-folder' | 'insert-code' | 'retry' | 'show' | 'show-in-data';

export interface INotice {
  type: 'success' | 'error' | 'warning';
  message: string;
  actions: NoticeAction[];
  /**
   * Milliseconds, or false: stays until the user closes it.
   */
  autoClose: number | false;
}

const ACTIVE_MOUNT = ['queued', 'fetching', 'replicating'];

/**
 * The toast for a mount that changed from `before` (undefined: just
 * created) to its current state, or null.
 */
export function mountNotice(
  mount: {
    id: string;
    did: string;
    state: string;
    target: string;
    message?: string;
  },
  before: string | undefined,
  own: boolean
): INotice | null {
  if (!own || before === mount.state) {
    return null;
  }
  if (
    mount.state === 'ready' &&
    (before === undefined || ACTIVE_MOUNT.includes(before))
  ) {
    return {
      type: 'success',
      message: `${mount.did} is mounted at ${mount.target}.`,
      actions: ['open-folder', 'insert-code'],
      autoClose: 8000
    };
  }
  if (mount.state === 'failed') {
    return {
      type: 'error',
      message: `Mounting ${mount.did} failed: ${
        mount.message || 'see the Mounts section'
      }`,
      actions: ['retry', 'show'],
      autoClose: false
    };
  }
  return null;
}

/**
 * The toast for a publish job of this session that reached `job.state`
 * (from another state), or null.
 */
export function publishNotice(
  job: {
    id: string;
    state: string;
    did?: string | null;
    noop?: boolean;
    message?: string;
    error?: { message?: string } | null;
  },
  title: string,
  own: boolean
): INotice | null {
  if (!own) {
    return null;
  }
  const why = job.error?.message ?? job.message ?? '';
  switch (job.state) {
    case 'done':
      return {
        type: 'success',
        message: job.noop
          ? `Already published: ${title} (nothing new to copy).`
          : `Published ${title}.`,
        actions: job.did ? ['show-in-data', 'show'] : ['show'],
        autoClose: 8000
      };
    case 'failed':
      return {
        type: 'error',
        message: `Publishing ${title} failed: ${why}`,
        actions: ['retry', 'show'],
        autoClose: false
      };
    case 'interrupted':
      return {
        type: 'warning',
        message: `Publishing ${title} was interrupted: ${why}`,
        actions: ['retry', 'show'],
        autoClose: false
      };
    default:
      return null;
  }
}

/**
 * The button label of each action.
 */
export const NOTICE_ACTION_LABELS: Record<NoticeAction, string> = {
  'open-folder': 'Open folder',
  'insert-code': 'Insert code',
  retry: 'Retry',
  show: 'Show',
  'show-in-data': 'Show in Data'
};
