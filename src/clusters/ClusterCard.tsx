import {
  Button,
  caretDownIcon,
  codeIcon,
  copyIcon,
  launchIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import React, { useEffect, useRef, useState } from 'react';

import { useBriefFlag } from '../common/useBriefFlag';
import { ClusterErrorNotice } from './ErrorNotice';
import {
  CLUSTER_STATE_HELP,
  CLUSTER_STATE_LABELS,
  describeWorkerOptions,
  explainMissingWorkers,
  formatDuration,
  holdReasons,
  jobCountEntries,
  progressText
} from './format';
import { IJobsState, IOperation, IOperationError } from './model';
import { ScaleEditor } from './ScaleEditor';
import { ClusterState, ICluster, IProfile, LIVE_STATES } from './types';
import { plural } from '../common/units';

/**
 * What a card can ask its surroundings to do.
 */
export interface IClusterCardActions {
  scale(id: string, workers: number): Promise<unknown>;
  adapt(
    id: string,
    bounds: { minimum: number; maximum: number } | null
  ): Promise<unknown>;
  /**
   * Shut down (asks for confirmation first) or dismiss an ended cluster.
   */
  shutdown(cluster: ICluster): Promise<unknown>;
  insertClientCode(cluster: ICluster): Promise<unknown>;
  copy(text: string): void;
  /**
   * Open the dashboard menu below `anchor`.
   */
  openDashboard(cluster: ICluster, anchor: HTMLElement): Promise<unknown>;
  dismissError(id: string): void;
  /**
   * Start dragging the card (into a notebook) on mousedown.
   */
  startDrag?(event: MouseEvent, card: HTMLElement, cluster: ICluster): void;
}

export interface IClusterCardProps {
  cluster: ICluster;
  profile?: IProfile;
  jobs?: IJobsState;
  operation?: IOperation;
  error?: IOperationError;
  actions: IClusterCardActions;
  /**
   * Whether the scale editor is open (controlled by the list, so a command
   * can open it).
   */
  scaleOpen: boolean;
  onScaleOpenChange(open: boolean): void;
  /**
   * The dashboard of this cluster is the one dask-labextension's panes show.
   */
  dashboardShown?: boolean;
}

/**
 * Ticks every second while `enabled`, for elapsed-time texts.
 */
export function useNow(enabled: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!enabled) {
      return;
    }
    setNow(Date.now());
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [enabled]);
  return now;
}

/**
 * The cluster state as a badge that always spells the state out.
 */
export function ClusterStateBadge(props: { state: ClusterState }): JSX.Element {
  const { state } = props;
  return (
    <span
      className="jp-AFLab-badge jp-AFLab-ClusterBadge"
      data-cluster-state={state}
      title={CLUSTER_STATE_HELP[state] ?? ''}
    >
      {CLUSTER_STATE_LABELS[state] ?? state}
    </span>
  );
}

/**
 * A spinner and a sentence: what is going on right now.
 */
export function Progress(props: {
  text: string;
  startedAt?: number;
  now?: number;
}): JSX.Element {
  const { text, startedAt, now } = props;
  const elapsed =
    startedAt !== undefined && now !== undefined
      ? ` ${formatDuration((now - startedAt) / 1000)}`
      : '';
  return (
    <div className="jp-AFLab-ClusterProgress" role="status" aria-live="polite">
      <span className="jp-AFLab-spinner" aria-hidden="true" />
      <span className="jp-AFLab-ClusterProgress-text">{text}</span>
      {elapsed && (
        <span className="jp-AFLab-ClusterProgress-elapsed">{elapsed}</span>
      )}
    </div>
  );
}

/**
 * One cluster: state, size, scheduler address, job states and its actions.
 */
export function ClusterCard(props: IClusterCardProps): JSX.Element {
  const {
    cluster,
    profile,
    jobs,
    operation,
    error,
    actions,
    scaleOpen,
    onScaleOpenChange,
    dashboardShown
  } = props;
  const live = LIVE_STATES.includes(cluster.state);
  const progress = operation ? null : progressText(cluster, Date.now());
  const now = useNow(!!operation || progress !== null);
  const progressNow = operation ? null : progressText(cluster, now);
  const busy = !!operation;
  const cardRef = useRef<HTMLLIElement>(null);
  const [copied, showCopied] = useBriefFlag(2000);
  const [dashboardLoading, setDashboardLoading] = useState(false);
  const [dashboardError, setDashboardError] = useState<unknown>(null);
  const [inserting, setInserting] = useState(false);

  const onMouseDown = (event: React.MouseEvent) => {
    if (live && actions.startDrag && cardRef.current) {
      actions.startDrag(event.nativeEvent, cardRef.current, cluster);
    }
  };

  const openDashboard = async (anchor: HTMLElement) => {
    setDashboardLoading(true);
    setDashboardError(null);
    try {
      await actions.openDashboard(cluster, anchor);
    } catch (e) {
      setDashboardError(e);
    } finally {
      setDashboardLoading(false);
    }
  };

  const insert = async () => {
    setInserting(true);
    try {
      await actions.insertClientCode(cluster);
    } finally {
      setInserting(false);
    }
  };

  const workersText =
    cluster.workers === cluster.requested_workers || !live
      ? String(cluster.workers)
      : `${cluster.workers} / ${cluster.requested_workers}`;

  return (
    <li
      ref={cardRef}
      className="jp-AFLab-ClusterCard"
      data-cluster-id={cluster.id}
      data-state={cluster.state}
      data-busy={busy ? 'true' : 'false'}
      aria-busy={busy || progressNow !== null}
      aria-label={`Cluster ${cluster.name}`}
      onMouseDown={onMouseDown}
      title={
        live && cluster.scheduler_address
          ? 'Drag into a notebook to insert the client code'
          : undefined
      }
    >
      <div className="jp-AFLab-ClusterCard-head">
        <span className="jp-AFLab-ClusterCard-name">{cluster.name}</span>
        <ClusterStateBadge state={cluster.state} />
      </div>
      <div className="jp-AFLab-ClusterCard-profile">
        <span title={`Profile "${cluster.profile}" (${cluster.backend})`}>
          {profile?.display_name ?? cluster.profile}
        </span>
        {live && (
          <span className="jp-AFLab-ClusterCard-per">
            {' · '}
            {describeWorkerOptions(cluster)}
          </span>
        )}
      </div>

      {live && (
        <dl className="jp-AFLab-ClusterStats">
          <div data-stat="workers">
            <dt>Workers</dt>
            <dd>{workersText}</dd>
          </div>
          <div data-stat="cores">
            <dt>Cores</dt>
            <dd>{cluster.cores}</dd>
          </div>
          <div data-stat="memory">
            <dt>Memory</dt>
            <dd>{cluster.memory}</dd>
          </div>
          {cluster.adapt && (
            <div data-stat="adapt">
              <dt>Adaptive</dt>
              <dd>
                {cluster.adapt.minimum}–{cluster.adapt.maximum}
              </dd>
            </div>
          )}
        </dl>
      )}

      {operation && (
        <Progress
          text={operation.text}
          startedAt={operation.startedAt}
          now={now}
        />
      )}
      {!operation && progressNow && <Progress text={progressNow} />}

      {cluster.message && (
        <div
          className={
            cluster.state === 'failed'
              ? 'jp-AFLab-notice jp-mod-error jp-AFLab-ClusterMessage'
              : 'jp-AFLab-ClusterMessage jp-AFLab-ClusterCard-muted'
          }
        >
          {cluster.message}
        </div>
      )}

      {cluster.warnings.length > 0 && live && (
        <div className="jp-AFLab-notice jp-mod-warning jp-AFLab-ClusterWarnings">
          {cluster.warnings.map((w, i) => (
            <div key={i}>{w}</div>
          ))}
        </div>
      )}

      <JobStatus cluster={cluster} jobs={jobs} />

      {live && cluster.scheduler_address && (
        <div className="jp-AFLab-ClusterCard-address">
          <span className="jp-AFLab-ClusterCard-label">Scheduler</span>
          <code title={cluster.scheduler_address}>
            {cluster.scheduler_address}
          </code>
          <Button
            className="jp-AFLab-button jp-AFLab-ClusterCard-copy"
            small
            minimal
            onClick={() => {
              actions.copy(cluster.scheduler_address);
              showCopied();
            }}
            title="Copy the scheduler address"
            aria-label="Copy scheduler address"
          >
            <copyIcon.react tag="span" className="jp-AFLab-button-icon" />
            <span>{copied ? 'Copied' : 'Copy'}</span>
          </Button>
        </div>
      )}

      {error && !scaleOpen && (
        <ClusterErrorNotice
          title={error.title}
          error={error.error}
          onDismiss={() => actions.dismissError(cluster.id)}
        />
      )}
      {dashboardError !== null && (
        <ClusterErrorNotice
          title="The dashboard could not be opened"
          error={dashboardError}
          onDismiss={() => setDashboardError(null)}
        />
      )}

      {scaleOpen && live && (
        <ScaleEditor
          cluster={cluster}
          profile={profile}
          busy={busy}
          operation={operation}
          error={error}
          onScale={n => actions.scale(cluster.id, n)}
          onAdapt={b => actions.adapt(cluster.id, b)}
          onClose={() => onScaleOpenChange(false)}
        />
      )}

      <div className="jp-AFLab-ClusterCard-actions">
        {live && (
          <>
            <Button
              className="jp-AFLab-button jp-AFLab-ClusterCard-dashboard"
              small
              disabled={!cluster.dashboard_url || dashboardLoading}
              onClick={e => void openDashboard(e.currentTarget)}
              title={
                dashboardShown
                  ? 'Dask dashboard panes (they show this cluster now)'
                  : 'Open Dask dashboard panes for this cluster'
              }
              aria-haspopup="menu"
            >
              {dashboardLoading ? (
                <span className="jp-AFLab-spinner" aria-hidden="true" />
              ) : (
                <launchIcon.react tag="span" className="jp-AFLab-button-icon" />
              )}
              <span>Dashboard</span>
              <caretDownIcon.react
                tag="span"
                className="jp-AFLab-button-icon"
              />
            </Button>
            <Button
              className="jp-AFLab-button jp-AFLab-ClusterCard-scale"
              small
              disabled={busy || cluster.state !== 'running'}
              onClick={() => onScaleOpenChange(!scaleOpen)}
              aria-expanded={scaleOpen}
              title="Change the number of workers or use adaptive scaling"
            >
              <span>Scale…</span>
            </Button>
            <Button
              className="jp-AFLab-button jp-AFLab-ClusterCard-insert"
              small
              disabled={!cluster.scheduler_address || inserting}
              onClick={() => void insert()}
              title="Insert the code that connects a notebook to this cluster into the active notebook (or drag this card into a notebook)"
            >
              <codeIcon.react tag="span" className="jp-AFLab-button-icon" />
              <span>Insert client code</span>
            </Button>
          </>
        )}
        <Button
          className="jp-AFLab-button jp-AFLab-ClusterCard-shutdown"
          small
          disabled={busy || cluster.state === 'stopping'}
          onClick={() => void actions.shutdown(cluster)}
          title={
            live
              ? 'Stop the workers, remove the batch jobs and stop the scheduler'
              : 'Remove this ended cluster from the list'
          }
        >
          {operation &&
          (operation.kind === 'shutdown' || operation.kind === 'dismiss') ? (
            <span className="jp-AFLab-spinner" aria-hidden="true" />
          ) : (
            live && (
              <stopIcon.react tag="span" className="jp-AFLab-button-icon" />
            )
          )}
          <span>
            {live
              ? operation?.kind === 'shutdown'
                ? 'Shutting down…'
                : 'Shut down'
              : 'Dismiss'}
          </span>
        </Button>
      </div>
    </li>
  );
}

/**
 * The batch job states of a cluster (idle or pending / running / held with
 * reasons),
 * so that "0 workers" is explained; one line for a local cluster.
 */
export function JobStatus(props: {
  cluster: ICluster;
  jobs?: IJobsState;
}): JSX.Element | null {
  const { cluster, jobs } = props;
  const live = LIVE_STATES.includes(cluster.state);
  if (cluster.backend === 'local') {
    if (!live) {
      return null;
    }
    return (
      <div className="jp-AFLab-JobStatus" data-backend="local">
        <span className="jp-AFLab-ClusterCard-label">Jobs</span>
        <span className="jp-AFLab-ClusterCard-muted">
          none (local workers, no batch jobs)
        </span>
      </div>
    );
  }
  const data = jobs?.data;
  const counts = data?.counts;
  const reasons = holdReasons(data);
  const why = explainMissingWorkers(cluster, data);
  return (
    <div
      className="jp-AFLab-JobStatus"
      data-backend={cluster.backend}
      data-loading={jobs?.loading ? 'true' : 'false'}
    >
      <div className="jp-AFLab-JobStatus-line">
        <span className="jp-AFLab-ClusterCard-label">Jobs</span>
        {counts ? (
          <span className="jp-AFLab-JobStatus-counts" title={data?.message}>
            {jobCountEntries(counts, cluster.backend).map(entry => (
              <span
                key={entry.key}
                className="jp-AFLab-JobCount"
                data-job-state={entry.key}
              >
                {entry.value} {entry.label}
              </span>
            ))}
            <span className="jp-AFLab-ClusterCard-muted">
              of {counts.submitted} submitted
            </span>
          </span>
        ) : jobs?.error ? null : (
          <span className="jp-AFLab-ClusterCard-muted">
            {jobs?.loading ? 'asking the batch system…' : 'not known yet'}
          </span>
        )}
        {jobs?.loading && counts && (
          <span
            className="jp-AFLab-spinner jp-AFLab-JobStatus-refreshing"
            aria-label="Refreshing the job states"
          />
        )}
      </div>
      {why && <div className="jp-AFLab-JobStatus-why">{why}</div>}
      {reasons.length > 0 && (
        <ul className="jp-AFLab-HoldReasons" aria-label="Hold reasons">
          {reasons.map(r => (
            <li key={r.reason}>
              <span className="jp-AFLab-JobCount" data-job-state="held">
                held{r.count > 1 ? ` ×${r.count}` : ''}
              </span>{' '}
              {r.reason}
            </li>
          ))}
        </ul>
      )}
      {jobs?.error !== null && jobs?.error !== undefined && (
        <div className="jp-AFLab-JobStatus-error">
          {counts ? 'The job states may be out of date: ' : ''}
          <ErrorText error={jobs.error} />
        </div>
      )}
      {data && data.jobs.length > 0 && (
        <details className="jp-AFLab-JobList">
          <summary>{plural(data.jobs.length, 'job')}</summary>
          <table>
            <thead>
              <tr>
                <th>Job</th>
                <th>State</th>
                <th>Worker</th>
              </tr>
            </thead>
            <tbody>
              {data.jobs.map(job => (
                <tr key={job.job_id} data-job-state={job.status}>
                  <td>{job.job_id}</td>
                  <td>{job.status}</td>
                  <td>
                    {job.connected
                      ? 'connected'
                      : job.status === 'running'
                        ? 'connecting'
                        : '–'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </div>
  );
}

function ErrorText(props: { error: unknown }): JSX.Element {
  const { error } = props;
  const text = error instanceof Error ? error.message : String(error);
  return <span>{text}</span>;
}
