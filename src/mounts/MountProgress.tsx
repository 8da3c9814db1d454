/**
 * A mount's progress (bar, files, bytes, rate, time left) and its Rucio
 * rule line.
 */
import React from 'react';
import {
  formatBytes,
  formatCount,
  formatDuration,
  formatExactBytes,
  formatDate,
  formatRate,
  formatTime,
  percent,
  plural
} from '../common/units';
import { isActive } from './model';
import { IMount } from './types';

/**
 * The progress of a mount: a bar and files, bytes, rate and time left.
 */
export function Progress(props: { mount: IMount }): JSX.Element | null {
  const { mount } = props;
  const { files, bytes } = mount;
  const byBytes = bytes.total > 0;
  const pct = byBytes
    ? percent(bytes.done, bytes.total)
    : percent(files.done, files.total);
  const running = isActive(mount);
  const parts: string[] = [];
  parts.push(`${formatCount(files.done)} of ${plural(files.total, 'file')}`);
  if (byBytes) {
    parts.push(
      running || bytes.done < bytes.total
        ? `${formatBytes(bytes.done)} of ${formatBytes(bytes.total)}`
        : formatBytes(bytes.total)
    );
  }
  if (mount.state === 'fetching') {
    if (mount.rate_bytes_per_s > 0) {
      parts.push(formatRate(mount.rate_bytes_per_s));
    }
    if (mount.eta_s !== null && mount.eta_s !== undefined) {
      parts.push(`${formatDuration(mount.eta_s)} left`);
    }
  }
  if (files.failed > 0) {
    parts.push(`${formatCount(files.failed)} failed`);
  }
  if (mount.state === 'ready' && mount.finished) {
    const took = mount.finished - mount.created;
    if (took >= 0) {
      parts.push(`took ${took < 1 ? '<1 s' : formatDuration(took)}`);
    }
  }
  const text = parts.join(' · ');
  return (
    <div className="jp-AFLab-progress" data-state={mount.state}>
      <div
        className="jp-AFLab-bar jp-AFLab-progress-bar"
        role="progressbar"
        aria-label={`Progress of ${mount.did}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
        aria-valuetext={`${pct}%: ${text}`}
        data-indeterminate={
          mount.state === 'queued' || (running && files.total === 0)
            ? 'true'
            : 'false'
        }
      >
        <span
          className="jp-AFLab-bar-fill jp-AFLab-progress-fill"
          style={{ width: `${mount.state === 'ready' ? 100 : pct}%` }}
        />
      </div>
      <div
        className="jp-AFLab-progress-text"
        title={`${text}\n${formatExactBytes(bytes.done)} of ${formatExactBytes(
          bytes.total
        )}\nstarted ${formatTime(mount.created)}${
          mount.finished ? `, finished ${formatTime(mount.finished)}` : ''
        }`}
      >
        <span className="jp-AFLab-progress-pct">
          {mount.state === 'queued' ? 'Waiting…' : `${pct}%`}
        </span>
        <span>{text}</span>
      </div>
      {running && mount.active.length > 0 && (
        <div
          className="jp-AFLab-progress-active"
          title={mount.active
            .map(
              a =>
                `${a.path}: ${formatBytes(a.bytes_done)} of ${formatBytes(a.bytes)}`
            )
            .join('\n')}
        >
          Now: {mount.active[0].path}
          {mount.active.length > 1
            ? ` and ${mount.active.length - 1} more`
            : ''}
        </div>
      )}
    </div>
  );
}

export function RuleLine(props: { mount: IMount }): JSX.Element | null {
  const rule = props.mount.rule;
  if (!rule) {
    return null;
  }
  return (
    <div
      className="jp-AFLab-mount-rule"
      title={`Replication rule ${rule.id}${
        rule.expires_at ? `, until ${formatDate(rule.expires_at)}` : ''
      }`}
    >
      Rule on {rule.rse}: {rule.state.toLowerCase()} ·{' '}
      {formatCount(rule.locks_ok_cnt)} of {formatCount(rule.locks_total)} OK
      {rule.locks_replicating_cnt > 0
        ? ` · ${formatCount(rule.locks_replicating_cnt)} replicating`
        : ''}
      {rule.locks_stuck_cnt > 0
        ? ` · ${formatCount(rule.locks_stuck_cnt)} stuck`
        : ''}
    </div>
  );
}
