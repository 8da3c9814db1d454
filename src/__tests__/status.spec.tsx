import {
  act,
  fireEvent,
  render,
  screen,
  waitFor
} from '@testing-library/react';
import React from 'react';

import { AFLabRequestError, requestAPI } from '../request';
import { formatLatency, StatusPanel } from '../status/StatusPanel';
import { IServiceStatus } from '../status/types';
import { deferred } from './helpers';

jest.mock('../request', () => ({
  ...jest.requireActual('../request'),
  requestAPI: jest.fn()
}));

const mockedRequest = requestAPI as jest.MockedFunction<typeof requestAPI>;

const SERVICES: IServiceStatus[] = [
  {
    id: 'rucio:demo',
    name: 'Rucio (Demo)',
    state: 'connected',
    message: 'Authenticated as jdoe.',
    details: { url: 'https://rucio.example', version: '41.0.0' },
    latency_ms: 12.3
  },
  {
    id: 'vault',
    name: 'Vault',
    state: 'unreachable',
    message: 'Connection refused.',
    details: {},
    latency_ms: null
  },
  {
    id: 'xcache',
    name: 'XCache',
    state: 'error',
    message: 'HTTP 500 from the cache.',
    latency_ms: 1534
  },
  {
    id: 'condor',
    name: 'HTCondor',
    state: 'not_configured',
    message: 'No schedd configured.',
    latency_ms: null
  }
];

function panel(container: HTMLElement): HTMLElement {
  return container.querySelector('.jp-AFLab-StatusPanel') as HTMLElement;
}

function rows(container: HTMLElement): HTMLElement[] {
  return Array.from(container.querySelectorAll('[data-service-id]'));
}

beforeEach(() => {
  mockedRequest.mockReset();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('StatusPanel', () => {
  it('shows a loading state until the first answer', async () => {
    const pending = deferred<unknown>();
    mockedRequest.mockReturnValue(pending.promise);
    const { container } = render(<StatusPanel refreshSeconds={0} />);

    expect(panel(container).dataset.phase).toBe('loading');
    expect(screen.getByText('Checking the facility services…')).toBeTruthy();
    expect(mockedRequest).toHaveBeenCalledWith('status');
    const refresh = screen.getByRole('button', {
      name: 'Refresh facility status'
    }) as HTMLButtonElement;
    expect(refresh.disabled).toBe(true);

    await act(async () => pending.resolve({ services: SERVICES }));
    expect(panel(container).dataset.phase).toBe('ready');
  });

  it('renders one row per service with state, message and latency', async () => {
    mockedRequest.mockResolvedValue({ services: SERVICES });
    const { container } = render(<StatusPanel refreshSeconds={0} />);
    await waitFor(() => expect(rows(container)).toHaveLength(4));

    const byId = Object.fromEntries(
      rows(container).map(row => [row.dataset.serviceId, row])
    );
    expect(byId['rucio:demo'].dataset.state).toBe('connected');
    expect(byId['vault'].dataset.state).toBe('unreachable');
    expect(byId['xcache'].dataset.state).toBe('error');
    expect(byId['condor'].dataset.state).toBe('not_configured');

    const badge = (id: string) =>
      byId[id].querySelector('.jp-AFLab-badge') as HTMLElement;
    expect(badge('rucio:demo').textContent).toBe('Connected');
    expect(badge('vault').textContent).toBe('Unreachable');
    expect(badge('xcache').textContent).toBe('Error');
    expect(badge('condor').textContent).toBe('Not configured');
    expect(badge('condor').dataset.state).toBe('not_configured');

    expect(byId['rucio:demo'].textContent).toContain('Rucio (Demo)');
    expect(byId['rucio:demo'].textContent).toContain('Authenticated as jdoe.');
    expect(byId['rucio:demo'].textContent).toContain('12 ms');
    expect(byId['rucio:demo'].textContent).toContain('https://rucio.example');
    expect(byId['xcache'].textContent).toContain('1.5 s');
    expect(byId['vault'].querySelector('details')).toBeNull();
    expect(byId['vault'].querySelector('.jp-AFLab-service-latency')).toBeNull();

    const summary = screen.getByRole('status');
    expect(
      summary.querySelector('.jp-AFLab-StatusPanel-counts')?.textContent
    ).toBe('1 of 3 connected');
    expect(
      summary.querySelector('.jp-AFLab-StatusPanel-checked')?.textContent
    ).toMatch(/^1 not configured · checked /);
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it("shows the server's message when the status endpoint fails, and retries", async () => {
    mockedRequest.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 503,
        type: 'unavailable',
        message: 'The facility configuration could not be read.'
      })
    );
    const { container } = render(<StatusPanel refreshSeconds={0} />);

    const alert = await screen.findByRole('alert');
    expect(panel(container).dataset.phase).toBe('error');
    expect(alert.textContent).toContain(
      'The facility configuration could not be read.'
    );
    expect(alert.textContent).toContain('HTTP 503 · unavailable');
    expect(rows(container)).toHaveLength(0);

    mockedRequest.mockResolvedValueOnce({ services: SERVICES });
    fireEvent.click(screen.getByRole('button', { name: /Try again/ }));
    await waitFor(() => expect(rows(container)).toHaveLength(4));
    expect(mockedRequest).toHaveBeenCalledTimes(2);
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('rejects an answer without a services list', async () => {
    mockedRequest.mockResolvedValue({ nope: true });
    const { container } = render(<StatusPanel refreshSeconds={0} />);
    const alert = await screen.findByRole('alert');
    expect(panel(container).dataset.phase).toBe('error');
    expect(alert.textContent).toContain('no list of services');
  });

  it('says so when no service is configured', async () => {
    mockedRequest.mockResolvedValue({ services: [] });
    const { container } = render(<StatusPanel refreshSeconds={0} />);
    await screen.findByText(/No facility services are configured/);
    expect(panel(container).dataset.phase).toBe('ready');
  });

  it('refreshes on click and keeps the old rows when a refresh fails', async () => {
    mockedRequest.mockResolvedValueOnce({ services: SERVICES });
    const { container } = render(<StatusPanel refreshSeconds={0} />);
    await waitFor(() => expect(rows(container)).toHaveLength(4));

    const pending = deferred<unknown>();
    mockedRequest.mockReturnValueOnce(pending.promise);
    const refresh = screen.getByRole('button', {
      name: 'Refresh facility status'
    }) as HTMLButtonElement;
    fireEvent.click(refresh);
    expect(mockedRequest).toHaveBeenCalledTimes(2);
    await waitFor(() => expect(refresh.disabled).toBe(true));
    expect(refresh.textContent).toContain('Refreshing…');
    // A second click while loading does not start a second request.
    fireEvent.click(refresh);
    expect(mockedRequest).toHaveBeenCalledTimes(2);

    await act(async () =>
      pending.reject(
        new AFLabRequestError({
          status: 0,
          type: 'network',
          message: 'Cannot reach the Jupyter server.'
        })
      )
    );
    expect(panel(container).dataset.phase).toBe('ready');
    expect(rows(container)).toHaveLength(4);
    expect(screen.getByRole('alert').textContent).toContain(
      'The last refresh failed: Cannot reach the Jupyter server.'
    );
    expect(refresh.disabled).toBe(false);
  });

  it('refreshes every refreshSeconds while active', async () => {
    jest.useFakeTimers();
    mockedRequest.mockResolvedValue({ services: SERVICES });
    const { container } = render(<StatusPanel refreshSeconds={15} />);
    await waitFor(() => expect(rows(container)).toHaveLength(4));
    expect(mockedRequest).toHaveBeenCalledTimes(1);

    await act(async () => {
      jest.advanceTimersByTime(15000);
    });
    expect(mockedRequest).toHaveBeenCalledTimes(2);
    await act(async () => {
      jest.advanceTimersByTime(15000);
    });
    expect(mockedRequest).toHaveBeenCalledTimes(3);
  });

  it('does not fetch while inactive and catches up when shown', async () => {
    jest.useFakeTimers();
    mockedRequest.mockResolvedValue({ services: SERVICES });
    const { container, rerender } = render(
      <StatusPanel refreshSeconds={15} active={false} />
    );
    await act(async () => {
      jest.advanceTimersByTime(60000);
    });
    expect(mockedRequest).not.toHaveBeenCalled();

    rerender(<StatusPanel refreshSeconds={15} active={true} />);
    await waitFor(() => expect(rows(container)).toHaveLength(4));
    expect(mockedRequest).toHaveBeenCalledTimes(1);

    // Hidden again: the timer stops.
    rerender(<StatusPanel refreshSeconds={15} active={false} />);
    await act(async () => {
      jest.advanceTimersByTime(60000);
    });
    expect(mockedRequest).toHaveBeenCalledTimes(1);
  });
});

describe('formatLatency', () => {
  it('formats milliseconds for people', () => {
    expect(formatLatency(null)).toBe('–');
    expect(formatLatency(0.3)).toBe('<1 ms');
    expect(formatLatency(12.3)).toBe('12 ms');
    expect(formatLatency(999.4)).toBe('999 ms');
    expect(formatLatency(1534)).toBe('1.5 s');
  });
});
