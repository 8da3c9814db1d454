/**
 * What a finished publish job shows: its DIDs (copy, show in Data), its
 * files, and its provenance.
 */
import { Button, copyIcon } from '@jupyterlab/ui-components';
import React, { useCallback, useContext, useEffect, useState } from 'react';
import { formatBytes, formatDate, formatTime, plural } from '../common/units';
import { useBriefFlag } from '../common/useBriefFlag';
import { AFLabRequestError, describeError } from '../request';
import { IJobFile, IProvenance, IProvenanceAnswer, IPublishJob } from './types';
import { Warnings } from './JobList';
import * as api from './api';

/**
 * "Show in Data" for published DIDs (absent: no such button).
 */
export const ShowInData = React.createContext<((did: string) => void) | null>(
  null
);

/**
 * A DID with a Copy button.
 */
export function CopyableDid(props: {
  did: string;
  label?: string;
  copy: (text: string) => void;
}): JSX.Element {
  const { did, label, copy } = props;
  const [copied, showCopied] = useBriefFlag(1500);
  const showInData = useContext(ShowInData);
  return (
    <div className="jp-AFLab-PublishDid" data-did={did}>
      {label && <span className="jp-AFLab-PublishDid-label">{label}</span>}
      <code className="jp-AFLab-PublishDid-name" title={did}>
        {did}
      </code>
      <Button
        className="jp-AFLab-button"
        small
        minimal
        title={`Copy ${did}`}
        aria-label={`Copy ${did}`}
        onClick={() => {
          copy(did);
          showCopied();
        }}
      >
        <copyIcon.react tag="span" className="jp-AFLab-button-icon" />
        <span>{copied ? 'Copied' : 'Copy'}</span>
      </Button>
      {showInData && (
        <Button
          className="jp-AFLab-button"
          small
          minimal
          title={`Find ${did} in the Data section`}
          aria-label={`Show ${did} in Data`}
          onClick={() => showInData(did)}
        >
          <span>Show in Data</span>
        </Button>
      )}
    </div>
  );
}

/**
 * What a finished job published: its DIDs (copyable), the rule, and the
 * provenance.
 */
export function DoneDetails(props: {
  job: IPublishJob;
  copy: (text: string) => void;
}): JSX.Element {
  const { job, copy } = props;
  const [files, setFiles] = useState<IJobFile[] | null>(null);
  const [filesError, setFilesError] = useState<unknown>(null);
  const [filesOpen, setFilesOpen] = useState(false);

  const loadFiles = useCallback(() => {
    setFilesError(null);
    api
      .fetchJob(job.id, 0, 200)
      .then(detail => setFiles(detail.files))
      .catch(error => setFilesError(error));
  }, [job.id]);

  // A single loose file is its own DID; a few files in a dataset are listed
  // at once; more behind a toggle.
  const singleLooseFile = job.files_total === 1 && !job.dataset && !!job.did;
  const inline = !singleLooseFile && job.files_total <= INLINE_FILES;
  useEffect(() => {
    if (inline && files === null) {
      loadFiles();
    }
  }, [inline, files, loadFiles]);

  const seen = new Set<string>();
  const dids: { did: string; label: string }[] = [];
  const add = (did: string | null | undefined, label: string) => {
    if (did && !seen.has(did)) {
      seen.add(did);
      dids.push({ did, label });
    }
  };
  add(job.container?.did, 'Container');
  add(job.dataset?.did, 'Dataset');
  add(job.did, job.dataset ? 'Dataset' : 'File');

  const provenanceDid = job.did ?? job.dataset?.did ?? null;
  const fileDids = (
    <FileDids
      job={job}
      files={files}
      error={filesError}
      loading={files === null && filesError === null}
      copy={copy}
    />
  );

  return (
    <div className="jp-AFLab-PublishDone">
      <div className="jp-AFLab-PublishJob-message">{job.message}</div>
      {job.noop && (
        <div className="jp-AFLab-notice jp-mod-warning">
          Nothing new was published: the same content already exists in Rucio
          under {job.did ? <code>{job.did}</code> : 'these names'}.
        </div>
      )}
      <div className="jp-AFLab-PublishDone-dids" aria-label="Published DIDs">
        {dids.map(d => (
          <CopyableDid key={d.did} did={d.did} label={d.label} copy={copy} />
        ))}
      </div>
      {inline && fileDids}
      {!inline && !singleLooseFile && (
        <details
          className="jp-AFLab-PublishJob-details"
          onToggle={event => {
            const open = (event.currentTarget as HTMLDetailsElement).open;
            setFilesOpen(open);
            if (open && files === null) {
              loadFiles();
            }
          }}
        >
          <summary>{plural(job.files_total, 'file')}</summary>
          {filesOpen && fileDids}
        </details>
      )}
      <div className="jp-AFLab-PublishJob-meta">
        {formatBytes(job.bytes_total)}
        {job.expires_at
          ? ` · rule on ${job.request?.rse ?? 'the RSE'} until ${formatDate(job.expires_at)}`
          : ' · rule without expiry'}
        {job.rule_state ? ` (${job.rule_state})` : ''}
      </div>
      {(job.warnings ?? []).length > 0 && (
        <details className="jp-AFLab-PublishJob-details">
          <summary>{plural((job.warnings ?? []).length, 'note')}</summary>
          <Warnings warnings={job.warnings ?? []} />
        </details>
      )}
      {provenanceDid && (
        <ProvenanceDetails
          did={provenanceDid}
          instance={job.request?.instance}
          fallback={job.provenance}
        />
      )}
    </div>
  );
}

/**
 * Jobs with at most this many files list their file DIDs at once.
 */
export const INLINE_FILES = 5;

export function FileDids(props: {
  job: IPublishJob;
  files: IJobFile[] | null;
  error: unknown;
  loading: boolean;
  copy: (text: string) => void;
}): JSX.Element {
  const { job, files, error, loading, copy } = props;
  return (
    <div className="jp-AFLab-PublishDone-files" aria-label="Published files">
      {loading && <div className="jp-AFLab-PublishForm-muted">Loading…</div>}
      {error !== null && (
        <div className="jp-AFLab-notice jp-mod-error" role="alert">
          Could not list the files: {describeError(error)}
        </div>
      )}
      {files?.map(f => (
        <CopyableDid
          key={f.did}
          did={f.did}
          label={job.files_total <= INLINE_FILES ? 'File' : undefined}
          copy={copy}
        />
      ))}
      {files && job.files_total > files.length && (
        <div className="jp-AFLab-PublishForm-muted">
          and {plural(job.files_total - files.length, 'more file')}
        </div>
      )}
    </div>
  );
}

export const PROVENANCE_LABELS: Record<string, string> = {
  notebook: 'Notebook',
  git_commit: 'Git commit',
  git_dirty: 'Uncommitted changes',
  inputs: 'Input data',
  cluster_profile: 'Cluster profile',
  af_lab_version: 'af-lab version',
  published_at: 'Published at',
  published_by: 'Published by',
  publish_job: 'Publish job',
  source: 'Local path'
};

/**
 * The provenance of a published DID, read when opened
 * (`publish/provenance`).
 */
export function ProvenanceDetails(props: {
  did: string;
  instance?: string;
  fallback?: IProvenance;
}): JSX.Element {
  const { did, instance, fallback } = props;
  const [answer, setAnswer] = useState<IProvenanceAnswer | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);

  const load = () => {
    setLoading(true);
    setError(null);
    api
      .fetchProvenance(did, instance)
      .then(a => setAnswer(a))
      .catch(e => setError(e))
      .finally(() => setLoading(false));
  };

  const provenance = answer?.provenance ?? (error ? fallback : undefined);
  return (
    <details
      className="jp-AFLab-PublishJob-details jp-AFLab-Provenance"
      onToggle={event => {
        if (
          (event.currentTarget as HTMLDetailsElement).open &&
          answer === null &&
          !loading
        ) {
          load();
        }
      }}
    >
      <summary>Provenance</summary>
      {loading && <div className="jp-AFLab-PublishForm-muted">Loading…</div>}
      {error !== null && (
        <div className="jp-AFLab-notice jp-mod-warning">
          Could not read the recorded provenance of {did}:{' '}
          {describeError(error)}
          {fallback && ' Shown below: what the job recorded.'}
          {error instanceof AFLabRequestError && error.status !== 404 && (
            <Button className="jp-AFLab-button" small onClick={load}>
              Try again
            </Button>
          )}
        </div>
      )}
      {answer && (
        <div className="jp-AFLab-PublishForm-muted">
          {answer.source === 'rucio'
            ? `Stored in Rucio as metadata of ${answer.did}.`
            : `Kept by af-lab (this Rucio server stores no custom metadata).`}
        </div>
      )}
      {provenance && (
        <dl className="jp-AFLab-Provenance-list">
          {Object.entries(provenance)
            .filter(([, v]) => v !== null && v !== undefined && v !== '')
            .map(([key, value]) => (
              <React.Fragment key={key}>
                <dt>{PROVENANCE_LABELS[key] ?? key}</dt>
                <dd>{formatValue(key, value)}</dd>
              </React.Fragment>
            ))}
        </dl>
      )}
    </details>
  );
}

export function formatValue(key: string, value: unknown): string {
  if (typeof value === 'boolean') {
    return value ? 'yes' : 'no';
  }
  if (Array.isArray(value)) {
    return value.length ? value.join(', ') : 'none';
  }
  if (key === 'published_at' && typeof value === 'string') {
    return formatTime(value);
  }
  if (typeof value === 'object') {
    return JSON.stringify(value);
  }
  return String(value);
}
