import { Button, closeIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { requestErrorFacts } from '../common/feedback';
import { AFLabRequestError, describeError } from '../request';

/**
 * A hint for what the user can do, by the server's error type.
 */
const HINTS: Record<string, string> = {
  credentials:
    'The workers need your facility token: check "Facility status" above (the credential service) and log in again if it expired.',
  condor:
    'The batch system refused the request. The output of the HTCondor command is shown above; ask your facility administrators if it does not say what to change.',
  unavailable: 'The cluster could not be reached or started. Try again.',
  timeout:
    'Not every worker connected in time. The job states below the cluster say why.',
  conflict: 'The cluster has ended and cannot be changed any more.',
  network: ''
};

/**
 * A failed cluster request: the server's message, what the user can do, and
 * for HTCondor failures the command's stderr as printed.
 */
export function ClusterErrorNotice(props: {
  title: string;
  error: unknown;
  onDismiss?: () => void;
  children?: React.ReactNode;
}): JSX.Element {
  const { title, error, onDismiss, children } = props;
  const facts = requestErrorFacts(error);
  let stderr = '';
  let hint = '';
  if (error instanceof AFLabRequestError) {
    const d = error.details;
    if (typeof d.command === 'string') {
      facts.push(
        typeof d.exit_code === 'number'
          ? `${d.command} exited with ${d.exit_code}`
          : d.command
      );
    }
    if (typeof d.limit === 'string') {
      facts.push(`limit ${d.limit}`);
    }
    if (typeof d.stderr === 'string') {
      stderr = d.stderr;
    }
    hint = HINTS[error.type] ?? '';
  }
  let message = describeError(error);
  if (stderr && message.endsWith(stderr)) {
    // "condor_submit failed: <stderr>": the stderr is shown in full below.
    message = message.slice(0, message.length - stderr.length).trim();
    message = message.replace(/:$/, '.');
  }
  return (
    <div
      className="jp-AFLab-notice jp-mod-error jp-AFLab-ClusterError"
      role="alert"
    >
      <div className="jp-AFLab-ClusterError-head">
        <span className="jp-AFLab-notice-title">{title}</span>
        {onDismiss && (
          <Button
            className="jp-AFLab-ClusterError-dismiss"
            small
            minimal
            onClick={onDismiss}
            title="Hide this message"
            aria-label="Dismiss"
          >
            <closeIcon.react tag="span" className="jp-AFLab-button-icon" />
          </Button>
        )}
      </div>
      <div className="jp-AFLab-notice-message">{message}</div>
      {stderr && (
        <pre
          className="jp-AFLab-ClusterError-stderr"
          aria-label="Command output"
        >
          {stderr}
        </pre>
      )}
      {hint && <div className="jp-AFLab-ClusterError-hint">{hint}</div>}
      {facts.length > 0 && (
        <div className="jp-AFLab-notice-facts">{facts.join(' · ')}</div>
      )}
      {children}
    </div>
  );
}
