import { FallbackPoll, streamIsDown } from '../common/fallbackPoll';
import { FakeEventStream } from './helpers';

/**
 * Let the poll's timers and the promises they start run.
 */
async function advance(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

function section(wanted = true) {
  const client = {
    want: wanted,
    wanted: () => client.want,
    refresh: jest.fn(() => Promise.resolve())
  };
  return client;
}

describe('FallbackPoll', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('stands by while the stream is open or connecting the first time', async () => {
    const stream = new FakeEventStream();
    stream.start();
    const fallback = new FallbackPoll({ stream, intervalMs: 1000 });
    const mounts = section();
    fallback.add(mounts);
    await advance(5000);
    expect(mounts.refresh).not.toHaveBeenCalled(); // connecting, never failed
    stream.open();
    await advance(5000);
    expect(mounts.refresh).not.toHaveBeenCalled();
    expect(fallback.polling).toBe(false);
    fallback.dispose();
  });

  it('polls every section that wants it, in one tick, while the stream is down', async () => {
    const stream = new FakeEventStream();
    stream.open();
    const fallback = new FallbackPoll({ stream, intervalMs: 1000 });
    const mounts = section();
    const publish = section(false);
    const clusters = section();
    fallback.add(mounts);
    fallback.add(publish);
    fallback.add(clusters);

    stream.fail();
    expect(fallback.polling).toBe(true);
    await advance(3050);
    expect(mounts.refresh.mock.calls.length).toBeGreaterThanOrEqual(2);
    expect(mounts.refresh.mock.calls.length).toBeLessThanOrEqual(4);
    // The same ticks for every section: one timer, not one per section.
    expect(clusters.refresh.mock.calls.length).toBe(
      mounts.refresh.mock.calls.length
    );
    expect(publish.refresh).not.toHaveBeenCalled();

    // Back: no more reads.
    stream.open();
    const before = mounts.refresh.mock.calls.length;
    await advance(10_000);
    expect(mounts.refresh.mock.calls.length).toBe(before);
    fallback.dispose();
  });

  it('stops polling a section that no longer wants it or left', async () => {
    const fallback = new FallbackPoll({ stream: null, intervalMs: 1000 });
    const mounts = section();
    const clusters = section();
    fallback.add(mounts);
    const leave = fallback.add(clusters);
    await advance(2050);
    const calls = mounts.refresh.mock.calls.length;
    expect(calls).toBeGreaterThanOrEqual(2);
    mounts.want = false;
    leave.dispose();
    const clusterCalls = clusters.refresh.mock.calls.length;
    await advance(5000);
    expect(mounts.refresh.mock.calls.length).toBe(calls);
    expect(clusters.refresh.mock.calls.length).toBe(clusterCalls);
    expect(fallback.polling).toBe(false);
    fallback.dispose();
  });

  it('backs off while the reads fail and recovers at the normal pace', async () => {
    // Poll's backoff is random between the interval and 3× the last wait.
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const fallback = new FallbackPoll({
      stream: null,
      intervalMs: 1000,
      maxMs: 30_000
    });
    const failing = section();
    failing.refresh.mockImplementation(() =>
      Promise.reject(new Error('the server is down'))
    );
    const healthy = section();
    fallback.add(failing);
    fallback.add(healthy);
    await advance(60_000);
    // At 1 s it would be 60 reads; with backoff (capped at 30 s) far fewer.
    expect(failing.refresh.mock.calls.length).toBeLessThanOrEqual(10);
    // A failing section does not keep the others from reading.
    expect(healthy.refresh.mock.calls.length).toBe(
      failing.refresh.mock.calls.length
    );
    failing.refresh.mockImplementation(() => Promise.resolve());
    await advance(30_000);
    const before = failing.refresh.mock.calls.length;
    await advance(5050);
    expect(failing.refresh.mock.calls.length - before).toBeGreaterThanOrEqual(
      4
    );
    fallback.dispose();
  });

  it('calls a stream down once it failed, stopped or never started', () => {
    const status = { failures: 0, retryAt: null, error: null };
    expect(streamIsDown({ ...status, state: 'idle' })).toBe(true);
    expect(streamIsDown({ ...status, state: 'connecting' })).toBe(false);
    expect(streamIsDown({ ...status, state: 'connecting', failures: 2 })).toBe(
      true
    );
    expect(streamIsDown({ ...status, state: 'retrying', failures: 1 })).toBe(
      true
    );
    expect(streamIsDown({ ...status, state: 'open' })).toBe(false);
    expect(streamIsDown({ ...status, state: 'closed' })).toBe(true);
  });
});
