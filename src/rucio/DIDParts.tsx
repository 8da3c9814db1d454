/**
 * The parts of a DID row: its name cut in the middle, its mount state and
 * Mount button, its replica badges, and its availability line.
 */
import { Button, caretDownIcon, folderIcon } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';
import { useSignal } from '../common/useSignal';
import { formatBytes, formatCount, percent, plural } from '../common/units';
import { isActive } from '../mounts/model';
import { IMount } from '../mounts/types';
import { describeError } from '../request';
import { key as detailsKey } from './details';
import { mountIcon } from './icons';
import { ITreeNode } from './tree';
import { IAvailability, IDIDItem, IReplica } from './types';
import { IDataActions, INDENT, IRowProps } from './rows';

/**
 * A name cut in the middle when it does not fit, so its end (file number,
 * extension, version) stays readable: `Run2012B_DoubleMu…_000.root`. The
 * whole text is in the tooltip and read by screen readers.
 */
export function MiddleEllipsis(props: {
  text: string;
  title: string;
  className?: string;
}): JSX.Element {
  const { text, title, className } = props;
  const tail = tailLength(text);
  return (
    <span
      className={`jp-AFLab-middleEllipsis ${className ?? ''}`.trim()}
      title={title}
    >
      <span className="jp-AFLab-srOnly">{text}</span>
      <span className="jp-AFLab-middleEllipsis-head" aria-hidden="true">
        {text.slice(0, text.length - tail)}
      </span>
      {tail > 0 && (
        <span className="jp-AFLab-middleEllipsis-tail" aria-hidden="true">
          {text.slice(text.length - tail)}
        </span>
      )}
    </span>
  );
}

/**
 * How much of a name's end to keep visible when it is cut: from the last
 * `_`, `-` or `.` before its extension (`_000.root`, `-v2.root`,
 * `_DoubleMuParked`), at most 16 characters and leaving at least 4 in front;
 * a long name without separators keeps its last 8. Short names: nothing.
 */
export function tailLength(text: string): number {
  if (text.length <= 12) {
    return 0;
  }
  const dot = text.lastIndexOf('.');
  const stem = dot > 0 && text.length - dot <= 8 ? dot : text.length;
  const max = Math.min(16, text.length - 4);
  for (let i = stem - 1; i >= text.length - max; i--) {
    if ('_-.'.includes(text[i])) {
      return text.length - i;
    }
  }
  return text.length > 24 ? 8 : 0;
}

const MOUNT_STATE_LABELS: Record<string, string> = {
  queued: 'Queued',
  fetching: 'Mounting',
  replicating: 'Replicating',
  ready: 'Mounted',
  failed: 'Mount failed',
  cancelled: 'Cancelled'
};

export function MountBadge(props: { mount: IMount }): JSX.Element {
  const { mount } = props;
  const active = isActive(mount);
  const pct =
    mount.bytes.total > 0
      ? percent(mount.bytes.done, mount.bytes.total)
      : percent(mount.files.done, mount.files.total);
  return (
    <span
      className="jp-AFLab-Data-mountBadge"
      data-state={mount.state}
      title={`${mount.mode} mount at ${mount.target}: ${mount.message || mount.state}`}
    >
      {MOUNT_STATE_LABELS[mount.state] ?? mount.state}
      {active && mount.state !== 'queued' ? ` ${pct}%` : ''}
    </span>
  );
}

export function MountControl(props: {
  item: IDIDItem;
  instance: string;
  mount: IMount | undefined;
  creating: boolean;
  actions: IDataActions;
  noReplica?: boolean;
}): JSX.Element {
  const { item, instance, mount, creating, actions, noReplica } = props;
  let label: string;
  let title: string;
  let onClick: () => void;
  if (creating && !mount) {
    label = 'Mounting…';
    title = `Asking the server to mount ${item.did}`;
    onClick = () => undefined;
  } else if (mount) {
    if (mount.state === 'ready') {
      label = 'Open';
      title = `Show ${mount.target} in the file browser`;
    } else if (isActive(mount)) {
      label = 'Progress';
      title = `Mounting ${item.did}: see its progress in Mounts`;
    } else {
      label = 'Details';
      title = `${item.did}: ${mount.message || mount.state} (see Mounts)`;
    }
    onClick = () => actions.openMount(mount);
  } else if (noReplica) {
    label = 'Request';
    title = `No RSE holds a replica of ${item.did}: ask Rucio for one (a rule to an RSE on this host), then it mounts`;
    onClick = () => actions.requestReplica(item, instance);
  } else {
    label = 'Mount';
    title = `Mount ${item.did}: fetch its files once into the shared cache and link them into your workspace (more modes and a chosen folder in the menu)`;
    onClick = () => actions.mount(item, instance, 'cache');
  }
  return (
    <span className="jp-AFLab-Data-mountControl">
      <Button
        className="jp-AFLab-button jp-AFLab-Data-mountButton"
        small
        onClick={onClick}
        disabled={creating && !mount}
        title={title}
        tabIndex={-1}
        aria-label={`${label} ${item.did}`}
      >
        {creating && !mount ? (
          <span className="jp-AFLab-spinner" aria-hidden="true" />
        ) : mount?.state === 'ready' ? (
          <folderIcon.react tag="span" className="jp-AFLab-button-icon" />
        ) : (
          !mount && (
            <mountIcon.react tag="span" className="jp-AFLab-button-icon" />
          )
        )}
        <span>{label}</span>
      </Button>
      <Button
        className="jp-AFLab-button jp-AFLab-Data-menuButton"
        small
        minimal
        title="More: mount modes, insert code into a notebook, copy the DID or path"
        aria-label={`More actions for ${item.did}`}
        aria-haspopup="menu"
        tabIndex={-1}
        onClick={e => {
          const rect = (e.currentTarget as HTMLElement).getBoundingClientRect();
          actions.openMenu(item, instance, rect.left, rect.bottom);
        }}
      >
        <caretDownIcon.react tag="span" className="jp-AFLab-button-icon" />
      </Button>
    </span>
  );
}

/**
 * A file's replicas: one badge per RSE, the state written out unless it is
 * AVAILABLE (a check mark, with the word for screen readers and tooltips).
 */
export function ReplicaBadges(props: {
  replicas: IReplica[] | undefined;
  loading?: boolean;
  error?: unknown;
}): JSX.Element {
  const { replicas, loading, error } = props;
  if (!replicas) {
    if (error) {
      return (
        <span className="jp-AFLab-Data-replicas" title={describeError(error)}>
          replicas unknown
        </span>
      );
    }
    return (
      <span className="jp-AFLab-Data-replicas">
        {loading ? 'replicas…' : ''}
      </span>
    );
  }
  if (replicas.length === 0) {
    return (
      <span className="jp-AFLab-Data-replicas">
        <span className="jp-AFLab-replica" data-state="NONE">
          no replica
        </span>
      </span>
    );
  }
  const summary = replicas
    .map(r => `${r.rse}: ${r.state.toLowerCase()}`)
    .join('\n');
  return (
    <span
      className="jp-AFLab-Data-replicas"
      title={`Replicas\n${summary}`}
      aria-label={`Replicas: ${summary.replace(/\n/g, ', ')}`}
    >
      {replicas.map(r => (
        <span
          key={r.rse}
          className="jp-AFLab-replica"
          data-rse={r.rse}
          data-state={r.state}
        >
          <span className="jp-AFLab-replica-rse">{r.rse}</span>
          {r.state === 'AVAILABLE' ? (
            <span className="jp-AFLab-replica-ok" aria-hidden="true">
              ✓
            </span>
          ) : (
            <span className="jp-AFLab-replica-state">
              {r.state.toLowerCase().replace(/_/g, ' ')}
            </span>
          )}
        </span>
      ))}
    </span>
  );
}

/**
 * Where an expanded collection's files are, per RSE; counted by the server
 * and long-polled while the count goes on.
 */
export function AvailabilityRow(
  props: IRowProps & { node: ITreeNode }
): JSX.Element {
  const { node, index, style, focused, model, onFocus } = props;
  const item = node.item;
  const instance = model.instance;
  const [full, setFull] = useState(false);
  const k = detailsKey(instance, item.did);
  useSignal(model.details.changed, changed => changed === k);
  useEffect(() => {
    const watch = model.details.watch(
      instance,
      item.did,
      full ? 'full' : 'auto'
    );
    return () => watch.dispose();
  }, [instance, item.did, full, model.details]);
  const entry = model.details.get(instance, item.did);
  const meaningful = entry?.level === 'auto' || entry?.level === 'full';
  const availability: IAvailability | undefined = meaningful
    ? entry?.details?.availability
    : undefined;
  const total = entry?.details?.length ?? item.length ?? null;

  let body: React.ReactNode;
  let state = 'loading';
  if (entry?.error && !availability) {
    state = 'error';
    body = (
      <>
        <span
          className="jp-AFLab-Data-availText"
          title={describeError(entry.error)}
        >
          Availability unknown: {describeError(entry.error)}
        </span>
        <button
          type="button"
          className="jp-AFLab-linkButton"
          onClick={() => model.details.refresh(instance, item.did)}
        >
          Try again
        </button>
      </>
    );
  } else if (!availability) {
    body = (
      <>
        <span className="jp-AFLab-spinner" aria-hidden="true" />
        <span className="jp-AFLab-Data-availText">Counting replicas…</span>
      </>
    );
  } else if (availability.computed === false) {
    state = 'not_counted';
    body = (
      <>
        <span
          className="jp-AFLab-Data-availText"
          title={availability.message ?? ''}
        >
          {total !== null ? `${plural(total, 'file')}: ` : ''}replicas not
          counted (big collection)
        </span>
        <button
          type="button"
          className="jp-AFLab-linkButton"
          onClick={() => setFull(true)}
          title="Count the replicas of every file per RSE (lists every replica; can take a while)"
        >
          Count now
        </button>
      </>
    );
  } else {
    state = availability.complete ? 'complete' : 'counting';
    const files = total ?? availability.files_scanned;
    const rses = [...availability.rses].sort(
      (a, b) => b.files_available - a.files_available
    );
    const everywhere = rses.filter(
      r => files > 0 && r.files_available >= files
    ).length;
    const summary = !availability.complete
      ? `Counting replicas… ${formatCount(availability.files_scanned)}${
          total !== null ? ` of ${formatCount(total)}` : ''
        } files`
      : rses.every(r => r.files_available === 0)
        ? `No replica: no RSE holds ${files === 1 ? 'the file' : `any of the ${formatCount(files)} files`}`
        : everywhere > 0
          ? `All ${plural(files, 'file')} on ${plural(everywhere, 'RSE')}`
          : `Partly available: at most ${formatCount(
              rses[0]?.files_available ?? 0
            )} of ${plural(files, 'file')} on one RSE`;
    const tooltip = rses
      .map(
        r =>
          `${r.rse}: ${formatCount(r.files_available)} of ${formatCount(
            files
          )} files available (${formatBytes(r.bytes_available)})`
      )
      .join('\n');
    body = (
      <>
        {!availability.complete && (
          <span className="jp-AFLab-spinner" aria-hidden="true" />
        )}
        <span className="jp-AFLab-Data-availText" title={tooltip || summary}>
          {summary}
        </span>
        {availability.complete &&
          rses.every(r => r.files_available === 0) &&
          !props.mounts.forDid(item.did, instance).length && (
            <button
              type="button"
              className="jp-AFLab-linkButton"
              onClick={() => props.actions.requestReplica(item, instance)}
              title="Ask Rucio for a replication rule to an RSE on this host; the mount fills in when the files arrive"
            >
              Request a replica…
            </button>
          )}
        <span className="jp-AFLab-Data-availRses" title={tooltip}>
          {rses.map(r => (
            <span
              key={r.rse}
              className="jp-AFLab-replica"
              data-state={
                files > 0 && r.files_available >= files
                  ? 'AVAILABLE'
                  : r.files_available > 0
                    ? 'PARTIAL'
                    : 'UNAVAILABLE'
              }
            >
              <span className="jp-AFLab-replica-rse">{r.rse}</span>
              <span className="jp-AFLab-replica-state">
                {formatCount(r.files_available)}/{formatCount(files)}
              </span>
            </span>
          ))}
        </span>
      </>
    );
  }
  return (
    <div
      className="jp-AFLab-Data-row jp-AFLab-Data-availRow"
      style={{ ...style, paddingLeft: 8 + node.depth * INDENT + 20 }}
      role="treeitem"
      aria-level={node.depth + 2}
      data-index={index}
      data-kind="availability"
      data-state={state}
      data-did={item.did}
      tabIndex={focused ? 0 : -1}
      onFocus={onFocus}
    >
      {body}
    </div>
  );
}
