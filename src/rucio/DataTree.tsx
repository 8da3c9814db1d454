/**
 * The Data view's virtual tree: keyboard, drag, and one component per row
 * kind (DID, loading, more, error, mount notice).
 */
import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useRef, useState } from 'react';
import { useSignal } from '../common/useSignal';
import { formatBytes, formatExactBytes, plural } from '../common/units';
import { VirtualList } from '../common/VirtualList';
import { MountsModel } from '../mounts/model';
import { key as detailsKey } from './details';
import { didIcon } from './icons';
import { DataModel } from './model';
import { replicaState } from './mountMenu';
import { isCollection, ITreeNode } from './tree';
import {
  AvailabilityRow,
  MiddleEllipsis,
  MountBadge,
  MountControl,
  ReplicaBadges
} from './DIDParts';
import { IDataActions, INDENT, IRowProps, rowHeight, ViewRow } from './rows';
import {
  AuxRow,
  ErrorRow,
  loadingText,
  MoreRow,
  NoticeRow,
  PendingRow
} from './AuxRows';

/**
 * The results as a virtualized, keyboard-navigable tree.
 */
export function DataTreeView(props: {
  model: DataModel;
  mounts: MountsModel;
  actions: IDataActions;
}): JSX.Element {
  const { model, mounts, actions } = props;
  const tree = model.tree;
  const treeRows = tree.rows;
  // Mount errors go right under their DID (cheap: one pass over the rows).
  const rows: ViewRow[] = [];
  for (const row of treeRows) {
    rows.push(row);
    if (row.kind === 'did') {
      const notice = model.mountNotice(row.node.item.did);
      if (notice) {
        rows.push({
          kind: 'notice',
          key: `${row.key}#notice`,
          item: row.node.item,
          depth: row.depth,
          notice
        });
      }
    }
  }

  const [focus, setFocus] = useState(0);
  const [scrollTo, setScrollTo] = useState<number | null>(null);
  const container = useRef<HTMLDivElement>(null);
  const focusIndex = Math.min(focus, Math.max(0, rows.length - 1));

  // A new mount error is scrolled into view: it is never silent.
  const notices = useRef(new Set<string>());
  const latestRows = useRef(rows);
  latestRows.current = rows;
  const noticeVersion = model.noticeVersion;
  useEffect(() => {
    const keys = new Set<string>();
    let fresh = -1;
    latestRows.current.forEach((row, index) => {
      if (row.kind === 'notice') {
        keys.add(row.key);
        if (fresh < 0 && !notices.current.has(row.key)) {
          fresh = index;
        }
      }
    });
    notices.current = keys;
    if (fresh >= 0) {
      setScrollTo(fresh);
    }
  }, [noticeVersion]);

  // After End, the focus stays on the last row while the page there loads
  // (a pending row turns into the rows it stood for).
  const atEnd = useRef(false);
  const moveFocus = useCallback((index: number, toEnd = false) => {
    atEnd.current = toEnd;
    setFocus(index);
    setScrollTo(index);
  }, []);
  useEffect(() => {
    if (atEnd.current && rows.length > 0) {
      setFocus(rows.length - 1);
      setScrollTo(rows.length - 1);
    }
  }, [rows.length]);

  // Move DOM focus to the focused row after keyboard navigation (on every
  // render: the row may appear only once the list has scrolled to it).
  // A focused pending row that turned into DIDs leaves the focus nowhere: it
  // goes on to the last row then.
  useEffect(() => {
    const active = document.activeElement as HTMLElement | null;
    const inTree =
      !!active &&
      !!container.current?.contains(active) &&
      active.classList.contains('jp-AFLab-Data-row');
    const lost =
      atEnd.current &&
      (!active || active === document.body || !active.isConnected);
    if (
      scrollTo === null ||
      !container.current ||
      !(inTree || lost) ||
      active?.dataset.index === String(scrollTo)
    ) {
      return;
    }
    container.current
      .querySelector<HTMLElement>(`[data-index="${scrollTo}"]`)
      ?.focus({ preventScroll: true });
  });

  const onKeyDown = (event: React.KeyboardEvent<HTMLDivElement>) => {
    if ((event.target as HTMLElement).closest('button, input, select')) {
      return;
    }
    const row = rows[focusIndex];
    switch (event.key) {
      case 'ArrowDown':
        moveFocus(Math.min(rows.length - 1, focusIndex + 1));
        break;
      case 'ArrowUp':
        moveFocus(Math.max(0, focusIndex - 1));
        break;
      case 'Home':
        moveFocus(0);
        break;
      case 'End':
        moveFocus(rows.length - 1, true);
        break;
      case 'ArrowRight':
        if (row?.kind === 'did' && isCollection(row.node.item)) {
          if (!row.node.expanded) {
            tree.expand(row.node);
          } else {
            moveFocus(Math.min(rows.length - 1, focusIndex + 1));
          }
        }
        break;
      case 'ArrowLeft':
        if (row?.kind === 'did' && row.node.expanded) {
          tree.collapse(row.node);
        } else if (row && 'depth' in row && row.depth > 0) {
          for (let i = focusIndex - 1; i >= 0; i--) {
            const r = rows[i];
            if (r.kind === 'did' && r.depth < row.depth) {
              moveFocus(i);
              break;
            }
          }
        }
        break;
      case 'Enter':
      case ' ':
        if (row?.kind === 'did' && isCollection(row.node.item)) {
          tree.toggle(row.node);
        } else if (row?.kind === 'more') {
          void tree.loadMore(row.listing);
        } else if (row?.kind === 'pending') {
          void tree.loadAt(row.listing, row.offset, row.count);
        }
        break;
      case 'ContextMenu':
        if (row?.kind === 'did') {
          const rect = (event.target as HTMLElement).getBoundingClientRect();
          actions.openMenu(
            row.node.item,
            model.instance,
            rect.left + 24,
            rect.top + 20
          );
        }
        break;
      default:
        return;
    }
    event.preventDefault();
  };

  const itemHeight = useCallback((row: ViewRow) => rowHeight(row), []);

  return (
    <div className="jp-AFLab-Data-treeWrap" ref={container}>
      <VirtualList
        className="jp-AFLab-Data-tree"
        items={rows}
        itemHeight={itemHeight}
        itemKey={row => row.key}
        role="tree"
        aria-label="DIDs"
        aria-busy={tree.root?.loading}
        scrollToIndex={scrollTo}
        onKeyDown={onKeyDown}
        renderItem={(row, index, style) => (
          <RowView
            row={row}
            index={index}
            style={style}
            focused={index === focusIndex}
            model={model}
            mounts={mounts}
            actions={actions}
            onFocus={() => {
              if (index !== focusIndex) {
                atEnd.current = false;
              }
              setFocus(index);
            }}
          />
        )}
      />
    </div>
  );
}

function RowView(props: IRowProps): JSX.Element {
  const { row } = props;
  switch (row.kind) {
    case 'did':
      return <DIDRow {...props} node={row.node} />;
    case 'availability':
      return <AvailabilityRow {...props} node={row.node} />;
    case 'loading':
      return (
        <AuxRow {...props} className="jp-AFLab-Data-loadingRow">
          <span className="jp-AFLab-spinner" aria-hidden="true" />
          <span>{loadingText(row.listing)}</span>
        </AuxRow>
      );
    case 'more':
      return <MoreRow {...props} listing={row.listing} />;
    case 'pending':
      return (
        <PendingRow
          {...props}
          listing={row.listing}
          offset={row.offset}
          count={row.count}
        />
      );
    case 'error':
      return <ErrorRow {...props} listing={row.listing} />;
    case 'empty':
      return (
        <AuxRow {...props} className="jp-AFLab-Data-emptyRow">
          {row.listing.kind === 'search'
            ? props.model.searched?.type === 'all'
              ? 'Nothing matches. Check the scope and the pattern (* matches anything).'
              : 'Nothing matches. Try another pattern, or the type Everything (incl. files).'
            : row.listing.kind === 'content'
              ? 'This container is empty.'
              : 'This dataset has no files.'}
        </AuxRow>
      );
    case 'notice':
      return <NoticeRow {...props} notice={row.notice} item={row.item} />;
  }
}

/**
 * One DID: twisty, type, full name (ellipsis, tooltip), size, replicas or
 * availability, mount state, and the Mount button with its menu.
 */
function DIDRow(props: IRowProps & { node: ITreeNode }): JSX.Element {
  const { node, index, style, focused, model, mounts, actions, onFocus } =
    props;
  const item = node.item;
  const instance = model.instance;
  const collection = isCollection(item);
  const needsMeta =
    (collection && (item.bytes === null || item.length === null)) ||
    (item.type === 'file' && !item.replicas);
  const k = detailsKey(instance, item.did);
  useSignal(model.details.changed, changed => changed === k);
  useEffect(() => {
    if (!needsMeta) {
      return;
    }
    const watch = model.details.watch(instance, item.did, 'meta');
    return () => watch.dispose();
  }, [instance, item.did, needsMeta, model.details]);
  const entry = needsMeta ? model.details.get(instance, item.did) : undefined;
  const bytes = item.bytes ?? entry?.details?.bytes ?? null;
  const length = item.length ?? entry?.details?.length ?? null;
  const replicas = item.replicas ?? entry?.details?.replicas;

  const drag = useDragStart(event =>
    actions.startDrag(item, instance, event.clientX, event.clientY)
  );

  // The scope is said once: by the parent, or by the search pattern.
  const contextScope =
    node.parent?.item.scope ?? model.searched?.pattern.split(':')[0];
  const label = contextScope === item.scope ? item.name : item.did;
  const mount = mounts.forDid(item.did, instance)[0];
  const creating = mounts.isCreating(item.did, instance);

  const metaParts: string[] = [];
  if (collection && length !== null) {
    metaParts.push(plural(length, 'file'));
  }
  metaParts.push(
    bytes !== null ? formatBytes(bytes) : needsMeta && !entry?.error ? '…' : '–'
  );

  return (
    <div
      className="jp-AFLab-Data-row jp-AFLab-Data-didRow"
      style={style}
      role="treeitem"
      aria-level={node.depth + 1}
      aria-expanded={collection ? node.expanded : undefined}
      aria-label={`${item.type} ${item.did}`}
      data-index={index}
      data-kind="did"
      data-did={item.did}
      data-type={item.type}
      data-mount-state={mount?.state ?? (creating ? 'creating' : undefined)}
      tabIndex={focused ? 0 : -1}
      onFocus={onFocus}
      onMouseDown={drag}
      onDoubleClick={e => {
        if (collection && !(e.target as HTMLElement).closest('button')) {
          model.tree.toggle(node);
        }
      }}
      onContextMenu={e => {
        e.preventDefault();
        e.stopPropagation();
        actions.openMenu(item, instance, e.clientX, e.clientY);
      }}
      title={`${item.did}\nDrag into a notebook for the code that reads it.`}
    >
      <div
        className="jp-AFLab-Data-line"
        style={{ paddingLeft: 4 + node.depth * INDENT }}
      >
        {collection ? (
          <button
            type="button"
            className="jp-AFLab-Data-twisty"
            aria-label={`${node.expanded ? 'Collapse' : 'Expand'} ${item.did}`}
            title={node.expanded ? 'Collapse' : 'Show what it contains'}
            tabIndex={-1}
            onClick={() => model.tree.toggle(node)}
          >
            {node.expanded ? (
              <caretDownIcon.react tag="span" />
            ) : (
              <caretRightIcon.react tag="span" />
            )}
          </button>
        ) : (
          <span className="jp-AFLab-Data-twistySpacer" />
        )}
        {React.createElement(didIcon(item.type).react, {
          tag: 'span',
          className: 'jp-AFLab-Data-typeIcon'
        })}
        <MiddleEllipsis
          className="jp-AFLab-Data-name"
          text={label}
          title={item.did}
        />
        <MountControl
          item={item}
          instance={instance}
          mount={mount}
          creating={creating}
          actions={actions}
          noReplica={
            replicaState(
              model.details.get(instance, item.did)?.details?.availability,
              item.length
            ) === 'none'
          }
        />
      </div>
      <div
        className="jp-AFLab-Data-meta"
        style={{ paddingLeft: 4 + node.depth * INDENT + 38 }}
      >
        <span className="jp-AFLab-Data-type">{item.type}</span>
        <span title={formatExactBytes(bytes)}>{metaParts.join(' · ')}</span>
        {mount && <MountBadge mount={mount} />}
        {item.type === 'file' && (
          <ReplicaBadges
            replicas={replicas}
            loading={!!entry?.loading}
            error={entry?.error}
          />
        )}
      </div>
    </div>
  );
}

/**
 * Start a drag after the mouse moved a few pixels with the button down
 * (clicks on buttons never start one).
 */
function useDragStart(
  start: (event: MouseEvent) => void
): (event: React.MouseEvent) => void {
  const startRef = useRef(start);
  startRef.current = start;
  return useCallback((event: React.MouseEvent) => {
    if (
      event.button !== 0 ||
      (event.target as HTMLElement).closest('button, input, select, a')
    ) {
      return;
    }
    const x0 = event.clientX;
    const y0 = event.clientY;
    const move = (e: MouseEvent) => {
      if (Math.abs(e.clientX - x0) + Math.abs(e.clientY - y0) > 5) {
        cleanup();
        startRef.current(e);
      }
    };
    const cleanup = () => {
      document.removeEventListener('mousemove', move, true);
      document.removeEventListener('mouseup', cleanup, true);
    };
    document.addEventListener('mousemove', move, true);
    document.addEventListener('mouseup', cleanup, true);
  }, []);
}
