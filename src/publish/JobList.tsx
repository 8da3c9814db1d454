import { Clipboard } from '@jupyterlab/apputils';
import {
  Button,
  closeIcon,
  editIcon,
  refreshIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useRef, useState } from 'react';
import { ActionButton } from '../common/ActionButton';
import { IStreamStatus } from '../common/eventStream';
import { ErrorNotice, LoadingStatus, RefreshButton } from '../common/feedback';
import { formatTime, plural } from '../common/units';
import { useRetryCountdown } from '../common/useRetryCountdown';
import { describeError } from '../request';
import {
  isActive,
  isEnded,
  jobProgress,
  jobTitle,
  PHASE_LABELS,
  PHASE_ORDER,
  STATE_LABELS
} from './format';
import { publishIcon } from './icons';
import { PublishJobsModel } from './model';
import { IPublishJob } from './types';
import { ShowInData, DoneDetails } from './JobDetails';

export { CopyableDid, ProvenanceDetails } from './JobDetails';

/**
 * Props of {@link PublishPanel}.
 */
export interface IPublishPanelProps {
  model: PublishJobsModel;
  /**
   * Open the Publish dialog (for the current file-browser selection).
   */
  onPublish: () => void;
  /**
   * Open the Publish dialog prefilled with an ended job's request.
   */
  onPublishAgain?: (job: IPublishJob) => void;
  /**
   * Copy text to the clipboard (default: JupyterLab's clipboard).
   */
  copy?: (text: string) => void;
  /**
   * Find a published DID in the Data section.
   */
  showInData?: (did: string) => void;
}

/**
 * The sidebar's "Publish" section: a Publish button and the user's publish
 * jobs with live progress, errors, actions and, once done, the published
 * DIDs and their provenance.
 */
export function PublishPanel(props: IPublishPanelProps): JSX.Element {
  const { model, onPublish } = props;
  const copy = props.copy ?? defaultCopy;
  const [, setTick] = useState(0);

  useEffect(() => {
    const onChange = () => setTick(t => t + 1);
    model.changed.connect(onChange);
    return () => {
      model.changed.disconnect(onChange);
    };
  }, [model]);

  const { jobs, loaded, loading, error } = model;
  const phase = loaded ? 'ready' : error ? 'error' : 'loading';

  return (
    <ShowInData.Provider value={props.showInData ?? null}>
      <div
        className="jp-AFLab-panel jp-AFLab-PublishPanel"
        data-phase={phase}
        aria-busy={loading}
      >
        <div className="jp-AFLab-panel-header jp-AFLab-PublishPanel-header">
          <Button
            className="jp-AFLab-button jp-AFLab-PublishPanel-publish"
            small
            onClick={onPublish}
            title="Publish the files or folders selected in the file browser to Rucio"
          >
            <publishIcon.react tag="span" className="jp-AFLab-button-icon" />
            <span>Publish…</span>
          </Button>
          <StreamState
            status={model.streamStatus}
            onReconnect={() => model.reconnect()}
          />
          <RefreshButton
            onClick={() => void model.refresh()}
            loading={loading}
            title="Read the list of publish jobs again"
            ariaLabel="Refresh publish jobs"
            label="Refresh"
          />
        </div>

        {phase === 'loading' && (
          <LoadingStatus className="jp-AFLab-PublishPanel-empty" role="status">
            Loading your publish jobs…
          </LoadingStatus>
        )}

        {error !== null && (
          <ErrorNotice
            title="Could not list your publish jobs"
            message={describeError(error)}
            facts={loaded ? ['The list below may be out of date.'] : []}
          />
        )}

        {loaded && jobs.length === 0 && (
          <div className="jp-AFLab-statusLine jp-AFLab-PublishPanel-empty">
            Nothing published yet. Right-click a file or folder in the file
            browser and choose “Publish to Rucio…”, or select it and click
            Publish.
          </div>
        )}

        {jobs.length > 0 && (
          <ul className="jp-AFLab-PublishJobs" aria-label="Publish jobs">
            {jobs.map(job => (
              <JobCard
                key={job.id}
                job={job}
                model={model}
                copy={copy}
                onPublishAgain={props.onPublishAgain}
              />
            ))}
          </ul>
        )}
      </div>
    </ShowInData.Provider>
  );
}

function defaultCopy(text: string): void {
  Clipboard.copyToSystem(text);
}

/**
 * Whether live progress arrives, in words.
 */
export function StreamState(props: {
  status: IStreamStatus | null;
  onReconnect: () => void;
}): JSX.Element | null {
  const { status, onReconnect } = props;
  const seconds = useRetryCountdown(status);
  if (!status) {
    return null;
  }
  if (status.state === 'open') {
    return (
      <span
        className="jp-AFLab-PublishPanel-live"
        data-stream="open"
        title="Progress arrives live from the server"
      >
        Live
      </span>
    );
  }
  if (status.state === 'retrying') {
    return (
      <span
        className="jp-AFLab-PublishPanel-live"
        data-stream="retrying"
        title={`Live updates stopped: ${status.error ?? 'connection lost'}. The list is refreshed every few seconds meanwhile.`}
      >
        Reconnecting{seconds > 0 ? ` in ${seconds} s` : '…'}{' '}
        <button
          type="button"
          className="jp-AFLab-linkButton"
          onClick={onReconnect}
        >
          now
        </button>
      </span>
    );
  }
  return (
    <span className="jp-AFLab-PublishPanel-live" data-stream={status.state}>
      Connecting…
    </span>
  );
}

/**
 * One publish job.
 */
export function JobCard(props: {
  job: IPublishJob;
  model: PublishJobsModel;
  copy: (text: string) => void;
  onPublishAgain?: (job: IPublishJob) => void;
}): JSX.Element {
  const { job, model, copy, onPublishAgain } = props;
  const [busy, setBusy] = useState<string | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const run = useCallback((what: string, action: () => Promise<unknown>) => {
    setBusy(what);
    setActionError(null);
    action()
      .catch(error => {
        if (mounted.current) {
          setActionError(error);
        }
      })
      .finally(() => {
        if (mounted.current) {
          setBusy(null);
        }
      });
  }, []);

  const active = isActive(job);
  const ended = isEnded(job);
  const request = job.request ?? { paths: [] };
  const paths = request.paths ?? [];
  const [confirming, setConfirming] = useState(false);
  // Without Rucio metadata, af-lab's job record is the only provenance.
  const provenanceOnlyHere =
    job.state === 'done' && job.provenance_in_rucio === false;
  const canCancel = active || job.state === 'interrupted';
  // Registering in Rucio is not undone: the job finishes what it started.
  const tooLateToCancel =
    job.phase === 'registering' ||
    job.phase === 'protecting' ||
    job.phase === 'finishing';
  const canRetry =
    job.state === 'interrupted' ||
    job.state === 'failed' ||
    job.state === 'cancelled';

  return (
    <li
      className="jp-AFLab-PublishJob"
      data-job-id={job.id}
      data-state={job.state}
      data-phase={job.phase}
    >
      <div className="jp-AFLab-PublishJob-main">
        <span className="jp-AFLab-PublishJob-title" title={jobTitle(job)}>
          {jobTitle(job)}
        </span>
        <span
          className="jp-AFLab-badge jp-AFLab-PublishJob-state"
          data-state={job.state}
        >
          {STATE_LABELS[job.state] ?? job.state}
        </span>
      </div>
      <div className="jp-AFLab-PublishJob-meta">
        <span title={paths.join('\n')}>
          {paths.length === 1 ? paths[0] : plural(paths.length, 'path')}
        </span>
        <span> · {request.rse ?? ''}</span>
        <span> · {formatTime(job.created)}</span>
      </div>

      {(active || job.state === 'interrupted') && <Progress job={job} />}

      {job.state === 'interrupted' && (
        <div className="jp-AFLab-notice jp-mod-warning" role="status">
          <div className="jp-AFLab-notice-title">Interrupted</div>
          <div>{job.error?.message ?? job.message}</div>
          <div className="jp-AFLab-notice-facts">
            {job.error?.suggestion ??
              'Nothing is lost: resume to continue where it stopped.'}
          </div>
        </div>
      )}

      {job.state === 'failed' && (
        <div className="jp-AFLab-notice jp-mod-error" role="alert">
          <div className="jp-AFLab-notice-title">Failed</div>
          <div>{job.error?.message ?? job.message}</div>
          {job.error?.suggestion && (
            <div>
              Suggestion: <code>{job.error.suggestion}</code>
            </div>
          )}
          {job.message &&
            job.error?.message &&
            job.message !== job.error.message && (
              <div className="jp-AFLab-notice-facts">{job.message}</div>
            )}
        </div>
      )}

      {job.state === 'cancelled' && (
        <div className="jp-AFLab-PublishJob-message">{job.message}</div>
      )}

      {job.state === 'done' && <DoneDetails job={job} copy={copy} />}

      {(job.warnings ?? []).length > 0 && job.state !== 'done' && (
        <Warnings warnings={job.warnings ?? []} />
      )}

      {actionError !== null && (
        <div className="jp-AFLab-notice jp-mod-error" role="alert">
          {describeError(actionError)}
        </div>
      )}

      <div className="jp-AFLab-PublishJob-actions">
        {canCancel && (
          <ActionButton
            icon={stopIcon}
            label="Cancel"
            busyLabel="Cancelling…"
            busy={busy === 'cancel'}
            disabled={busy !== null || tooLateToCancel}
            title={
              tooLateToCancel
                ? 'Too late to cancel: the files are being registered in Rucio, and the job finishes what it started.'
                : 'Stop the job; copies made so far are removed from the storage'
            }
            onClick={() => run('cancel', () => model.cancel(job.id))}
          />
        )}
        {canRetry && (
          <ActionButton
            icon={refreshIcon}
            label={job.state === 'interrupted' ? 'Resume' : 'Retry'}
            busyLabel="Starting…"
            busy={busy === 'retry'}
            disabled={busy !== null}
            title={
              job.state === 'interrupted'
                ? 'Continue the job where it stopped'
                : 'Run the same publish again as a new job (checked afresh)'
            }
            onClick={() => run('retry', () => model.retry(job.id))}
          />
        )}
        {onPublishAgain &&
          (job.state === 'failed' || job.state === 'cancelled') && (
            <ActionButton
              icon={editIcon}
              label="Edit and publish again…"
              disabled={busy !== null}
              title="Open the Publish dialog with this job's choices, to change them and publish again"
              onClick={() => onPublishAgain(job)}
            />
          )}
        {ended && !confirming && (
          <ActionButton
            icon={closeIcon}
            minimal
            label="Dismiss"
            busyLabel="Removing…"
            busy={busy === 'dismiss'}
            disabled={busy !== null}
            title="Remove this job from the list (the published data stays in Rucio)"
            onClick={() =>
              provenanceOnlyHere
                ? setConfirming(true)
                : run('dismiss', () => model.dismiss(job.id))
            }
          />
        )}
      </div>
      {confirming && (
        <div className="jp-AFLab-notice jp-mod-warning" role="alert">
          <div>
            This Rucio server keeps no custom metadata, so the provenance of
            these DIDs (notebook, commit, inputs) is kept only in this job
            record. Dismissing it forgets where the data came from; the data
            stays in Rucio.
          </div>
          <div className="jp-AFLab-PublishJob-actions">
            <ActionButton
              label="Dismiss anyway"
              busyLabel="Removing…"
              busy={busy === 'dismiss'}
              disabled={busy !== null}
              onClick={() =>
                run('dismiss', async () => {
                  await model.dismiss(job.id);
                })
              }
            />
            <ActionButton
              minimal
              label="Keep it"
              onClick={() => setConfirming(false)}
            />
          </div>
        </div>
      )}
    </li>
  );
}

export function Warnings(props: { warnings: string[] }): JSX.Element {
  return (
    <>
      {props.warnings.map((w, i) => (
        <div key={i} className="jp-AFLab-notice jp-mod-warning">
          {w}
        </div>
      ))}
    </>
  );
}

/**
 * Phase steps, a progress bar and the server's message, while a job runs.
 */
export function Progress(props: { job: IPublishJob }): JSX.Element {
  const { job } = props;
  const { fraction, text } = jobProgress(job);
  const current = PHASE_ORDER.indexOf(job.phase);
  const phaseLabel = PHASE_LABELS[job.phase] ?? job.phase;
  const label =
    job.state === 'queued'
      ? 'Waiting to start'
      : job.state === 'interrupted'
        ? `Stopped while ${phaseLabel.charAt(0).toLowerCase()}${phaseLabel.slice(1)}`
        : phaseLabel;
  const showMessage =
    !!job.message &&
    job.state !== 'interrupted' &&
    job.message.replace(/\.$/, '') !== label;
  return (
    <div className="jp-AFLab-PublishProgress">
      <div className="jp-AFLab-PublishProgress-phase">
        {job.state === 'running' && (
          <span className="jp-AFLab-spinner" aria-hidden="true" />
        )}
        <span className="jp-AFLab-PublishProgress-label">{label}</span>
        {current >= 0 && (
          <span className="jp-AFLab-PublishProgress-step">
            step {current + 1} of {PHASE_ORDER.length}
          </span>
        )}
      </div>
      <div
        className="jp-AFLab-bar jp-AFLab-PublishProgress-bar"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={
          fraction === null ? undefined : Math.round(fraction * 100)
        }
        data-indeterminate={fraction === null ? 'true' : undefined}
        data-stopped={job.state === 'interrupted' ? 'true' : undefined}
      >
        <div
          className="jp-AFLab-bar-fill jp-AFLab-PublishProgress-fill"
          style={{
            width: `${fraction === null ? 100 : Math.round(Math.min(1, fraction) * 100)}%`
          }}
        />
      </div>
      <div className="jp-AFLab-PublishProgress-text">{text}</div>
      {showMessage && (
        <div className="jp-AFLab-PublishJob-message">{job.message}</div>
      )}
    </div>
  );
}
