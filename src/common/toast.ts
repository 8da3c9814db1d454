import { Notification } from '@jupyterlab/apputils';

import { describeError } from '../request';
import { INotice, NOTICE_ACTION_LABELS, NoticeAction } from './notify';

/**
 * What each of a toast's buttons does.
 */
export type NoticeHandlers = Partial<
  Record<NoticeAction, () => Promise<unknown> | void>
>;

/**
 * Show `notice` as a toast whose buttons run `handlers`; an action that
 * fails is reported in a toast of its own.
 */
export function showNotice(notice: INotice, handlers: NoticeHandlers): void {
  Notification.emit(notice.message, notice.type, {
    autoClose: notice.autoClose,
    actions: notice.actions.map(action => ({
      label: NOTICE_ACTION_LABELS[action],
      callback: () =>
        void Promise.resolve(handlers[action]?.()).catch(reason =>
          Notification.error(describeError(reason))
        )
    }))
  });
}
