import {
  Button,
  caretDownIcon,
  caretRightIcon,
  folderIcon,
  refreshIcon,
  searchIcon
} from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useRef, useState } from 'react';

import { ErrorBox, LoadingOrError, RefreshButton } from '../common/feedback';
import { useSignal } from '../common/useSignal';
import {
  formatBytes,
  formatCount,
  formatExactBytes,
  percent,
  plural
} from '../common/units';
import { VirtualList } from '../common/VirtualList';
import { IExplainedError } from '../mounts/errors';
import { isActive, MountsModel } from '../mounts/model';
import { IMount, MountMode } from '../mounts/types';
import { AFLabRequestError, describeError } from '../request';
import { CredentialsForm } from './CredentialsForm';
import { key as detailsKey } from './details';
import { didIcon, mountIcon } from './icons';
import { DataModel, DEFAULT_SEARCH_TYPE, SEARCH_TYPES } from './model';
import { replicaState } from './mountMenu';
import { IListing, isCollection, ITreeNode, TreeRow } from './tree';
import { IAvailability, IDIDItem, IReplica, SearchType } from './types';

/**
 * What the Data view asks its host (the plugin) to do.
 */
export interface IDataActions {
  /**
   * Mount a DID. Errors are reported by the host (see
   * `DataModel.setMountNotice`), never thrown.
   */
  mount(item: IDIDItem, instance: string, mode: MountMode): void;
  /**
   * Ask Rucio for a replica (a rule to an RSE on this host) and mount it.
   */
  requestReplica(item: IDIDItem, instance: string): void;
  /**
   * The primary action of a mounted DID: open its folder when ready, else
   * show its progress.
   */
  openMount(mount: IMount): void;
  /**
   * Open the actions menu of a DID at a screen position.
   */
  openMenu(item: IDIDItem, instance: string, x: number, y: number): void;
  /**
   * Start dragging a DID (into a notebook).
   */
  startDrag(item: IDIDItem, instance: string, x: number, y: number): void;
}

export interface IDataPanelProps {
  model: DataModel;
  mounts: MountsModel;
  actions: IDataActions;
  /**
   * Whether the panel is on screen (nothing is loaded before).
   */
  active?: boolean;
}

/**
 * Row heights of the virtual list (px): every row of a kind is as tall.
 */
export const ROW_HEIGHTS: Record<ViewRow['kind'], number> = {
  did: 46,
  availability: 44,
  loading: 30,
  more: 34,
  error: 64,
  empty: 28,
  notice: 64
};

/**
 * A row of the view: a tree row, or a mount error under a DID.
 */
export type ViewRow =
  | TreeRow
  | {
      kind: 'notice';
      key: string;
      item: IDIDItem;
      depth: number;
      notice: IExplainedError;
    };

const INDENT = 14;

/**
 * The "Data" section: find DIDs on a Rucio instance and mount them.
 */
export function DataPanel(props: IDataPanelProps): JSX.Element {
  const { model, mounts, actions, active = true } = props;
  useSignal(model.changed);
  useSignal(mounts.changed);
  const [query, setQuery] = useState('');
  const [type, setType] = useState<SearchType>(DEFAULT_SEARCH_TYPE);
  const [changingLogin, setChangingLogin] = useState(false);

  useEffect(() => {
    if (active) {
      void model.start();
      mounts.start();
    }
  }, [active, model, mounts]);

  const instances = model.instances;
  const root = model.tree.root;
  const login = model.login;
  const showForm =
    model.credentials !== null &&
    (login === 'logged_out' || (changingLogin && login === 'logged_in'));

  const [needsScope, setNeedsScope] = useState<string | null>(null);
  const runSearch = (pattern = query, searchType = type, refresh = false) => {
    const text = pattern.trim();
    if (!text) {
      return;
    }
    // Rucio needs a scope: suggest scope:*name* instead of sending a 400.
    if (!text.includes(':') && !model.scopes.includes(text)) {
      setNeedsScope(text);
      return;
    }
    setNeedsScope(null);
    void model.search(text, searchType, refresh);
  };

  // A search started elsewhere (e.g. "Show in Data") shows its pattern.
  const searched = model.searched;
  useEffect(() => {
    if (searched) {
      setQuery(q => (q.trim() === searched.pattern ? q : searched.pattern));
    }
  }, [searched?.pattern]);

  const phase = !instances
    ? model.instancesError
      ? 'error'
      : 'loading'
    : instances.length === 0
      ? 'empty'
      : 'ready';

  return (
    <div
      className="jp-AFLab-panel jp-AFLab-DataPanel"
      data-phase={phase}
      data-login={login}
      data-instance={model.instance}
    >
      <LoadingOrError
        phase={phase}
        className="jp-AFLab-placeholder"
        loading="Loading the Rucio instances…"
        errorTitle="Could not list the Rucio instances"
        error={model.instancesError}
        onRetry={() => void model.loadInstances()}
      />
      {phase === 'empty' && (
        <div className="jp-AFLab-placeholder jp-AFLab-statusLine">
          No Rucio instance is configured on this server. Ask your facility
          administrators to configure af-lab (c.AFLab.rucio_instances).
        </div>
      )}
      {phase === 'ready' && (
        <>
          <div className="jp-AFLab-Data-controls">
            <InstancePicker model={model} />
            <LoginLine model={model} onChange={() => setChangingLogin(true)} />
            {showForm && model.credentials && (
              <CredentialsForm
                key={model.instance}
                status={model.credentials}
                onSubmit={async body => {
                  await model.submitCredentials(body);
                  setChangingLogin(false);
                }}
                onCancel={
                  login === 'logged_in'
                    ? () => setChangingLogin(false)
                    : undefined
                }
              />
            )}
            <form
              className="jp-AFLab-Data-search"
              role="search"
              onSubmit={e => {
                e.preventDefault();
                runSearch();
              }}
            >
              <div className="jp-AFLab-Data-searchRow">
                <input
                  className="jp-mod-styled jp-AFLab-Data-query"
                  type="text"
                  value={query}
                  onChange={e => setQuery(e.target.value)}
                  onKeyDown={e => {
                    if (e.key === 'Escape' && query) {
                      e.preventDefault();
                      setQuery('');
                    }
                  }}
                  placeholder="scope:name* (a scope alone lists it)"
                  aria-label="Search DIDs (scope:name, * as wildcard)"
                  title="scope:name with * as wildcard, e.g. myscope:*Mu*. A scope alone lists all its DIDs; an exact scope:name also finds a file. Esc clears."
                  list={`af-lab-scopes-${model.instance}`}
                  spellCheck={false}
                  autoComplete="off"
                  disabled={login === 'logged_out'}
                />
                <datalist id={`af-lab-scopes-${model.instance}`}>
                  {model.scopes.map(scope => (
                    <option key={scope} value={`${scope}:*`} />
                  ))}
                </datalist>
                <Button
                  type="submit"
                  className="jp-AFLab-button"
                  small
                  disabled={!query.trim() || login === 'logged_out'}
                  title="Search (Enter)"
                >
                  <searchIcon.react
                    tag="span"
                    className="jp-AFLab-button-icon"
                  />
                  <span>Search</span>
                </Button>
              </div>
              <div className="jp-AFLab-Data-filters">
                <label>
                  <span>Type</span>
                  <select
                    className="jp-mod-styled"
                    value={type}
                    aria-label="DID type"
                    onChange={e => {
                      const next = e.target.value as SearchType;
                      setType(next);
                      if (model.searched) {
                        runSearch(query || model.searched.pattern, next);
                      }
                    }}
                  >
                    {SEARCH_TYPES.map(t => (
                      <option key={t.value} value={t.value}>
                        {t.label}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  <span>Scope</span>
                  <select
                    className="jp-mod-styled"
                    aria-label="Browse a scope"
                    value=""
                    disabled={
                      model.scopes.length === 0 || login === 'logged_out'
                    }
                    onChange={e => {
                      const scope = e.target.value;
                      if (scope) {
                        const pattern = `${scope}:*`;
                        setQuery(pattern);
                        runSearch(pattern);
                      }
                    }}
                  >
                    <option value="">
                      {model.scopes.length
                        ? `Pick one of ${model.scopes.length}…`
                        : model.scopesError
                          ? 'unavailable'
                          : 'loading…'}
                    </option>
                    {model.scopes.map(scope => (
                      <option key={scope} value={scope}>
                        {scope}
                      </option>
                    ))}
                  </select>
                </label>
              </div>
            </form>
          </div>
          {needsScope !== null && (
            <ScopeHint
              text={needsScope}
              scopes={model.scopes}
              onPick={pattern => {
                setQuery(pattern);
                runSearch(pattern);
              }}
            />
          )}
          <ResultsHeader
            model={model}
            onRefresh={() =>
              model.searched &&
              void model.search(
                model.searched.pattern,
                model.searched.type,
                true
              )
            }
          />
          {root && !root.started && root.error !== null ? (
            <ErrorBox
              title={`Search ${model.searched?.pattern ?? ''} failed`}
              error={root.error}
              onRetry={() => void model.tree.retry(root)}
            />
          ) : root ? (
            <DataTreeView model={model} mounts={mounts} actions={actions} />
          ) : (
            <div className="jp-AFLab-placeholder">
              Search a scope for containers and datasets, e.g.{' '}
              <button
                type="button"
                className="jp-AFLab-linkButton"
                onClick={() => {
                  const example = model.scopes[0]
                    ? `${model.scopes[0]}:*`
                    : '';
                  if (example) {
                    setQuery(example);
                    runSearch(example);
                  }
                }}
                disabled={model.scopes.length === 0}
              >
                {model.scopes[0] ? `${model.scopes[0]}:*` : 'scope:*'}
              </button>
              . Expand a dataset to see its files and where their replicas are;{' '}
              <strong>Mount</strong> makes it a folder of local files; drag a
              row into a notebook for the code that reads it.
            </div>
          )}
        </>
      )}
    </div>
  );
}

/**
 * A search without a scope: Rucio would refuse it, so offer the pattern in
 * the user's scopes (the first few) instead.
 */
function ScopeHint(props: {
  text: string;
  scopes: string[];
  onPick: (pattern: string) => void;
}): JSX.Element {
  const { text, scopes, onPick } = props;
  const name = text.replace(/^\*+|\*+$/g, '');
  const suggestions = scopes.slice(0, 3).map(scope => `${scope}:*${name}*`);
  return (
    <div className="jp-AFLab-placeholder jp-AFLab-Data-scopeHint" role="status">
      Rucio searches need a scope (scope:name).{' '}
      {suggestions.length > 0 ? (
        <>
          Did you mean{' '}
          {suggestions.map((pattern, i) => (
            <React.Fragment key={pattern}>
              {i > 0 && ' or '}
              <button
                type="button"
                className="jp-AFLab-linkButton"
                onClick={() => onPick(pattern)}
              >
                {pattern}
              </button>
            </React.Fragment>
          ))}
          ?
        </>
      ) : (
        'Your account has no scope yet: ask your facility for one.'
      )}
    </div>
  );
}

function InstancePicker(props: { model: DataModel }): JSX.Element | null {
  const { model } = props;
  const instances = model.instances ?? [];
  if (instances.length === 0) {
    return null;
  }
  const info = model.instanceInfo;
  return (
    <div className="jp-AFLab-Data-instance">
      <label htmlFor="af-lab-data-instance">Rucio</label>
      {instances.length > 1 ? (
        <select
          id="af-lab-data-instance"
          className="jp-mod-styled"
          value={model.instance}
          onChange={e => void model.selectInstance(e.target.value)}
          title={info?.rucio_host}
        >
          {instances.map(i => (
            <option key={i.name} value={i.name}>
              {i.display_name}
              {i.default ? ' (default)' : ''}
            </option>
          ))}
        </select>
      ) : (
        <span
          id="af-lab-data-instance"
          className="jp-AFLab-Data-instanceName"
          title={`${info?.name ?? ''} · ${info?.rucio_host ?? ''}`}
        >
          {info?.display_name ?? model.instance}
        </span>
      )}
    </div>
  );
}

function LoginLine(props: {
  model: DataModel;
  onChange: () => void;
}): JSX.Element | null {
  const { model, onChange } = props;
  const status = model.credentials;
  switch (model.login) {
    case 'checking':
      // Not LoadingStatus: the login line keeps its own (narrower) spacing.
      return (
        <div className="jp-AFLab-Data-login" role="status">
          <span className="jp-AFLab-spinner" aria-hidden="true" />
          <span>Checking your Rucio login…</span>
        </div>
      );
    case 'logged_in':
      return (
        <div className="jp-AFLab-Data-login" role="status">
          <span
            className="jp-AFLab-Data-loginState"
            data-state="logged_in"
            title={
              status?.expires_at
                ? `Token valid until ${new Date(status.expires_at * 1000).toLocaleString()}`
                : undefined
            }
          >
            Logged in as {status?.account ?? '?'} ({status?.auth_type})
          </span>
          {status &&
            (status.auth_type === 'userpass' ||
              status.auth_type === 'oidc') && (
              <button
                type="button"
                className="jp-AFLab-linkButton"
                onClick={onChange}
              >
                Change
              </button>
            )}
        </div>
      );
    case 'error':
      return (
        <ErrorBox
          title="Could not check your Rucio login"
          error={model.credentialsError}
          onRetry={() => void model.checkLogin()}
        />
      );
    default:
      return null;
  }
}

function ResultsHeader(props: {
  model: DataModel;
  onRefresh: () => void;
}): JSX.Element | null {
  const { model, onRefresh } = props;
  const root = model.tree.root;
  const searched = model.searched;
  if (!root || !searched) {
    return null;
  }
  const typeLabel =
    SEARCH_TYPES.find(t => t.value === searched.type)?.label ?? searched.type;
  let text: string;
  if (!root.started) {
    text = root.loading ? `Searching ${searched.pattern}…` : '';
  } else if (root.cursor === null) {
    text = `${plural(root.items.length, 'result')} for ${searched.pattern}`;
  } else {
    text = `${formatCount(root.items.length)} of ${
      root.total !== null ? formatCount(root.total) : 'more'
    } results for ${searched.pattern}`;
  }
  return (
    <div className="jp-AFLab-Data-results" role="status" aria-live="polite">
      <span
        className="jp-AFLab-Data-resultsText"
        title={`${text} · ${typeLabel}`}
      >
        {root.loading && !root.started && (
          <span className="jp-AFLab-spinner" aria-hidden="true" />
        )}
        <span>{text}</span>
        <span className="jp-AFLab-Data-resultsType"> · {typeLabel}</span>
      </span>
      <RefreshButton
        onClick={onRefresh}
        loading={root.loading}
        title="Ask Rucio again instead of the server's cached listing"
        ariaLabel="Refresh the search results"
        label="Refresh"
      />
    </div>
  );
}

/**
 * The results as a virtualized, keyboard-navigable tree.
 */
function DataTreeView(props: {
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

  const moveFocus = useCallback((index: number) => {
    setFocus(index);
    setScrollTo(index);
  }, []);

  // Move DOM focus to the focused row after keyboard navigation (on every
  // render: the row may appear only once the list has scrolled to it).
  useEffect(() => {
    const active = document.activeElement as HTMLElement | null;
    if (
      scrollTo === null ||
      !active ||
      !container.current?.contains(active) ||
      !active.classList.contains('jp-AFLab-Data-row') ||
      active.dataset.index === String(scrollTo)
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
        moveFocus(rows.length - 1);
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

  const itemHeight = useCallback(
    (row: ViewRow) => ROW_HEIGHTS[row.kind] ?? 30,
    []
  );

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
            onFocus={() => setFocus(index)}
          />
        )}
      />
    </div>
  );
}

interface IRowProps {
  row: ViewRow;
  index: number;
  style: React.CSSProperties;
  focused: boolean;
  model: DataModel;
  mounts: MountsModel;
  actions: IDataActions;
  onFocus: () => void;
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

function loadingText(listing: IListing): string {
  if (listing.started) {
    return `Loading more (${formatCount(listing.items.length)} so far)…`;
  }
  return listing.kind === 'search'
    ? 'Searching…'
    : listing.kind === 'content'
      ? 'Loading the datasets…'
      : 'Loading the files and their replicas…';
}

/**
 * A row that is not a DID (loading, more, error, empty), indented like the
 * listing it belongs to.
 */
function AuxRow(
  props: IRowProps & { className: string; children: React.ReactNode }
): JSX.Element {
  const { row, index, style, focused, className, children, onFocus } = props;
  const depth = 'depth' in row ? row.depth : 0;
  return (
    <div
      className={`jp-AFLab-Data-row jp-AFLab-Data-auxRow ${className}`}
      style={{ ...style, paddingLeft: 8 + depth * INDENT + 20 }}
      role="treeitem"
      aria-level={depth + 1}
      data-index={index}
      data-kind={row.kind}
      tabIndex={focused ? 0 : -1}
      onFocus={onFocus}
    >
      {children}
    </div>
  );
}

function MoreRow(props: IRowProps & { listing: IListing }): JSX.Element {
  const { listing, model } = props;
  // Infinite scroll: this row is rendered only near the viewport.
  useEffect(() => {
    const timer = window.setTimeout(
      () => void model.tree.loadMore(listing),
      100
    );
    return () => window.clearTimeout(timer);
  }, [listing, listing.items.length, model.tree]);
  const shown = listing.items.length;
  return (
    <AuxRow {...props} className="jp-AFLab-Data-moreRow">
      <Button
        className="jp-AFLab-button"
        small
        minimal
        onClick={() => void model.tree.loadMore(listing)}
        tabIndex={-1}
      >
        <span>
          Load more ({formatCount(shown)}
          {listing.total !== null
            ? ` of ${formatCount(listing.total)}`
            : ''}{' '}
          shown)
        </span>
      </Button>
    </AuxRow>
  );
}

function ErrorRow(props: IRowProps & { listing: IListing }): JSX.Element {
  const { listing, model } = props;
  const error = listing.error;
  const expired =
    error instanceof AFLabRequestError &&
    error.status === 409 &&
    listing.started;
  const message = describeError(error);
  return (
    <AuxRow {...props} className="jp-AFLab-Data-errorRow">
      <div className="jp-AFLab-Data-errorBody" role="alert">
        <div className="jp-AFLab-Data-errorText" title={message}>
          {expired
            ? 'This list expired on the server. Reload it to go on.'
            : message}
        </div>
        <div className="jp-AFLab-Data-errorActions">
          {error instanceof AFLabRequestError && error.status > 0 && (
            <span className="jp-AFLab-Data-errorFacts">
              HTTP {error.status} · {error.type}
            </span>
          )}
          <Button
            className="jp-AFLab-button"
            small
            tabIndex={-1}
            onClick={() =>
              expired
                ? void model.tree.reload(listing, true)
                : void model.tree.retry(listing)
            }
          >
            <refreshIcon.react tag="span" className="jp-AFLab-button-icon" />
            <span>{expired ? 'Reload' : 'Try again'}</span>
          </Button>
        </div>
      </div>
    </AuxRow>
  );
}

function NoticeRow(
  props: IRowProps & { notice: IExplainedError; item: IDIDItem }
): JSX.Element {
  const { notice, item, model } = props;
  const full = [notice.message, ...notice.facts].join('\n');
  return (
    <AuxRow {...props} className="jp-AFLab-Data-noticeRow">
      <div className="jp-AFLab-Data-errorBody" role="alert" title={full}>
        <div className="jp-AFLab-Data-noticeTitle">
          <strong>{notice.title}</strong>
          {notice.summary ? `: ${notice.summary}` : ''}
        </div>
        <div className="jp-AFLab-Data-errorActions">
          <span className="jp-AFLab-Data-noticeMessage">{notice.message}</span>
          {notice.kind === 'no_replica' && (
            <Button
              className="jp-AFLab-button"
              small
              tabIndex={-1}
              onClick={() => props.actions.requestReplica(item, model.instance)}
            >
              Request a replica
            </Button>
          )}
          <Button
            className="jp-AFLab-button"
            small
            minimal
            tabIndex={-1}
            onClick={() => model.setMountNotice(model.instance, item.did, null)}
          >
            Dismiss
          </Button>
        </div>
      </div>
    </AuxRow>
  );
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

const MOUNT_STATE_LABELS: Record<string, string> = {
  queued: 'Queued',
  fetching: 'Mounting',
  replicating: 'Replicating',
  ready: 'Mounted',
  failed: 'Mount failed',
  cancelled: 'Cancelled'
};

function MountBadge(props: { mount: IMount }): JSX.Element {
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

function MountControl(props: {
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
function AvailabilityRow(props: IRowProps & { node: ITreeNode }): JSX.Element {
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
