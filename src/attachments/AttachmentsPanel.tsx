import { closeIcon, refreshIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { ActionButton } from '../common/ActionButton';
import { useSignal } from '../common/useSignal';
import { attachmentKey } from './metadata';
import { AttachmentsModel, remountBlocked } from './model';
import { AttachmentState, IAttachment } from './types';

export const STATE_LABELS: Record<AttachmentState, string> = {
  mounted: 'Mounted',
  mounting: 'Mounting',
  stale: 'Stale',
  not_mounted: 'Not mounted',
  gone: 'Gone from Rucio',
  invalid: 'Invalid',
  unknown: 'Unknown'
};

const MODE_WORDS: Record<string, string> = {
  cache: 'cached copies',
  stream: 'stream fileset',
  replica: 'replicas in place'
};

/**
 * "Data used by this notebook": the DIDs the current notebook recorded, what
 * became of each, one-click re-mount and remove-from-list.
 */
export function AttachmentsPanel(props: {
  model: AttachmentsModel;
}): JSX.Element {
  const { model } = props;
  useSignal(model.changed);
  const notebook = model.notebook;
  const list = model.attachments;
  return (
    <div
      className="jp-AFLab-panel jp-AFLab-AttachmentsPanel"
      aria-busy={model.loading}
    >
      <div className="jp-AFLab-panel-header jp-AFLab-Attachments-header">
        <span className="jp-AFLab-Attachments-notebook" title={notebook?.path}>
          {notebook ? notebook.path.split('/').pop() : 'No notebook'}
        </span>
        <ActionButton
          icon={refreshIcon}
          label="Check again"
          minimal
          disabled={!notebook || list.length === 0 || model.loading}
          title="Ask Rucio and the mounts again what became of each DID"
          onClick={() => void model.refresh(true)}
        />
      </div>
      {model.error && (
        <div className="jp-AFLab-error" role="alert">
          {model.error}
        </div>
      )}
      {!notebook ? (
        <div className="jp-AFLab-placeholder">
          Open a notebook to see the data it uses.
        </div>
      ) : list.length === 0 ? (
        <div className="jp-AFLab-placeholder">
          No data recorded for this notebook yet: mount a DID from it (%rucio
          mount), insert its code or drag it in from the Data section.
        </div>
      ) : (
        <ul
          className="jp-AFLab-attachmentList"
          aria-label="Data used by this notebook"
        >
          {list.map(a => (
            <AttachmentRow
              key={attachmentKey(a)}
              model={model}
              attachment={a}
            />
          ))}
        </ul>
      )}
    </div>
  );
}

function AttachmentRow(props: {
  model: AttachmentsModel;
  attachment: IAttachment;
}): JSX.Element {
  const { model, attachment } = props;
  const resolved = model.resolved(attachment);
  const state = resolved?.state;
  const label = state ? STATE_LABELS[state] : 'Checking…';
  const blocked = remountBlocked(resolved);
  const busy = model.busy(attachment);
  const failure = model.actionError(attachment);
  const reasonId = `jp-AFLab-attachment-${attachmentKey(attachment).replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return (
    <li
      className="jp-AFLab-attachment"
      data-state={state ?? 'checking'}
      data-did={attachment.did}
      aria-label={`${attachment.did}: ${label}`}
    >
      <div className="jp-AFLab-attachment-head">
        <span className="jp-AFLab-attachment-name" title={attachment.did}>
          {attachment.did}
        </span>
        <span
          className="jp-AFLab-badge jp-AFLab-attachmentState"
          data-state={state ?? 'checking'}
        >
          {label}
        </span>
      </div>
      <div className="jp-AFLab-attachment-sub">
        {MODE_WORDS[attachment.mode] ?? attachment.mode}
        {attachment.instance ? ` · ${attachment.instance}` : ''}
      </div>
      {resolved?.message && (
        <div className="jp-AFLab-attachment-message" id={`${reasonId}-msg`}>
          {resolved.message}
        </div>
      )}
      {failure && (
        <div className="jp-AFLab-error" role="alert">
          {failure}
        </div>
      )}
      <div className="jp-AFLab-attachment-actions">
        <ActionButton
          label={state === 'stale' ? 'Re-mount' : 'Mount'}
          busy={busy}
          busyLabel="Mounting…"
          disabled={blocked !== null || busy}
          title={
            blocked ??
            `Mount ${attachment.did} as ${MODE_WORDS[attachment.mode] ?? attachment.mode}`
          }
          onClick={() => void model.remount(attachment)}
        />
        <ActionButton
          icon={closeIcon}
          label="Remove from list"
          minimal
          title={`Take ${attachment.did} off this notebook's list (its mount stays)`}
          onClick={() => model.remove(attachment)}
        />
      </div>
      {blocked && state && state !== 'mounted' && (
        <div className="jp-AFLab-attachment-reason" id={reasonId}>
          Cannot mount: {blocked}
        </div>
      )}
    </li>
  );
}
