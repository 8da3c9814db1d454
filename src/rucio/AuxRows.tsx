/**
 * The Data view's rows that are not DIDs: loading, more, pending (items not
 * loaded yet, as tall as their rows), errors and mount notices.
 */
import { Button, refreshIcon } from '@jupyterlab/ui-components';
import React, { useEffect } from 'react';
import { formatCount } from '../common/units';
import { IExplainedError } from '../mounts/errors';
import { AFLabRequestError, describeError } from '../request';
import { expectedTotal, IListing, loadedCount } from './tree';
import { IDIDItem } from './types';
import { INDENT, IRowProps } from './rows';

export function loadingText(listing: IListing): string {
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
export function AuxRow(
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

export function MoreRow(props: IRowProps & { listing: IListing }): JSX.Element {
  const { listing, model } = props;
  // Infinite scroll: this row is rendered only near the viewport.
  useEffect(() => {
    const timer = window.setTimeout(
      () => void model.tree.loadMore(listing),
      100
    );
    return () => window.clearTimeout(timer);
  }, [listing, listing.items.length, model.tree]);
  const shown = loadedCount(listing);
  const total = expectedTotal(listing);
  return (
    <AuxRow {...props} className="jp-AFLab-Data-moreRow">
      <span className="jp-AFLab-Data-moreCount" role="status">
        {formatCount(shown)}
        {total !== null ? ` of ${formatCount(total)}` : ''} loaded
      </span>
      <Button
        className="jp-AFLab-button"
        small
        minimal
        onClick={() => void model.tree.loadMore(listing)}
        tabIndex={-1}
      >
        <span>Load more</span>
      </Button>
    </AuxRow>
  );
}

/**
 * Items of a listing not loaded yet, as tall as their rows will be: wherever
 * the list is scrolled to (the End key, a dragged scrollbar), the page there
 * is loaded, not the one after the loaded ones.
 */
export function PendingRow(
  props: IRowProps & { listing: IListing; offset: number; count: number }
): JSX.Element {
  const { listing, offset, count, model } = props;
  // Rendered only near the viewport; a row scrolled past at once is skipped.
  useEffect(() => {
    const timer = window.setTimeout(
      () => void model.tree.loadAt(listing, offset, count),
      100
    );
    return () => window.clearTimeout(timer);
  }, [listing, offset, count, model.tree]);
  const total = expectedTotal(listing);
  const what = listing.kind === 'content' ? 'Items' : 'Files';
  return (
    <AuxRow {...props} className="jp-AFLab-Data-pendingRow">
      <div className="jp-AFLab-Data-pendingBody">
        <span className="jp-AFLab-spinner" aria-hidden="true" />
        <span>
          {what} {formatCount(offset + 1)}–{formatCount(offset + count)}
          {total !== null ? ` of ${formatCount(total)}` : ''}: loading…
        </span>
        <span className="jp-AFLab-Data-moreCount" role="status">
          {formatCount(loadedCount(listing))}
          {total !== null ? ` of ${formatCount(total)}` : ''} loaded
        </span>
      </div>
    </AuxRow>
  );
}

export function ErrorRow(
  props: IRowProps & { listing: IListing }
): JSX.Element {
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

export function NoticeRow(
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
