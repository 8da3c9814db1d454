import { Button, refreshIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { AFLabRequestError, describeError } from '../request';

/**
 * The refresh glyph of a button; it turns while `spinning`.
 */
export function RefreshIcon(props: { spinning?: boolean }): JSX.Element {
  return (
    <refreshIcon.react
      tag="span"
      className={
        props.spinning
          ? 'jp-AFLab-button-icon jp-mod-spin'
          : 'jp-AFLab-button-icon'
      }
    />
  );
}

/**
 * A section header's refresh button: disabled, with a turning icon, while
 * `loading`. `label` is the word next to the icon, if any.
 */
export function RefreshButton(props: {
  onClick: () => void;
  loading: boolean;
  title: string;
  ariaLabel: string;
  label?: React.ReactNode;
}): JSX.Element {
  const { onClick, loading, title, ariaLabel, label } = props;
  return (
    <Button
      className="jp-AFLab-button"
      small
      minimal
      onClick={onClick}
      disabled={loading}
      title={title}
      aria-label={ariaLabel}
    >
      <RefreshIcon spinning={loading} />
      {label !== undefined && <span>{label}</span>}
    </Button>
  );
}

/**
 * A spinner and what is being waited for. `className` gives the place its
 * padding; `role` is left to the caller, since a panel may have one status
 * region already.
 */
export function LoadingStatus(props: {
  className: string;
  role?: 'status';
  children: React.ReactNode;
}): JSX.Element {
  return (
    <div className={`jp-AFLab-statusLine ${props.className}`} role={props.role}>
      <span className="jp-AFLab-spinner" aria-hidden="true" />
      <span>{props.children}</span>
    </div>
  );
}

/**
 * The facts of a failed request worth showing under its message: the HTTP
 * status and the server's error type.
 */
export function requestErrorFacts(error: unknown): string[] {
  const facts: string[] = [];
  if (error instanceof AFLabRequestError) {
    if (error.status > 0) {
      facts.push(`HTTP ${error.status}`);
    }
    if (error.type) {
      facts.push(error.type);
    }
  }
  return facts;
}

/**
 * A red notice: a title, a message, facts in small print, then `children`
 * (e.g. buttons).
 */
export function ErrorNotice(props: {
  title: string;
  message: string;
  facts?: string[];
  children?: React.ReactNode;
}): JSX.Element {
  const { title, message, facts = [], children } = props;
  return (
    <div className="jp-AFLab-notice jp-mod-error" role="alert">
      <div className="jp-AFLab-notice-title">{title}</div>
      <div className="jp-AFLab-notice-message">{message}</div>
      {facts.length > 0 && (
        <div className="jp-AFLab-notice-facts">{facts.join(' · ')}</div>
      )}
      {children}
    </div>
  );
}

/**
 * A failed request, with the server's message and a way to try again.
 */
export function ErrorBox(props: {
  title: string;
  error: unknown;
  onRetry?: () => void;
  retrying?: boolean;
}): JSX.Element {
  const { title, error, onRetry, retrying } = props;
  return (
    <ErrorNotice
      title={title}
      message={describeError(error)}
      facts={requestErrorFacts(error)}
    >
      {onRetry && (
        <Button
          className="jp-AFLab-button"
          small
          onClick={onRetry}
          disabled={retrying}
        >
          <RefreshIcon spinning={retrying} />
          <span>{retrying ? 'Trying again…' : 'Try again'}</span>
        </Button>
      )}
    </ErrorNotice>
  );
}

/**
 * What a section shows until its list is first read: the spinner line
 * (`className`, `loading`) while `phase` is 'loading', the error with a way
 * to try again when it is 'error', else nothing.
 */
export function LoadingOrError(props: {
  phase: string;
  className: string;
  loading: React.ReactNode;
  errorTitle: string;
  error: unknown;
  onRetry: () => void;
  retrying?: boolean;
}): JSX.Element | null {
  if (props.phase === 'loading') {
    return (
      <LoadingStatus className={props.className}>{props.loading}</LoadingStatus>
    );
  }
  if (props.phase === 'error') {
    return (
      <ErrorBox
        title={props.errorTitle}
        error={props.error}
        onRetry={props.onRetry}
        retrying={props.retrying}
      />
    );
  }
  return null;
}

/**
 * A list that failed to refresh but still shows what was read before.
 * `children` may say from when.
 */
export function RefreshFailed(props: {
  error: unknown;
  children?: React.ReactNode;
}): JSX.Element {
  return (
    <div className="jp-AFLab-notice jp-mod-warning" role="alert">
      The last refresh failed: {describeError(props.error)}
      {props.children}
    </div>
  );
}
