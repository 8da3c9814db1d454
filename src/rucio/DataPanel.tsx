import { Button, searchIcon } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';
import { ErrorBox, LoadingOrError, RefreshButton } from '../common/feedback';
import { useSignal } from '../common/useSignal';
import { formatCount, formatTime, plural } from '../common/units';
import { MountsModel } from '../mounts/model';
import { CredentialsForm } from './CredentialsForm';
import { DataModel, DEFAULT_SEARCH_TYPE, SEARCH_TYPES } from './model';
import { SearchType } from './types';
import { DataTreeView } from './DataTree';
import { IDataActions } from './rows';

export { IDataActions } from './rows';
export { MiddleEllipsis, ReplicaBadges, tailLength } from './DIDParts';

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

  // The example to browse: the user's own scope (user.<account>) if any.
  const account = model.credentials?.account;
  const firstScope =
    model.scopes.find(scope => account && scope === `user.${account}`) ??
    model.scopes[0];

  // A search started elsewhere (e.g. "Show in Data") shows its pattern.
  const searchedPattern = model.searched?.pattern;
  useEffect(() => {
    if (searchedPattern) {
      setQuery(q => (q.trim() === searchedPattern ? q : searchedPattern));
    }
  }, [searchedPattern]);

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
                    title="Containers & datasets: a pattern never lists thousands of files, while an exact scope:name (no *) finds a file too"
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
                  const example = firstScope ? `${firstScope}:*` : '';
                  if (example) {
                    setQuery(example);
                    runSearch(example);
                  }
                }}
                disabled={model.scopes.length === 0}
              >
                {firstScope ? `${firstScope}:*` : 'scope:*'}
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
                ? `Token valid until ${formatTime(status.expires_at)}`
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
