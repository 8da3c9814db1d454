import { addIcon, Button } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useRef, useState } from 'react';

import { RefreshButton } from '../common/feedback';
import { describeError } from '../request';
import {
  ClusterCard,
  IClusterCardActions,
  Progress,
  useNow
} from './ClusterCard';
import { ClusterForm, IFormDraft } from './ClusterForm';
import { ClusterErrorNotice } from './ErrorNotice';
import { ClustersModel, fieldOf, ICreation, UIRequest } from './model';
import { ICluster, ICreateClusterBody } from './types';
import { plural } from '../common/units';

export interface IClustersPanelProps {
  model: ClustersModel;
  actions: Omit<IClusterCardActions, 'scale' | 'adapt' | 'dismissError'>;
  /**
   * The id of the cluster whose dashboard dask-labextension's panes show.
   */
  shownDashboard?: () => string;
}

/**
 * Re-render on every change of the model.
 */
function useModel(model: ClustersModel): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const onChange = () => setVersion(v => v + 1);
    model.changed.connect(onChange);
    return () => {
      model.changed.disconnect(onChange);
    };
  }, [model]);
  return version;
}

/**
 * The Clusters section: the clusters first (one card each, newest work at
 * the top of the list), a "New cluster" form rendered from the profile's
 * schema, and placeholders with a spinner while a cluster is being created.
 */
export function ClustersPanel(props: IClustersPanelProps): JSX.Element {
  const { model, actions, shownDashboard } = props;
  useModel(model);
  const [formOpen, setFormOpen] = useState(false);
  const [formProfile, setFormProfile] = useState<string | undefined>();
  const [draft, setDraft] = useState<IFormDraft | null>(null);
  const [formServerError, setFormServerError] = useState<unknown>(null);
  const [scaleOpen, setScaleOpen] = useState<string | null>(null);
  // What each creation was submitted with, to reopen the form after a failure.
  const drafts = useRef(new Map<number, IFormDraft>());

  const openForm = useCallback(
    (profile?: string) => {
      setFormProfile(profile);
      setFormOpen(true);
      if (!model.profiles && !model.profilesLoading) {
        void model.loadProfiles();
      }
    },
    [model]
  );

  useEffect(() => {
    const onRequest = (_: ClustersModel, request: UIRequest) => {
      if (request.kind === 'create') {
        openForm(request.profile);
      } else if (request.kind === 'scale') {
        setScaleOpen(request.id);
        window.requestAnimationFrame(() => {
          document
            .querySelector(
              `.jp-AFLab-ClusterCard[data-cluster-id="${request.id}"]`
            )
            ?.scrollIntoView?.({ block: 'nearest' });
        });
      }
    };
    model.uiRequested.connect(onRequest);
    return () => {
      model.uiRequested.disconnect(onRequest);
    };
  }, [model, openForm]);

  const submit = (
    profile: string,
    body: ICreateClusterBody,
    name: string,
    formDraft: IFormDraft
  ) => {
    setFormServerError(null);
    setFormOpen(false);
    const request = model.create(profile, body, name);
    const key = model.creations[0]?.key;
    if (key !== undefined) {
      drafts.current.set(key, formDraft);
    }
    request.then(
      () => {
        drafts.current.delete(key ?? -1);
        setDraft(null);
      },
      error => {
        if (fieldOf(error)) {
          // e.g. over_limit: back to the form, the error on its field.
          drafts.current.delete(key ?? -1);
          setDraft(formDraft);
          setFormServerError(error);
          setFormOpen(true);
        }
      }
    );
  };

  const reopen = (creation: ICreation) => {
    setDraft(drafts.current.get(creation.key) ?? null);
    drafts.current.delete(creation.key);
    model.dismissCreation(creation.key);
    setFormServerError(null);
    openForm(creation.profileName);
  };

  const cardActions: IClusterCardActions = {
    ...actions,
    scale: (id, n) => model.scale(id, n),
    adapt: (id, bounds) => model.adapt(id, bounds),
    dismissError: id => model.dismissError(id)
  };

  const clusters = model.clusters;
  const creations = model.creations;
  const profiles = model.profiles;
  const listError = model.listError;
  const live = (clusters ?? []).filter(
    c => c.state === 'running' || c.state === 'starting'
  );
  const totalWorkers = live.reduce((n, c) => n + c.workers, 0);
  const shown = shownDashboard?.() ?? '';
  // Newest first: the cluster just made is where the eye is.
  const ordered: ICluster[] = [...(clusters ?? [])].reverse();

  let summary: string;
  if (clusters === null) {
    summary = listError ? 'Clusters unavailable' : 'Loading clusters…';
  } else if (clusters.length === 0 && creations.length === 0) {
    summary = 'No clusters';
  } else {
    summary = `${plural(live.length, 'cluster')} running · ${plural(totalWorkers, 'worker')}`;
    const starting = creations.filter(c => c.state === 'creating').length;
    if (starting > 0) {
      summary += ` · creating ${starting}`;
    }
  }

  return (
    <div
      className="jp-AFLab-panel jp-AFLab-ClustersPanel"
      data-phase={
        clusters === null ? (listError ? 'error' : 'loading') : 'ready'
      }
      data-loading={model.loading ? 'true' : 'false'}
    >
      <div className="jp-AFLab-panel-header jp-AFLab-ClustersPanel-header">
        <span className="jp-AFLab-ClustersPanel-summary" role="status">
          {summary}
        </span>
        <RefreshButton
          onClick={() => void model.refresh()}
          loading={model.loading}
          title="Fetch the clusters and their job states again"
          ariaLabel="Refresh clusters"
        />
        <Button
          className="jp-AFLab-button jp-mod-accept jp-AFLab-ClustersPanel-new"
          small
          onClick={() => (formOpen ? setFormOpen(false) : openForm())}
          aria-expanded={formOpen}
          title="Create a Dask cluster with the options you choose"
        >
          <addIcon.react tag="span" className="jp-AFLab-button-icon" />
          <span>New cluster</span>
        </Button>
      </div>

      {profiles && profiles.errors.length > 0 && (
        <details className="jp-AFLab-notice jp-mod-warning jp-AFLab-ProfileErrors">
          <summary>
            {plural(profiles.errors.length, 'cluster profile')} of this site{' '}
            {profiles.errors.length === 1 ? 'is' : 'are'} broken (tell your
            administrators)
          </summary>
          <ul>
            {profiles.errors.map(e => (
              <li key={e}>{e}</li>
            ))}
          </ul>
        </details>
      )}

      {formOpen && (
        <div className="jp-AFLab-ClustersPanel-form">
          {profiles && profiles.profiles.length > 0 ? (
            <ClusterForm
              profiles={profiles}
              draft={draft}
              initialProfile={formProfile}
              serverError={formServerError}
              onSubmit={submit}
              onCancel={() => {
                setFormOpen(false);
                setFormServerError(null);
                setDraft(null);
              }}
            />
          ) : profiles && profiles.profiles.length === 0 ? (
            <div className="jp-AFLab-notice jp-mod-warning">
              This site offers no cluster profiles. Ask your facility
              administrators to configure one.
            </div>
          ) : model.profilesError ? (
            <ClusterErrorNotice
              title="The cluster options could not be loaded"
              error={model.profilesError}
            >
              <Button
                className="jp-AFLab-button"
                small
                onClick={() => void model.loadProfiles()}
              >
                <span>Try again</span>
              </Button>
            </ClusterErrorNotice>
          ) : (
            <Progress text="Loading the cluster options…" />
          )}
        </div>
      )}

      {clusters === null && listError !== null && (
        <ClusterErrorNotice
          title="Could not list your clusters"
          error={listError}
        >
          <Button
            className="jp-AFLab-button"
            small
            onClick={() => void model.refresh()}
            disabled={model.loading}
          >
            <span>{model.loading ? 'Trying again…' : 'Try again'}</span>
          </Button>
        </ClusterErrorNotice>
      )}
      {clusters !== null && listError !== null && (
        <div className="jp-AFLab-notice jp-mod-warning" role="alert">
          The last refresh failed: {describeError(listError)} The cards show the
          state before it.
        </div>
      )}
      {clusters === null && listError === null && (
        <Progress text="Loading your clusters…" />
      )}

      <ul className="jp-AFLab-ClusterList" aria-label="Dask clusters">
        {creations.map(c => (
          <CreationCard
            key={`creation-${c.key}`}
            creation={c}
            onEdit={() => reopen(c)}
            onDismiss={() => {
              drafts.current.delete(c.key);
              model.dismissCreation(c.key);
            }}
          />
        ))}
        {ordered.map(cluster => (
          <ClusterCard
            key={cluster.id}
            cluster={cluster}
            profile={model.profile(cluster.profile)}
            jobs={model.jobs(cluster.id)}
            operation={model.operation(cluster.id)}
            error={model.error(cluster.id)}
            actions={cardActions}
            scaleOpen={scaleOpen === cluster.id}
            onScaleOpenChange={open => setScaleOpen(open ? cluster.id : null)}
            dashboardShown={shown === cluster.id}
          />
        ))}
      </ul>

      {clusters !== null &&
        clusters.length === 0 &&
        creations.length === 0 &&
        !formOpen && (
          <div className="jp-AFLab-ClustersPanel-empty">
            <p>
              No clusters yet. A Dask cluster spreads your computation over many
              workers; start one here, then connect a notebook to it.
            </p>
            <Button
              className="jp-AFLab-button jp-mod-accept"
              small
              onClick={() => openForm()}
            >
              <addIcon.react tag="span" className="jp-AFLab-button-icon" />
              <span>New cluster</span>
            </Button>
          </div>
        )}
    </div>
  );
}

/**
 * A cluster being created (spinner, elapsed time, what happens), or one whose
 * creation failed (the error, "Edit options", "Dismiss").
 */
export function CreationCard(props: {
  creation: ICreation;
  onEdit(): void;
  onDismiss(): void;
}): JSX.Element {
  const { creation, onEdit, onDismiss } = props;
  const creating = creation.state === 'creating';
  const now = useNow(creating);
  const batch = creation.profile?.backend !== 'local';
  const adapt = creation.body.adapt;
  const workers =
    typeof creation.body.workers === 'number' ? creation.body.workers : 0;
  const profileLabel = creation.profile?.display_name ?? creation.profileName;
  let what: string;
  if (adapt) {
    what = `adaptive scaling between ${adapt.minimum} and ${plural(adapt.maximum, 'worker')}`;
  } else if (workers > 0) {
    what = batch
      ? `submitting ${plural(workers, 'HTCondor job')} for the workers`
      : `starting ${plural(workers, 'worker')}`;
  } else {
    what = 'no workers yet (scale it when it is ready)';
  }
  return (
    <li
      className="jp-AFLab-ClusterCard jp-AFLab-CreationCard"
      data-state={creating ? 'creating' : 'create-failed'}
      aria-busy={creating}
    >
      <div className="jp-AFLab-ClusterCard-head">
        <span className="jp-AFLab-ClusterCard-name">
          {creation.name || `New ${profileLabel} cluster`}
        </span>
        <span
          className="jp-AFLab-badge jp-AFLab-ClusterBadge"
          data-cluster-state={creating ? 'starting' : 'failed'}
        >
          {creating ? 'Creating' : 'Not created'}
        </span>
      </div>
      <div className="jp-AFLab-ClusterCard-profile">{profileLabel}</div>
      {creating ? (
        <>
          <Progress
            text="Creating the cluster: starting the scheduler…"
            startedAt={creation.startedAt}
            now={now}
          />
          <div className="jp-AFLab-ClusterCard-muted jp-AFLab-CreationCard-detail">
            Then {what}. This usually takes 10–30 s
            {batch ? '; batch jobs may wait longer for a free slot' : ''}.
          </div>
        </>
      ) : (
        <ClusterErrorNotice
          title="The cluster could not be created"
          error={creation.error}
        >
          <div className="jp-AFLab-ClusterCard-actions">
            <Button className="jp-AFLab-button" small onClick={onEdit}>
              <span>Edit options</span>
            </Button>
            <Button
              className="jp-AFLab-button"
              small
              minimal
              onClick={onDismiss}
            >
              <span>Dismiss</span>
            </Button>
          </div>
        </ClusterErrorNotice>
      )}
    </li>
  );
}
