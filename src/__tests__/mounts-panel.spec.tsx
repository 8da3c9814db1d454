import {
  act,
  fireEvent,
  render,
  screen,
  waitFor,
  within
} from '@testing-library/react';
import React from 'react';

import { FallbackPoll } from '../common/fallbackPoll';
import { explainMountError } from '../mounts/errors';
import { IMountEventSource, MountsApi, MountsModel } from '../mounts/model';
import { IMountActions, MountsPanel } from '../mounts/MountsPanel';
import { ICacheUsage, IMount } from '../mounts/types';
import { AFLabRequestError } from '../request';
import { FakeEventStream } from './helpers';

class FakeEvents extends FakeEventStream implements IMountEventSource {
  isDisposed = false;
  stop = jest.fn();
  reconnectNow = jest.fn();
  dispose(): void {
    this.isDisposed = true;
  }
  pushMount(mount: IMount | { id: string; state: 'removed' }): void {
    this.push(`mounts/${mount.id}`, mount);
  }
}

const CACHE: ICacheUsage = {
  path: '/srv/cache',
  quota_bytes: 10 * 2 ** 30,
  used_bytes: 2 ** 30,
  pinned_bytes: 2 ** 29,
  evictable_bytes: 2 ** 29,
  reserved_bytes: 0,
  available_bytes: 9 * 2 ** 30,
  disk_free_bytes: 50 * 2 ** 30,
  files: 12
};

function mount(overrides: Partial<IMount> = {}): IMount {
  return {
    id: 'm1',
    did: 'cms_opendata:ZZTo4mu',
    did_type: 'dataset',
    instance: 'demo',
    mode: 'cache',
    source: 'auto',
    state: 'fetching',
    message: 'fetching 2 files',
    target: 'af-data/cms_opendata/ZZTo4mu',
    created: 1000,
    updated: 1001,
    finished: null,
    files: { total: 2000, done: 500, failed: 0, active: 2 },
    bytes: { total: 4 * 2 ** 30, done: 2 ** 30, failed: 0 },
    rate_bytes_per_s: 50 * 2 ** 20,
    eta_s: 61,
    active: [{ path: 'ZZTo4mu_501.root', bytes: 100, bytes_done: 50 }],
    problems: [],
    ...overrides
  };
}

function api(mounts: IMount[] = [mount()]): jest.Mocked<MountsApi> {
  return {
    listMounts: jest.fn(async () => ({ mounts, cache: CACHE })),
    createMount: jest.fn(),
    cancelMount: jest.fn(async (id: string) =>
      mount({ id, state: 'cancelled', updated: 2000 })
    ),
    retryMount: jest.fn(async (id: string) =>
      mount({ id, state: 'fetching', updated: 3000 })
    ),
    removeMount: jest.fn(async (id: string) => ({
      removed: id,
      target: 'af-data/cms_opendata/ZZTo4mu',
      kept: [],
      notes: []
    })),
    cacheUsage: jest.fn(async () => CACHE)
  } as any;
}

function actions(): jest.Mocked<IMountActions> {
  return {
    openFolder: jest.fn(async () => undefined),
    insertCode: jest.fn(async () => undefined),
    copy: jest.fn(async () => undefined),
    paths: jest.fn(async () => '/a/1.root\n/a/2.root'),
    fileset: jest.fn(async () => '{"x": {}}'),
    confirmUnmount: jest.fn(async () => true)
  } as any;
}

/**
 * Click a card's button once it is enabled (one action runs at a time).
 */
async function click(container: HTMLElement, name: RegExp): Promise<void> {
  let button!: HTMLButtonElement;
  await waitFor(() => {
    button = within(card(container)).getByRole('button', {
      name
    }) as HTMLButtonElement;
    expect(button.disabled).toBe(false);
  });
  fireEvent.click(button);
}

function card(container: HTMLElement, id = 'm1'): HTMLElement {
  return container.querySelector(`[data-mount-id="${id}"]`) as HTMLElement;
}

describe('MountsModel', () => {
  it('reads the list, applies live events, and re-reads after a reconnect', async () => {
    const events = new FakeEvents();
    const fake = api();
    const model = new MountsModel({ api: fake, events });
    model.start();
    expect(events.start).toHaveBeenCalled();
    await waitFor(() => expect(model.loaded).toBe(true));
    expect(model.mounts.map(m => m.state)).toEqual(['fetching']);
    expect(model.cache).toEqual(CACHE);

    events.open();
    expect(fake.listMounts).toHaveBeenCalledTimes(2);
    events.pushMount(mount({ state: 'ready', updated: 5000 }));
    expect(model.get('m1')?.state).toBe('ready');
    // An older event never overwrites a newer state.
    events.pushMount(mount({ state: 'fetching', updated: 4000 }));
    expect(model.get('m1')?.state).toBe('ready');
    events.pushMount(mount({ id: 'm2', did: 'cms_opendata:X', created: 2000 }));
    expect(model.mounts.map(m => m.id)).toEqual(['m2', 'm1']);
    expect(model.forDid('cms_opendata:X', 'demo')).toHaveLength(1);
    events.pushMount({ id: 'm2', state: 'removed' });
    expect(model.mounts.map(m => m.id)).toEqual(['m1']);
    model.dispose();
  });

  it('polls while the stream is down and a job runs, and stops when it is back', async () => {
    jest.useFakeTimers();
    try {
      const events = new FakeEvents();
      const fake = api([mount({ state: 'fetching' })]);
      const fallback = new FallbackPoll({ stream: events, intervalMs: 1000 });
      const model = new MountsModel({ api: fake, events, fallback });
      model.start();
      await act(async () => {
        await Promise.resolve();
      });
      events.set({ state: 'retrying', failures: 1 });
      const before = fake.listMounts.mock.calls.length;
      await act(async () => {
        await jest.advanceTimersByTimeAsync(3100);
      });
      expect(fake.listMounts.mock.calls.length - before).toBeGreaterThanOrEqual(
        3
      );
      events.open();
      const after = fake.listMounts.mock.calls.length;
      await act(async () => {
        await jest.advanceTimersByTimeAsync(5000);
      });
      expect(fake.listMounts.mock.calls.length).toBe(after);
      model.dispose();
      fallback.dispose();
    } finally {
      jest.useRealTimers();
    }
  });

  it('tracks a create request and keeps the new mount', async () => {
    const events = new FakeEvents();
    const fake = api([]);
    let release!: (m: IMount) => void;
    fake.createMount.mockReturnValue(new Promise(r => (release = r)));
    const model = new MountsModel({ api: fake, events });
    const pending = model.create({
      did: 'cms_opendata:ZZTo4mu',
      instance: 'demo'
    });
    expect(model.isCreating('cms_opendata:ZZTo4mu', 'demo')).toBe(true);
    release(mount({ state: 'queued' }));
    await pending;
    expect(model.isCreating('cms_opendata:ZZTo4mu', 'demo')).toBe(false);
    expect(model.forDid('cms_opendata:ZZTo4mu')).toHaveLength(1);
    model.dispose();
  });
});

describe('MountsModel races', () => {
  it('keeps the pushed state when the create answer arrives after it', async () => {
    const events = new FakeEvents();
    const fake = api([]);
    let release!: (m: IMount) => void;
    fake.createMount.mockReturnValue(new Promise(r => (release = r)));
    const model = new MountsModel({ api: fake, events });
    const pending = model.create({ did: 'cms_opendata:ZZTo4mu' });
    // Two small files: the mount is done, and said so, before the POST answers.
    events.pushMount(mount({ state: 'ready', updated: 1005 }));
    release(mount({ state: 'queued', updated: 1002 }));
    const created = await pending;
    expect(created.state).toBe('ready');
    expect(model.get('m1')?.state).toBe('ready');
    model.dispose();
  });

  it('takes the answer of cancel or retry when it is the newer state', async () => {
    const events = new FakeEvents();
    const model = new MountsModel({ api: api(), events });
    await model.refresh();
    events.pushMount(mount({ state: 'failed', updated: 1500 }));
    expect((await model.retry('m1')).state).toBe('fetching'); // updated 3000
    expect(model.get('m1')?.state).toBe('fetching');
    model.dispose();
  });
});

describe('MountsPanel', () => {
  it('shows the live progress: files, bytes, rate, time left', async () => {
    const events = new FakeEvents();
    const model = new MountsModel({ api: api(), events });
    const { container } = render(
      <MountsPanel model={model} actions={actions()} />
    );
    await waitFor(() => expect(card(container)).toBeTruthy());
    await act(async () => events.open());
    const c = card(container);
    expect(c.dataset.state).toBe('fetching');
    const bar = within(c).getByRole('progressbar');
    expect(bar.getAttribute('aria-valuenow')).toBe('25');
    const text = c.querySelector('.jp-AFLab-progress-text')!.textContent;
    expect(text).toContain('500 of 2,000 files');
    expect(text).toContain('1 GiB of 4 GiB');
    expect(text).toContain('50 MiB/s');
    expect(text).toContain('1 min 1 s left');
    expect(c.textContent).toContain('Now: ZZTo4mu_501.root');
    expect(within(c).getByText('Fetching')).toBeTruthy();
    expect(screen.getByText('Live')).toBeTruthy();
    expect(container.textContent).toContain('Cache 1 GiB of 10 GiB');
    // Open folder waits for the mount to be ready; Cancel is offered.
    expect(
      (
        within(c).getByRole('button', {
          name: /Open folder/
        }) as HTMLButtonElement
      ).disabled
    ).toBe(true);
    expect(within(c).getByRole('button', { name: /Cancel/ })).toBeTruthy();

    await act(async () => {
      events.pushMount(
        mount({
          state: 'ready',
          updated: 9000,
          finished: 1012,
          message: '2000 files (2000 fetched, 0 from the cache)',
          files: { total: 2000, done: 2000, failed: 0, active: 0 },
          bytes: { total: 4 * 2 ** 30, done: 4 * 2 ** 30, failed: 0 },
          active: [],
          eta_s: null
        })
      );
    });
    const done = card(container);
    expect(done.dataset.state).toBe('ready');
    expect(
      within(done).getByRole('progressbar').getAttribute('aria-valuenow')
    ).toBe('100');
    expect(done.textContent).toContain('2,000 of 2,000 files');
    expect(done.textContent).toContain('took 12 s');
    expect(within(done).queryByRole('button', { name: /Cancel/ })).toBeNull();
    model.dispose();
  });

  it('runs the actions: open, copy paths, copy fileset, cancel, retry, unmount', async () => {
    const events = new FakeEvents();
    const fake = api([
      mount({
        state: 'failed',
        message: 'checksum mismatch on 1 file',
        files: { total: 2, done: 1, failed: 1, active: 0 },
        problems: [{ path: 'b.root', error: 'adler32 mismatch' }]
      })
    ]);
    const model = new MountsModel({ api: fake, events });
    const a = actions();
    const { container } = render(<MountsPanel model={model} actions={a} />);
    await waitFor(() => expect(card(container)).toBeTruthy());
    const c = card(container);
    expect(c.textContent).toContain('1 file failed');
    expect(c.textContent).toContain('adler32 mismatch');

    await click(container, /Copy paths/);
    await waitFor(() =>
      expect(a.copy).toHaveBeenCalledWith('/a/1.root\n/a/2.root', '2 paths')
    );
    await screen.findByText('Copied 2 paths');
    await click(container, /Copy fileset/);
    await waitFor(() =>
      expect(a.copy).toHaveBeenCalledWith('{"x": {}}', 'the fileset')
    );
    await click(container, /Insert code/);
    await waitFor(() => expect(a.insertCode).toHaveBeenCalled());

    await click(container, /Retry/);
    await waitFor(() => expect(fake.retryMount).toHaveBeenCalledWith('m1'));
    await waitFor(() => expect(card(container).dataset.state).toBe('fetching'));

    await click(container, /^Cancel/);
    await waitFor(() => expect(fake.cancelMount).toHaveBeenCalledWith('m1'));

    // Unmount asks first; a "no" changes nothing.
    a.confirmUnmount.mockResolvedValueOnce(false);
    await click(container, /Unmount/);
    await waitFor(() => expect(a.confirmUnmount).toHaveBeenCalledTimes(1));
    expect(fake.removeMount).not.toHaveBeenCalled();
    await click(container, /Unmount/);
    await waitFor(() => expect(fake.removeMount).toHaveBeenCalledWith('m1'));
    await waitFor(() => expect(card(container)).toBeNull());
    expect(container.textContent).toContain('Nothing is mounted yet');
    model.dispose();
  }, 30000);

  it("shows the server's typed error of a failed action", async () => {
    const events = new FakeEvents();
    const fake = api([mount({ state: 'cancelled' })]);
    fake.retryMount.mockRejectedValue(
      new AFLabRequestError({
        status: 507,
        type: 'insufficient_storage',
        message:
          'cms_opendata:ZZTo4mu needs 3 GiB more in the cache, but only 1 GiB can be made free.',
        details: {
          needed_bytes: 3 * 2 ** 30,
          available_bytes: 2 ** 30,
          quota_bytes: 10 * 2 ** 30,
          pinned_bytes: 9 * 2 ** 30,
          disk_free_bytes: 20 * 2 ** 30
        }
      })
    );
    const model = new MountsModel({ api: fake, events });
    const { container } = render(
      <MountsPanel model={model} actions={actions()} />
    );
    await waitFor(() => expect(card(container)).toBeTruthy());
    fireEvent.click(
      within(card(container)).getByRole('button', { name: /Retry/ })
    );
    const alert = await within(card(container)).findByRole('alert');
    expect(alert.textContent).toContain('Not enough room in the cache');
    expect(alert.textContent).toContain('only 1 GiB can be made free');
    expect(alert.textContent).toContain('needs 3 GiB');
    expect(alert.textContent).toContain('HTTP 507');
    model.dispose();
  });

  it('warns on a ready stream mount while its XCache is down, until it is back', async () => {
    const down =
      'the XCache at root://xcache.example:1094 does not answer: reads will fail until it is back';
    const stream = mount({
      mode: 'stream',
      state: 'ready',
      finished: 1002,
      message: 'fileset of 2 root:// URLs, read through the XCache',
      target: 'af-data/cms_opendata/ZZTo4mu.fileset.json',
      fileset: 'af-data/cms_opendata/ZZTo4mu.fileset.json',
      files: { total: 2, done: 2, failed: 0, active: 0 },
      bytes: { total: 200, done: 200, failed: 0 },
      active: [],
      eta_s: null,
      warning: down
    });
    const events = new FakeEvents();
    const model = new MountsModel({ api: api([stream]), events });
    const { container } = render(
      <MountsPanel model={model} actions={actions()} />
    );
    await waitFor(() => expect(card(container)).toBeTruthy());
    await act(async () => events.open());
    const notice = card(container).querySelector('.jp-AFLab-mount-warning');
    expect(notice?.textContent).toBe(down);
    expect(notice?.classList.contains('jp-mod-warning')).toBe(true);
    expect(card(container).dataset.state).toBe('ready');

    // The status probe found it back: the pushed row carries no warning.
    await act(async () => {
      events.pushMount({ ...stream, warning: null, updated: 2000 });
    });
    expect(card(container).querySelector('.jp-AFLab-mount-warning')).toBeNull();
    model.dispose();
  });

  it('shows loading, error and reconnecting states', async () => {
    const events = new FakeEvents();
    const fake = api();
    fake.listMounts.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 503,
        type: 'unavailable',
        message: 'mounts are not available in this server'
      })
    );
    const model = new MountsModel({ api: fake, events });
    const { container } = render(
      <MountsPanel model={model} actions={actions()} />
    );
    expect(container.querySelector('[data-phase="loading"]')).toBeTruthy();
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain(
      'mounts are not available in this server'
    );
    expect(alert.textContent).toContain('HTTP 503');
    await act(async () => {
      events.set({
        state: 'retrying',
        failures: 2,
        retryAt: Date.now() + 4000,
        error: 'the server closed the live stream'
      });
    });
    expect(screen.getByText(/Reconnecting in [345] s/)).toBeTruthy();
    fireEvent.click(screen.getByText(/Reconnecting in/));
    expect(events.reconnectNow).toHaveBeenCalled();
    fireEvent.click(screen.getByRole('button', { name: /Try again/ }));
    await waitFor(() => expect(card(container)).toBeTruthy());
    model.dispose();
  });
});

describe('explainMountError', () => {
  it('explains the typed errors of the mounts contract', () => {
    const noReplica = explainMountError(
      new AFLabRequestError({
        status: 409,
        type: 'no_replica',
        message: '2 of 4 files have no available replica',
        details: { files: ['s:a', 's:b'] }
      })
    );
    expect(noReplica.title).toBe('Some files have no readable replica');
    expect(noReplica.items).toEqual(['s:a', 's:b']);
    expect(noReplica.summary).toBe('2 files');

    const login = explainMountError(
      new AFLabRequestError({
        status: 401,
        type: 'credentials',
        message: 'Rucio refused'
      })
    );
    expect(login.needsCredentials).toBe(true);

    const bad = explainMountError(
      new AFLabRequestError({
        status: 400,
        type: 'bad_request',
        message: "'../../etc' is outside your workspace",
        details: { field: 'target' }
      })
    );
    expect(bad.facts).toEqual(['field: target', 'HTTP 400']);
    expect(explainMountError(new Error('boom')).message).toBe('boom');
  });
});
