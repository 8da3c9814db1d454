import {
  copyIcon,
  folderIcon,
  notebookIcon,
  refreshIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import React, { useEffect, useRef, useState } from 'react';
import { ActionButton } from '../common/ActionButton';
import {
  ErrorNotice,
  LoadingOrError,
  RefreshButton,
  RefreshFailed
} from '../common/feedback';
import { useRetryCountdown } from '../common/useRetryCountdown';
import { useSignal } from '../common/useSignal';
import { formatBytes, percent, plural } from '../common/units';
import { explainMountError, IExplainedError } from './errors';
import { isActive, MountsModel } from './model';
import { ICacheUsage, IMount, IUnmountResult } from './types';
import { Progress, RuleLine } from './MountProgress';

export { Progress } from './MountProgress';
/**
 * What the Mounts view asks its host (the plugin) to do.
 */
export interface IMountActions {
  openFolder(mount: IMount): Promise<void>;
  insertCode(mount: IMount): Promise<void>;
  /**
   * Copy text to the clipboard (the host tells the user).
   */
  copy(text: string, what: string): Promise<void>;
  /**
   * Every file path (or URL) of a mount, one per line.
   */
  paths(mount: IMount): Promise<string>;
  /**
   * The mount's fileset (JSON text).
   */
  fileset(mount: IMount): Promise<string>;
  /**
   * Ask the user to confirm an unmount.
   */
  confirmUnmount(mount: IMount): Promise<boolean>;
}

export interface IMountsPanelProps {
  model: MountsModel;
  actions: IMountActions;
  /**
   * A mount to scroll to and point at (e.g. after "Show in Mounts").
   */
  highlight?: string | null;
  active?: boolean;
}

export const STATE_LABELS: Record<string, string> = {
  queued: 'Queued',
  fetching: 'Fetching',
  replicating: 'Replicating',
  ready: 'Ready',
  failed: 'Failed',
  cancelled: 'Cancelled'
};

const MODE_LABELS: Record<string, string> = {
  cache: 'cache (local copies)',
  stream: 'stream (root:// fileset)',
  replica: 'replica (in place)'
};

/**
 * The "Mounts" section: every mount with its live progress and actions,
 * and the cache usage.
 */
export function MountsPanel(props: IMountsPanelProps): JSX.Element {
  const { model, actions, highlight = null, active = true } = props;
  useSignal(model.changed);
  useEffect(() => {
    if (active) {
      model.start();
    }
  }, [active, model]);

  const mounts = model.mounts;
  const phase = model.loaded
    ? 'ready'
    : model.error !== null
      ? 'error'
      : 'loading';

  return (
    <div
      className="jp-AFLab-panel jp-AFLab-MountsPanel"
      data-phase={phase}
      data-connection={model.connection.state}
    >
      <div className="jp-AFLab-panel-header jp-AFLab-Mounts-header">
        <CacheSummary cache={model.cache} />
        <div className="jp-AFLab-Mounts-headerActions">
          <Connection model={model} />
          <RefreshButton
            onClick={() => void model.refresh()}
            loading={model.loading}
            title="Read the list of mounts again"
            ariaLabel="Refresh the mounts"
            label="Refresh"
          />
        </div>
      </div>
      <LoadingOrError
        phase={phase}
        className="jp-AFLab-placeholder"
        loading="Loading your mounts…"
        errorTitle="Could not list your mounts"
        error={model.error}
        onRetry={() => void model.refresh()}
        retrying={model.loading}
      />
      {phase === 'ready' && model.error !== null && (
        <RefreshFailed error={model.error} />
      )}
      {phase === 'ready' && mounts.length === 0 && (
        <div className="jp-AFLab-placeholder">
          Nothing is mounted yet. Click <strong>Mount</strong> on a dataset in
          the Data section: its files are fetched once into the shared cache,
          verified, and appear as a folder under <code>af-data/</code> in the
          file browser.
        </div>
      )}
      {mounts.length > 0 && (
        <ul className="jp-AFLab-mountList" aria-label="Mounts">
          {mounts.map(mount => (
            <MountCard
              key={mount.id}
              mount={mount}
              model={model}
              actions={actions}
              highlighted={mount.id === highlight}
            />
          ))}
        </ul>
      )}
    </div>
  );
}

function Connection(props: { model: MountsModel }): JSX.Element {
  const { model } = props;
  const status = model.connection;
  const seconds = useRetryCountdown(status);
  let label: string;
  let title: string;
  switch (status.state) {
    case 'open':
      label = 'Live';
      title = 'Progress is pushed by the server as it happens';
      break;
    case 'retrying':
      label = `Reconnecting in ${seconds} s`;
      title = `The live connection was lost (${status.error ?? 'unknown reason'}); the list is re-read every few seconds meanwhile.`;
      break;
    case 'connecting':
      label = 'Connecting…';
      title = 'Opening the live connection to the server';
      break;
    default:
      label = 'Offline';
      title = 'No live connection';
  }
  return (
    <span className="jp-AFLab-Mounts-connection" data-state={status.state}>
      {status.state === 'retrying' ? (
        <button
          type="button"
          className="jp-AFLab-linkButton"
          title={`${title} Click to reconnect now.`}
          onClick={() => model.reconnect()}
        >
          {label}
        </button>
      ) : (
        <span title={title}>{label}</span>
      )}
    </span>
  );
}

/**
 * "1.2 GiB of 54 GiB cache used" with a meter and the details on hover.
 */
export function CacheSummary(props: {
  cache: ICacheUsage | null;
}): JSX.Element {
  const { cache } = props;
  if (!cache) {
    return <span className="jp-AFLab-Mounts-cache">Cache: –</span>;
  }
  const pct = percent(cache.used_bytes, cache.quota_bytes);
  const title = [
    `Shared cache at ${cache.path}`,
    `${formatBytes(cache.used_bytes)} used of ${formatBytes(cache.quota_bytes)} (${plural(cache.files, 'file')})`,
    `${formatBytes(cache.pinned_bytes)} held by mounts, ${formatBytes(cache.evictable_bytes)} can be evicted`,
    `${formatBytes(cache.available_bytes)} available for new mounts`,
    `${formatBytes(cache.disk_free_bytes)} free on the disk`
  ].join('\n');
  return (
    <span className="jp-AFLab-Mounts-cache" title={title}>
      <span className="jp-AFLab-Mounts-cacheText">
        Cache {formatBytes(cache.used_bytes)} of{' '}
        {formatBytes(cache.quota_bytes)} · {formatBytes(cache.available_bytes)}{' '}
        free
      </span>
      <span
        className="jp-AFLab-bar jp-AFLab-meter"
        role="meter"
        aria-label="Cache used"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
      >
        <span className="jp-AFLab-bar-fill" style={{ width: `${pct}%` }} />
      </span>
    </span>
  );
}

function MountCard(props: {
  mount: IMount;
  model: MountsModel;
  actions: IMountActions;
  highlighted: boolean;
}): JSX.Element {
  const { mount, model, actions, highlighted } = props;
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<IExplainedError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [result, setResult] = useState<IUnmountResult | null>(null);
  const ref = useRef<HTMLLIElement>(null);
  const doneTimer = useRef(0);

  useEffect(() => {
    if (highlighted) {
      ref.current?.scrollIntoView({ block: 'nearest' });
    }
  }, [highlighted]);
  useEffect(() => () => window.clearTimeout(doneTimer.current), []);

  const run = async (
    name: string,
    action: () => Promise<string | void>,
    verb: string
  ) => {
    setBusy(name);
    setError(null);
    try {
      const message = await action();
      if (message) {
        setDone(message);
        window.clearTimeout(doneTimer.current);
        doneTimer.current = window.setTimeout(() => setDone(null), 4000);
      }
    } catch (reason) {
      setError(explainMountError(reason, verb));
    } finally {
      setBusy(null);
    }
  };

  const name = mount.did.slice(mount.did.indexOf(':') + 1);
  const scope = mount.did.slice(0, mount.did.indexOf(':'));
  const running = isActive(mount);
  const ready = mount.state === 'ready';
  const canRetry =
    mount.state === 'failed' ||
    mount.state === 'cancelled' ||
    (ready && mount.files.failed > 0);

  return (
    <li
      ref={ref}
      className={`jp-AFLab-mount${highlighted ? ' jp-mod-highlighted' : ''}`}
      data-mount-id={mount.id}
      data-state={mount.state}
      data-did={mount.did}
      aria-label={`${mount.did}: ${STATE_LABELS[mount.state] ?? mount.state}`}
    >
      <div className="jp-AFLab-mount-head">
        <span className="jp-AFLab-mount-name" title={mount.did}>
          {name}
        </span>
        <span
          className="jp-AFLab-badge jp-AFLab-mountState"
          data-state={mount.state}
          title={mount.message || undefined}
        >
          {STATE_LABELS[mount.state] ?? mount.state}
        </span>
      </div>
      <div
        className="jp-AFLab-mount-sub"
        title={`${mount.did} on ${mount.instance}`}
      >
        {scope} · {mount.did_type} · {MODE_LABELS[mount.mode] ?? mount.mode}
      </div>
      <Progress mount={mount} />
      {mount.message && (
        <div className="jp-AFLab-mount-message" title={mount.message}>
          {mount.message}
        </div>
      )}
      {mount.warning && (
        <div className="jp-AFLab-notice jp-mod-warning jp-AFLab-mount-warning">
          {mount.warning}
        </div>
      )}
      {mount.rule && <RuleLine mount={mount} />}
      {mount.problems.length > 0 && (
        <details className="jp-AFLab-mount-problems">
          <summary>
            {mount.files.failed > 0
              ? `${plural(mount.files.failed, 'file')} failed`
              : `${plural(mount.problems.length, 'problem')}, recovered`}
          </summary>
          <ul>
            {mount.problems.map((p, i) => (
              <li key={`${p.path}-${i}`}>
                <code>{p.path}</code>: {p.error}
              </li>
            ))}
          </ul>
        </details>
      )}
      <div
        className="jp-AFLab-mount-target"
        title={
          ready
            ? `${mount.target} (in your workspace)`
            : `${mount.target} appears when the mount is complete`
        }
      >
        <folderIcon.react tag="span" className="jp-AFLab-button-icon" />
        <span>{mount.target}</span>
      </div>
      <div className="jp-AFLab-mount-actions">
        <ActionButton
          icon={folderIcon}
          label="Open folder"
          disabled={!ready || busy !== null}
          onClick={() =>
            void run('open', () => actions.openFolder(mount), 'Open')
          }
          title={
            ready
              ? `Show ${mount.target} in the file browser`
              : 'Available once the mount is ready'
          }
        />
        <ActionButton
          icon={notebookIcon}
          label="Insert code"
          disabled={busy !== null}
          onClick={() =>
            void run('code', () => actions.insertCode(mount), 'Insert code')
          }
          title="Insert Python code that reads this mount into the current notebook (a new one if none is open)"
        />
        <ActionButton
          icon={copyIcon}
          label="Copy paths"
          busyLabel="Copying…"
          busy={busy === 'paths'}
          disabled={busy !== null || mount.files.done === 0}
          onClick={() =>
            void run(
              'paths',
              async () => {
                const text = await actions.paths(mount);
                const n = text ? text.split('\n').length : 0;
                await actions.copy(text, plural(n, 'path'));
                return `Copied ${plural(n, 'path')}`;
              },
              'Copy paths'
            )
          }
          title="Copy the path (or URL) of every file, one per line"
        />
        <ActionButton
          icon={copyIcon}
          label="Copy fileset"
          busyLabel="Copying…"
          busy={busy === 'fileset'}
          disabled={busy !== null || mount.files.done === 0}
          onClick={() =>
            void run(
              'fileset',
              async () => {
                const text = await actions.fileset(mount);
                await actions.copy(text, 'the fileset');
                return 'Copied the fileset (JSON)';
              },
              'Copy fileset'
            )
          }
          title="Copy the coffea/uproot fileset (JSON): {dataset: {files: {path: tree}}}"
        />
        {running && (
          <ActionButton
            icon={stopIcon}
            label="Cancel"
            busyLabel="Cancelling…"
            busy={busy === 'cancel'}
            disabled={busy !== null}
            onClick={() =>
              void run(
                'cancel',
                () => model.cancel(mount.id).then(() => undefined),
                'Cancel'
              )
            }
            title="Stop fetching (files already verified stay in the cache)"
          />
        )}
        {canRetry && (
          <ActionButton
            icon={refreshIcon}
            label="Retry"
            busyLabel="Retrying…"
            busy={busy === 'retry'}
            disabled={busy !== null}
            onClick={() =>
              void run(
                'retry',
                () => model.retry(mount.id).then(() => undefined),
                'Retry'
              )
            }
            title="Fetch the failed files again (replicas are listed anew)"
          />
        )}
        <ActionButton
          className="jp-AFLab-mount-unmount"
          minimal
          label="Unmount"
          busyLabel="Unmounting…"
          busy={busy === 'unmount'}
          disabled={busy !== null}
          onClick={() =>
            void run(
              'unmount',
              async () => {
                if (!(await actions.confirmUnmount(mount))) {
                  return;
                }
                const removed = await model.remove(mount.id);
                setResult(removed);
              },
              'Unmount'
            )
          }
          title={`Remove ${mount.target} from your workspace (your own files are never deleted)`}
        />
      </div>
      {done && (
        <div className="jp-AFLab-mount-done" role="status">
          {done}
        </div>
      )}
      {result && result.kept.length > 0 && (
        <div className="jp-AFLab-notice jp-mod-warning" role="status">
          Kept {plural(result.kept.length, 'file')} of yours:{' '}
          {result.kept.join(', ')}
        </div>
      )}
      {error && (
        <ErrorNotice
          title={error.title}
          message={error.message}
          facts={error.facts}
        />
      )}
    </li>
  );
}
