import * as api from '../clusters/api';
import {
  cluster,
  HTCONDOR_JOBS,
  htcondorCluster,
  PROFILES
} from '../clusters/__tests__/fixtures';
import { ClustersModel } from '../clusters/model';
import { ICluster } from '../clusters/types';
import { FallbackPoll } from '../common/fallbackPoll';
import { deferred, FakeEventStream } from './helpers';

jest.mock('../clusters/api');

const mocked = api as jest.Mocked<typeof api>;

/**
 * A cluster as the server's `clusters/<id>` event carries it: the REST
 * model without the browser URL the handler adds.
 */
function pushed(c: ICluster): Partial<ICluster> {
  const model: Partial<ICluster> = { ...c };
  delete model.dashboard_url;
  return model;
}

function setup() {
  const events = new FakeEventStream();
  const fallback = new FallbackPoll({ stream: events, intervalMs: 1000 });
  const model = new ClustersModel({ events, fallback });
  let changes = 0;
  model.changed.connect(() => changes++);
  return {
    events,
    model,
    changes: () => changes,
    dispose: () => {
      model.dispose();
      fallback.dispose();
    }
  };
}

beforeEach(() => {
  jest.resetAllMocks();
  jest.useFakeTimers();
  mocked.fetchProfiles.mockResolvedValue(PROFILES);
  mocked.listClusters.mockResolvedValue([]);
  mocked.fetchJobs.mockResolvedValue(HTCONDOR_JOBS);
});

afterEach(() => jest.useRealTimers());

describe('ClustersModel and the event stream', () => {
  it('reads nothing while the view is hidden', async () => {
    const { model, dispose } = setup();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(mocked.listClusters).not.toHaveBeenCalled();
    expect(mocked.fetchProfiles).not.toHaveBeenCalled();
    expect(model.clusters).toBeNull();
    dispose();
  });

  it('reads the list once, then follows the cluster through its events without polling', async () => {
    const { events, model, changes, dispose } = setup();
    model.setActive(true);
    expect(events.start).toHaveBeenCalled();
    events.open();
    await jest.advanceTimersByTimeAsync(10);
    expect(mocked.listClusters).toHaveBeenCalledTimes(1);

    const slurm = htcondorCluster({
      backend: 'slurm',
      profile: 'slurm',
      state: 'starting',
      workers: 0,
      requested_workers: 0,
      pending: null
    });
    events.push(`clusters/${slurm.id}`, pushed(slurm));
    expect(model.find(slurm.id)?.state).toBe('starting');
    events.push(
      `clusters/${slurm.id}`,
      pushed({ ...slurm, state: 'running', requested_workers: 2 })
    );
    const pending = {
      ...HTCONDOR_JOBS,
      cluster: slurm.id,
      backend: 'slurm',
      counts: { submitted: 2, idle: 2, running: 0, held: 0, done: 0 }
    };
    events.push(`clusters/${slurm.id}/jobs`, pending);
    expect(model.jobs(slurm.id)?.data?.counts?.idle).toBe(2);
    events.push(`clusters/${slurm.id}/jobs`, {
      ...pending,
      counts: { submitted: 2, idle: 0, running: 2, held: 0, done: 0 }
    });
    events.push(
      `clusters/${slurm.id}`,
      pushed({ ...slurm, state: 'running', workers: 2, requested_workers: 2 })
    );
    expect(model.jobs(slurm.id)?.data?.counts?.running).toBe(2);
    expect(model.find(slurm.id)?.workers).toBe(2);

    // Other sections' events do not touch the clusters (nor re-render them).
    const before = changes();
    events.push('mounts/m1', { id: 'm1', state: 'fetching' });
    expect(changes()).toBe(before);

    events.push(`clusters/${slurm.id}`, { id: slurm.id, state: 'removed' });
    expect(model.find(slurm.id)).toBeUndefined();
    expect(model.jobs(slurm.id)).toBeUndefined();

    // Events did the work: no list or job reads beyond the first list, and
    // one more list read for the new cluster's dashboard URL.
    await jest.advanceTimersByTimeAsync(60_000);
    expect(mocked.listClusters.mock.calls.length).toBeLessThanOrEqual(2);
    expect(mocked.fetchJobs).not.toHaveBeenCalled();
    dispose();
  });

  it('keeps the dashboard URL of the REST answer when an event updates a cluster', async () => {
    const local = cluster();
    mocked.listClusters.mockResolvedValue([local]);
    const { events, model, dispose } = setup();
    model.setActive(true);
    events.open();
    await jest.advanceTimersByTimeAsync(10);
    events.push(`clusters/${local.id}`, pushed({ ...local, workers: 2 }));
    expect(model.find(local.id)?.workers).toBe(2);
    expect(model.find(local.id)?.dashboard_url).toBe(local.dashboard_url);
    dispose();
  });

  it('does not let a list answer older than an event overwrite it', async () => {
    const local = cluster({ workers: 1 });
    const slow = deferred<ICluster[]>();
    mocked.listClusters.mockReturnValueOnce(slow.promise);
    const { events, model, dispose } = setup();
    events.start();
    events.open();
    model.setActive(true); // the list read starts
    events.push(`clusters/${local.id}`, pushed({ ...local, workers: 3 }));
    slow.resolve([local]); // read before the event was sent
    await jest.advanceTimersByTimeAsync(10);
    expect(model.find(local.id)?.workers).toBe(3);
    dispose();
  });

  it('catches up after a reconnect and polls list and jobs only while the stream is down', async () => {
    const batch = htcondorCluster();
    mocked.listClusters.mockResolvedValue([batch]);
    const { events, model, dispose } = setup();
    model.setActive(true);
    events.open();
    await jest.advanceTimersByTimeAsync(10);
    const lists = mocked.listClusters.mock.calls.length;
    const jobs = mocked.fetchJobs.mock.calls.length;

    events.fail();
    await jest.advanceTimersByTimeAsync(3050);
    expect(
      mocked.listClusters.mock.calls.length - lists
    ).toBeGreaterThanOrEqual(2);
    expect(mocked.fetchJobs.mock.calls.length - jobs).toBeGreaterThanOrEqual(2);

    // Hidden: no reads even though the stream is down.
    model.setActive(false);
    let count = mocked.listClusters.mock.calls.length;
    await jest.advanceTimersByTimeAsync(10_000);
    expect(mocked.listClusters.mock.calls.length).toBe(count);

    // Shown and the stream is back: one catch-up read, then events only.
    model.setActive(true);
    events.open();
    await jest.advanceTimersByTimeAsync(10);
    expect(mocked.listClusters.mock.calls.length).toBeGreaterThan(count);
    count = mocked.listClusters.mock.calls.length;
    await jest.advanceTimersByTimeAsync(30_000);
    expect(mocked.listClusters.mock.calls.length).toBe(count);
    dispose();
  });
});
