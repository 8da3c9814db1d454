import React, { useCallback, useEffect, useRef, useState } from 'react';

import {
  LoadingOrError,
  RefreshButton,
  RefreshFailed
} from '../common/feedback';
import { fetchStatus } from './api';
import { IServiceStatus, ServiceState } from './types';

/**
 * What the badge says for each state: the state is always written out, the
 * colour only repeats it.
 */
export const STATE_LABELS: Record<ServiceState, string> = {
  connected: 'Connected',
  unreachable: 'Unreachable',
  error: 'Error',
  not_configured: 'Not configured'
};

const STATE_HELP: Record<ServiceState, string> = {
  connected: 'The service answered the check.',
  unreachable:
    'The service did not answer: it may be down, or the network path to it is broken.',
  error: 'The service answered, but with an error.',
  not_configured: 'This facility has not configured this service.'
};

/**
 * Props of {@link StatusPanel}.
 */
export interface IStatusPanelProps {
  /**
   * Seconds between automatic refreshes; 0 or less turns them off.
   */
  refreshSeconds: number;
  /**
   * Whether the panel is on screen. While it is not, nothing is fetched; when
   * it comes back, stale data is refreshed at once. Default true.
   */
  active?: boolean;
}

interface IState {
  /**
   * The last successful answer; null before the first one.
   */
  services: IServiceStatus[] | null;
  /**
   * The error of the last attempt; null when it succeeded.
   */
  error: unknown;
  /**
   * A request is in flight.
   */
  loading: boolean;
  /**
   * When the last successful answer arrived.
   */
  checkedAt: Date | null;
}

/**
 * The phase of the panel, also exposed as `data-phase` for tests:
 * `loading` before the first answer, `error` when the status endpoint failed
 * and there is nothing to show, `ready` when services are shown.
 */
export type StatusPhase = 'loading' | 'error' | 'ready';

/**
 * The facility status: one row per service with its state, message and
 * latency, refreshed on demand and every `refreshSeconds`.
 */
export function StatusPanel(props: IStatusPanelProps): JSX.Element {
  const { refreshSeconds, active = true } = props;
  const [state, setState] = useState<IState>({
    services: null,
    error: null,
    loading: false,
    checkedAt: null
  });
  const mounted = useRef(true);
  const inFlight = useRef<Promise<void> | null>(null);
  // When the last attempt finished (success or failure), in ms; 0 = never.
  const attemptedAt = useRef(0);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const refresh = useCallback((): Promise<void> => {
    if (inFlight.current) {
      return inFlight.current;
    }
    setState(s => ({ ...s, loading: true }));
    const request = fetchStatus()
      .then(services => {
        if (mounted.current) {
          setState({
            services,
            error: null,
            loading: false,
            checkedAt: new Date()
          });
        }
      })
      .catch(error => {
        if (mounted.current) {
          setState(s => ({ ...s, error, loading: false }));
        }
      })
      .finally(() => {
        attemptedAt.current = Date.now();
        inFlight.current = null;
      });
    inFlight.current = request;
    return request;
  }, []);

  // Fetch when shown for the first time or when the data went stale while the
  // panel was hidden; then every refreshSeconds while it stays on screen.
  useEffect(() => {
    if (!active) {
      return;
    }
    const periodMs = refreshSeconds > 0 ? refreshSeconds * 1000 : 0;
    const neverTried = attemptedAt.current === 0;
    const stale = periodMs > 0 && Date.now() - attemptedAt.current >= periodMs;
    if ((neverTried || stale) && !inFlight.current) {
      void refresh();
    }
    if (periodMs === 0) {
      return;
    }
    const timer = window.setInterval(() => {
      if (!document.hidden) {
        void refresh();
      }
    }, periodMs);
    return () => window.clearInterval(timer);
  }, [active, refreshSeconds, refresh]);

  const { services, error, loading, checkedAt } = state;
  const phase: StatusPhase =
    services !== null ? 'ready' : error !== null ? 'error' : 'loading';

  return (
    <div
      className="jp-AFLab-panel jp-AFLab-StatusPanel"
      data-phase={phase}
      data-loading={loading ? 'true' : 'false'}
      aria-busy={loading}
    >
      <div className="jp-AFLab-panel-header jp-AFLab-StatusPanel-header">
        <span
          className="jp-AFLab-StatusPanel-summary"
          role="status"
          aria-live="polite"
          title={checkedAt ? `Last checked ${checkedAt.toLocaleString()}` : ''}
        >
          {summary(phase, loading, services, checkedAt)}
        </span>
        <RefreshButton
          onClick={() => void refresh()}
          loading={loading}
          title="Check every facility service again"
          ariaLabel="Refresh facility status"
          label={loading && phase === 'ready' ? 'Refreshing…' : 'Refresh'}
        />
      </div>

      <LoadingOrError
        phase={phase}
        className="jp-AFLab-StatusPanel-loading"
        loading="Checking the facility services…"
        errorTitle="Could not get the facility status"
        error={error}
        onRetry={() => void refresh()}
        retrying={loading}
      />

      {phase === 'ready' && error !== null && (
        <RefreshFailed error={error}>
          {checkedAt && (
            <> The list below is from {checkedAt.toLocaleTimeString()}.</>
          )}
        </RefreshFailed>
      )}

      {services !== null && services.length === 0 && (
        <div className="jp-AFLab-statusLine jp-AFLab-StatusPanel-empty">
          No facility services are configured on this server. Ask your facility
          administrators to configure af-lab.
        </div>
      )}

      {services !== null && services.length > 0 && (
        <ul className="jp-AFLab-serviceList" aria-label="Facility services">
          {services.map(service => (
            <ServiceRow key={service.id} service={service} />
          ))}
        </ul>
      )}
    </div>
  );
}

function summary(
  phase: StatusPhase,
  loading: boolean,
  services: IServiceStatus[] | null,
  checkedAt: Date | null
): JSX.Element {
  let main: string;
  const sub: string[] = [];
  if (phase === 'loading') {
    main = 'Checking…';
  } else if (phase === 'error') {
    main = loading ? 'Trying again…' : 'Status unavailable';
  } else {
    const list = services ?? [];
    const connected = list.filter(s => s.state === 'connected').length;
    const unconfigured = list.filter(s => s.state === 'not_configured').length;
    main = `${connected} of ${list.length - unconfigured} connected`;
    if (unconfigured > 0) {
      sub.push(`${unconfigured} not configured`);
    }
    if (loading) {
      sub.push('refreshing…');
    } else if (checkedAt) {
      sub.push(`checked ${checkedAt.toLocaleTimeString()}`);
    }
  }
  return (
    <>
      <span className="jp-AFLab-StatusPanel-counts">{main}</span>
      {sub.length > 0 && (
        <span className="jp-AFLab-StatusPanel-checked">
          {sub.map((part, i) => (
            <React.Fragment key={i}>
              {i > 0 && ' · '}
              <span className="jp-AFLab-nowrap">{part}</span>
            </React.Fragment>
          ))}
        </span>
      )}
    </>
  );
}

/**
 * One service: name, state badge, latency, message and optional details.
 */
export function ServiceRow(props: { service: IServiceStatus }): JSX.Element {
  const { service } = props;
  const details = Object.entries(service.details ?? {});
  return (
    <li
      className="jp-AFLab-service"
      data-service-id={service.id}
      data-state={service.state}
    >
      <div className="jp-AFLab-service-main">
        <span className="jp-AFLab-service-name" title={service.id}>
          {service.name || service.id}
        </span>
        {typeof service.latency_ms === 'number' && (
          <span
            className="jp-AFLab-service-latency"
            title="Round-trip time of the last check"
          >
            {formatLatency(service.latency_ms)}
          </span>
        )}
        <StateBadge state={service.state} />
      </div>
      {service.message && (
        <div className="jp-AFLab-service-message">{service.message}</div>
      )}
      {details.length > 0 && (
        <details className="jp-AFLab-service-details">
          <summary>Details</summary>
          <dl>
            {details.map(([key, value]) => (
              <React.Fragment key={key}>
                <dt>{key}</dt>
                <dd>{formatDetail(value)}</dd>
              </React.Fragment>
            ))}
          </dl>
        </details>
      )}
    </li>
  );
}

/**
 * The state as a coloured badge that always spells the state out.
 */
export function StateBadge(props: { state: string }): JSX.Element {
  const { state } = props;
  const known = state in STATE_LABELS;
  const label = known
    ? STATE_LABELS[state as ServiceState]
    : state.replace(/_/g, ' ');
  return (
    <span
      className="jp-AFLab-badge"
      data-state={known ? state : 'unknown'}
      title={known ? STATE_HELP[state as ServiceState] : undefined}
    >
      {label}
    </span>
  );
}

/**
 * `12.3` → `12 ms`, `0.4` → `<1 ms`, `1534` → `1.5 s`, null → `–`.
 */
export function formatLatency(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    return '–';
  }
  if (ms < 1) {
    return '<1 ms';
  }
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  return `${(ms / 1000).toFixed(1)} s`;
}

function formatDetail(value: unknown): string {
  if (value === null || value === undefined) {
    return '–';
  }
  if (typeof value === 'object') {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}
