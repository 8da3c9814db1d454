import {
  act,
  fireEvent,
  render,
  screen,
  waitFor
} from '@testing-library/react';
import { Signal } from '@lumino/signaling';
import React from 'react';

import * as api from '../publish/api';
import { jobProgress } from '../publish/format';
import { PublishPanel, StreamState } from '../publish/JobList';
import { PublishJobsModel } from '../publish/model';
import { IPublishJob } from '../publish/types';
import { AFLabRequestError } from '../request';

jest.mock('../publish/api');

const mockedApi = api as jest.Mocked<typeof api>;

let clock = 1_800_000_000;

function job(overrides: Partial<IPublishJob> = {}): IPublishJob {
  clock += 1;
  return {
    id: 'job1',
    state: 'running',
    phase: 'copying',
    message: 'Copying 3 file(s) to SITE1_USERDISK.',
    created: clock,
    updated: clock,
    account: 'jdoe',
    user: 'jdoe',
    request: {
      instance: 'demo',
      paths: ['results'],
      scope: 'user.jdoe',
      rse: 'SITE1_USERDISK',
      lifetime_days: 30
    },
    dataset: { did: 'user.jdoe:results', new: true },
    container: null,
    did: 'user.jdoe:results',
    files_total: 3,
    bytes_total: 3 * 1024 * 1024,
    progress: {
      files_done: 1,
      bytes_done: 1024 * 1024,
      files_skipped: 0,
      bytes_hashed: 3 * 1024 * 1024
    },
    rule_ids: [],
    expires_at: null,
    provenance: {
      notebook: 'ana/zmumu.ipynb',
      git_commit: 'a9ddde4',
      inputs: ['cms_opendata:Run2012B']
    },
    warnings: [],
    error: null,
    resumable: false,
    noop: false,
    ...overrides
  };
}

function card(container: HTMLElement, id = 'job1'): HTMLElement {
  return container.querySelector(`[data-job-id="${id}"]`) as HTMLElement;
}

async function renderPanel(jobs: IPublishJob[], copy = jest.fn()) {
  mockedApi.fetchJobs.mockResolvedValue(jobs);
  const model = new PublishJobsModel();
  const onPublish = jest.fn();
  const onPublishAgain = jest.fn();
  const result = render(
    <PublishPanel
      model={model}
      onPublish={onPublish}
      onPublishAgain={onPublishAgain}
      copy={copy}
    />
  );
  await act(() => model.refresh());
  return { ...result, model, onPublish, onPublishAgain, copy };
}

beforeEach(() => {
  jest.resetAllMocks();
});

describe('PublishJobsModel', () => {
  it('keeps jobs newest first and lets newer updates win', () => {
    const model = new PublishJobsModel();
    const older = job({ id: 'a' });
    const newer = job({ id: 'b' });
    model.upsert(older);
    model.upsert(newer);
    expect(model.jobs.map(j => j.id)).toEqual(['b', 'a']);

    const progressed = {
      ...older,
      updated: older.updated + 5,
      phase: 'registering' as const
    };
    model.upsert(progressed);
    expect(model.get('a')?.phase).toBe('registering');
    // A stale event does not undo it.
    model.upsert({ ...older, phase: 'checking' });
    expect(model.get('a')?.phase).toBe('registering');
    model.dispose();
  });

  it('tells when a job it saw running ends', () => {
    const model = new PublishJobsModel();
    const ended = jest.fn();
    model.jobEnded.connect((_, j) => ended(j.id, j.state));
    const running = job();
    model.upsert(running);
    model.upsert({
      ...running,
      updated: running.updated + 1,
      phase: 'registering'
    });
    expect(ended).not.toHaveBeenCalled();
    model.upsert({
      ...running,
      updated: running.updated + 2,
      state: 'done',
      phase: 'ended'
    });
    expect(ended).toHaveBeenCalledWith('job1', 'done');
    // A job that was already over when first seen is not announced.
    model.upsert(job({ id: 'old', state: 'failed', phase: 'ended' }));
    expect(ended).toHaveBeenCalledTimes(1);
    model.dispose();
  });

  it('merges a listing with events and forgets dismissed jobs', async () => {
    const model = new PublishJobsModel();
    const a = job({ id: 'a' });
    mockedApi.fetchJobs.mockResolvedValue([a]);
    await model.refresh();
    expect(model.loaded).toBe(true);
    expect(model.jobs).toHaveLength(1);

    // An event newer than the next listing is kept.
    const live = { ...a, updated: a.updated + 10, phase: 'finishing' as const };
    model.upsert(live);
    await model.refresh();
    expect(model.get('a')?.phase).toBe('finishing');

    mockedApi.deleteJob.mockResolvedValue(undefined);
    await model.dismiss('a');
    expect(model.jobs).toHaveLength(0);
    await model.refresh(); // the server may still list it for a moment
    expect(model.jobs).toHaveLength(0);
    model.dispose();
  });

  it('follows the event stream and re-reads the list after a reconnect', async () => {
    const stream = {
      received: new Signal<any, any>({}),
      statusChanged: new Signal<any, any>({}),
      opened: new Signal<any, void>({}),
      status: { state: 'open', failures: 0, retryAt: null, error: null },
      start: jest.fn(),
      reconnectNow: jest.fn()
    };
    mockedApi.fetchJobs.mockResolvedValue([]);
    const model = new PublishJobsModel({ stream: stream as any });
    model.start();
    expect(stream.start).toHaveBeenCalled();
    await waitFor(() => expect(model.loaded).toBe(true));

    const pushed = job({ id: 'pushed' });
    stream.received.emit({
      id: 1,
      topic: 'publish/pushed',
      time: 0,
      data: pushed
    });
    expect(model.get('pushed')).toBeDefined();
    // The shared stream carries other sections' topics too: not jobs.
    for (const topic of ['mounts/x', 'clusters/x', 'publish']) {
      stream.received.emit({ id: 3, topic, time: 0, data: job({ id: 'x' }) });
    }
    expect(model.get('x')).toBeUndefined();

    const calls = mockedApi.fetchJobs.mock.calls.length;
    stream.opened.emit();
    await waitFor(() =>
      expect(mockedApi.fetchJobs.mock.calls.length).toBeGreaterThan(calls)
    );
    model.dispose();
  });
});

describe('job progress text', () => {
  it('counts checksums while checking, then bytes and files', () => {
    expect(jobProgress(job({ phase: 'checking' })).text).toBe(
      '3 MiB of 3 MiB checked'
    );
    const copying = jobProgress(job());
    expect(copying.text).toBe('1 of 3 files · 1 MiB of 3 MiB');
    expect(copying.fraction).toBeCloseTo(1 / 3);
    expect(jobProgress(job({ state: 'queued' })).fraction).toBeNull();
  });
});

describe('PublishPanel', () => {
  it('shows loading, then says how to publish when there is nothing yet', async () => {
    let resolve!: (jobs: IPublishJob[]) => void;
    mockedApi.fetchJobs.mockReturnValue(
      new Promise(r => {
        resolve = r;
      })
    );
    const model = new PublishJobsModel();
    const onPublish = jest.fn();
    const { container } = render(
      <PublishPanel model={model} onPublish={onPublish} />
    );
    let refreshing!: Promise<void>;
    act(() => {
      refreshing = model.refresh();
    });
    await waitFor(() =>
      expect(screen.getByText('Loading your publish jobs…')).toBeTruthy()
    );
    await act(async () => {
      resolve([]);
      await refreshing;
    });
    const panel = container.querySelector(
      '.jp-AFLab-PublishPanel'
    ) as HTMLElement;
    expect(panel.dataset.phase).toBe('ready');
    expect(panel.textContent).toContain('Nothing published yet');
    fireEvent.click(screen.getByRole('button', { name: /Publish…/ }));
    expect(onPublish).toHaveBeenCalled();
  });

  it("shows the server's message when the list cannot be read", async () => {
    mockedApi.fetchJobs.mockRejectedValue(
      new AFLabRequestError({
        status: 503,
        type: 'unavailable',
        message: 'The job store cannot be opened.'
      })
    );
    const model = new PublishJobsModel();
    render(<PublishPanel model={model} onPublish={jest.fn()} />);
    await act(() => model.refresh());
    expect(screen.getByRole('alert').textContent).toContain(
      'The job store cannot be opened.'
    );
  });

  it('shows a running job with its phase, progress and a Cancel button', async () => {
    const running = job();
    const { container, model } = await renderPanel([running]);
    const row = card(container);
    expect(row.dataset.state).toBe('running');
    expect(row.querySelector('.jp-AFLab-badge')?.textContent).toBe('Running');
    expect(row.textContent).toContain('Copying to storage');
    expect(row.textContent).toContain('step 2 of 5');
    expect(row.textContent).toContain('1 of 3 files · 1 MiB of 3 MiB');
    const bar = row.querySelector('[role="progressbar"]') as HTMLElement;
    expect(bar.getAttribute('aria-valuenow')).toBe('33');

    // A pushed update moves the bar.
    act(() =>
      model.upsert({
        ...running,
        updated: running.updated + 1,
        progress: {
          ...running.progress,
          files_done: 2,
          bytes_done: 2 * 1024 * 1024
        }
      })
    );
    expect(card(container).textContent).toContain(
      '2 of 3 files · 2 MiB of 3 MiB'
    );

    mockedApi.cancelJob.mockResolvedValue({
      ...running,
      updated: running.updated + 2,
      state: 'cancelled',
      phase: 'ended',
      message: 'Cancelled. The copies made so far were removed from the RSE.'
    });
    fireEvent.click(screen.getByRole('button', { name: /Cancel/ }));
    await waitFor(() =>
      expect(card(container).dataset.state).toBe('cancelled')
    );
    expect(mockedApi.cancelJob).toHaveBeenCalledWith('job1');
    expect(card(container).textContent).toContain('Cancelled. The copies');
    expect(screen.getByRole('button', { name: /Retry/ })).toBeTruthy();
    expect(screen.getByRole('button', { name: /Dismiss/ })).toBeTruthy();
  });

  it('says why a cancel was refused', async () => {
    const { container } = await renderPanel([job({ phase: 'checking' })]);
    mockedApi.cancelJob.mockRejectedValue(
      new AFLabRequestError({
        status: 409,
        type: 'conflict',
        message:
          'Too late to cancel: the files are being registered in Rucio, and the job will finish what it started.'
      })
    );
    fireEvent.click(screen.getByRole('button', { name: /Cancel/ }));
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('Too late to cancel');
    expect(card(container).dataset.state).toBe('running');
  });

  it('cannot cancel once registration has begun', async () => {
    await renderPanel([job({ phase: 'registering' })]);
    const cancel = screen.getByRole('button', {
      name: /Cancel/
    }) as HTMLButtonElement;
    expect(cancel.disabled).toBe(true);
    expect(cancel.title).toContain('Too late to cancel');
  });

  it("shows a failed job's error and suggestion, and retries it as a new job", async () => {
    const failed = job({
      state: 'failed',
      phase: 'ended',
      message:
        'Nothing was registered in Rucio; your local files are untouched.',
      error: {
        type: 'conflict',
        message:
          'user.jdoe:hist.root already exists in Rucio with different content.',
        suggestion: 'hist_v2.root'
      }
    });
    const { container, model, onPublishAgain } = await renderPanel([failed]);
    const row = card(container);
    fireEvent.click(
      screen.getByRole('button', { name: /Edit and publish again/ })
    );
    expect(onPublishAgain).toHaveBeenCalledWith(failed);
    expect(row.querySelector('.jp-AFLab-badge')?.textContent).toBe('Failed');
    const alert = row.querySelector('[role="alert"]') as HTMLElement;
    expect(alert.textContent).toContain('already exists in Rucio');
    expect(alert.textContent).toContain('Suggestion: hist_v2.root');
    expect(alert.textContent).toContain('your local files are untouched');
    expect(screen.queryByRole('button', { name: /Cancel/ })).toBeNull();

    const again = job({ id: 'job2', state: 'queued', phase: 'checking' });
    mockedApi.retryJob.mockResolvedValue(again);
    fireEvent.click(screen.getByRole('button', { name: /Retry/ }));
    await waitFor(() => expect(card(container, 'job2')).not.toBeNull());
    expect(model.jobs.map(j => j.id)).toEqual(['job2', 'job1']);
    expect(card(container, 'job2').textContent).toContain('Waiting to start');
  });

  it('offers to resume an interrupted job', async () => {
    const interrupted = job({
      state: 'interrupted',
      phase: 'copying',
      error: {
        type: 'unavailable',
        message: 'Rucio at http://127.0.0.1:1 is not reachable.'
      },
      resumable: true
    });
    const { container } = await renderPanel([interrupted]);
    expect(card(container).textContent).toContain('is not reachable');
    expect(card(container).textContent).toContain('Nothing is lost');
    mockedApi.retryJob.mockResolvedValue({
      ...interrupted,
      updated: interrupted.updated + 1,
      state: 'queued',
      error: null
    });
    fireEvent.click(screen.getByRole('button', { name: /Resume/ }));
    await waitFor(() => expect(card(container).dataset.state).toBe('queued'));
    expect(mockedApi.retryJob).toHaveBeenCalledWith('job1');
  });

  it('lists the DIDs of a done job (copyable), its files and its provenance', async () => {
    const done = job({
      state: 'done',
      phase: 'ended',
      message:
        'Published 3 file(s), 3 MiB, as user.jdoe:results on SITE1_USERDISK; the rule expires 2026-12-23.',
      progress: {
        files_done: 3,
        bytes_done: 3 * 1024 * 1024,
        files_skipped: 0,
        bytes_hashed: 3 * 1024 * 1024
      },
      expires_at: '2026-12-23T00:00:00+00:00',
      rule_state: 'OK',
      warnings: ['This Rucio server keeps no custom metadata.']
    });
    mockedApi.fetchJob.mockResolvedValue({
      job: done,
      offset: 0,
      files: ['a', 'b', 'c'].map(n => ({
        path: `results/${n}.root`,
        did: `user.jdoe:${n}.root`,
        bytes: 1024 * 1024,
        adler32: '00000001',
        state: 'registered',
        error: null
      }))
    });
    const copy = jest.fn();
    const { container } = await renderPanel([done], copy);
    const row = card(container);
    expect(row.querySelector('.jp-AFLab-badge')?.textContent).toBe('Done');
    expect(row.textContent).toContain('Published 3 file(s)');
    const did = row.querySelector(
      '[data-did="user.jdoe:results"]'
    ) as HTMLElement;
    expect(did.textContent).toContain('Dataset');
    fireEvent.click(
      screen.getByRole('button', { name: 'Copy user.jdoe:results' })
    );
    expect(copy).toHaveBeenCalledWith('user.jdoe:results');
    expect(did.textContent).toContain('Copied');
    expect(row.textContent).toContain('(OK)');

    // A few files are listed at once, each copyable.
    await waitFor(() =>
      expect(row.querySelector('[data-did="user.jdoe:b.root"]')).not.toBeNull()
    );
    expect(mockedApi.fetchJob).toHaveBeenCalledWith('job1', 0, 200);
    fireEvent.click(
      screen.getByRole('button', { name: 'Copy user.jdoe:c.root' })
    );
    expect(copy).toHaveBeenLastCalledWith('user.jdoe:c.root');

    // The provenance, on demand.
    mockedApi.fetchProvenance.mockResolvedValue({
      did: 'user.jdoe:results',
      source: 'af-lab',
      provenance: {
        notebook: 'ana/zmumu.ipynb',
        git_commit: 'a9ddde4',
        git_dirty: true,
        inputs: ['cms_opendata:Run2012B'],
        af_lab_version: '0.1.0'
      }
    });
    const prov = row.querySelector(
      '.jp-AFLab-Provenance'
    ) as HTMLDetailsElement;
    prov.open = true;
    fireEvent(prov, new Event('toggle'));
    await waitFor(() => expect(prov.textContent).toContain('ana/zmumu.ipynb'));
    expect(mockedApi.fetchProvenance).toHaveBeenCalledWith(
      'user.jdoe:results',
      'demo'
    );
    expect(prov.textContent).toContain('Git commit');
    expect(prov.textContent).toContain('a9ddde4');
    expect(prov.textContent).toContain('Uncommitted changesyes');
    expect(prov.textContent).toContain('cms_opendata:Run2012B');
    expect(prov.textContent).toContain('Kept by af-lab');

    // Dismiss forgets the record.
    mockedApi.deleteJob.mockResolvedValue(undefined);
    fireEvent.click(screen.getByRole('button', { name: /Dismiss/ }));
    await waitFor(() => expect(card(container)).toBeNull());
    expect(mockedApi.deleteJob).toHaveBeenCalledWith('job1');
  });

  it('lists many files only on demand', async () => {
    const many = job({
      state: 'done',
      phase: 'ended',
      files_total: 1200,
      message: 'Published 1200 file(s).'
    });
    mockedApi.fetchJob.mockResolvedValue({
      job: many,
      offset: 0,
      files: Array.from({ length: 200 }, (_, i) => ({
        path: `results/f${i}.root`,
        did: `user.jdoe:f${i}.root`,
        bytes: 1,
        adler32: null,
        state: 'registered',
        error: null
      }))
    });
    const { container } = await renderPanel([many]);
    const row = card(container);
    expect(mockedApi.fetchJob).not.toHaveBeenCalled();
    const toggle = Array.from(row.querySelectorAll('details')).find(d =>
      d.textContent?.startsWith('1,200 files')
    ) as HTMLDetailsElement;
    toggle.open = true;
    fireEvent(toggle, new Event('toggle'));
    await waitFor(() =>
      expect(
        row.querySelectorAll('.jp-AFLab-PublishDone-files [data-did]')
      ).toHaveLength(200)
    );
    expect(row.textContent).toContain('and 1,000 more files');
  });

  it('warns before dismissing a job that holds the only provenance', async () => {
    const done = job({
      state: 'done',
      phase: 'ended',
      did: 'user.jdoe:hist.root',
      dataset: null,
      files_total: 1,
      provenance_in_rucio: false,
      message: 'Published 1 file(s).'
    });
    const { container } = await renderPanel([done]);
    fireEvent.click(screen.getByRole('button', { name: /Dismiss/ }));
    expect(mockedApi.deleteJob).not.toHaveBeenCalled();
    expect(screen.getByRole('alert').textContent).toContain(
      'Dismissing it forgets where the data came from'
    );
    fireEvent.click(screen.getByRole('button', { name: 'Keep it' }));
    expect(screen.queryByRole('alert')).toBeNull();

    mockedApi.deleteJob.mockResolvedValue(undefined);
    fireEvent.click(screen.getByRole('button', { name: /Dismiss/ }));
    fireEvent.click(screen.getByRole('button', { name: 'Dismiss anyway' }));
    await waitFor(() => expect(card(container)).toBeNull());
    expect(mockedApi.deleteJob).toHaveBeenCalledWith('job1');
  });

  it('says when a re-publish changed nothing', async () => {
    const { container } = await renderPanel([
      job({
        state: 'done',
        phase: 'ended',
        did: 'user.jdoe:hist.root',
        dataset: null,
        files_total: 1,
        noop: true,
        message: 'Already published.'
      })
    ]);
    expect(card(container).textContent).toContain('Nothing new was published');
    expect(
      card(container).querySelector('[data-did="user.jdoe:hist.root"]')
        ?.textContent
    ).toContain('File');
  });
});

describe('StreamState', () => {
  it('says whether progress is live, and offers to reconnect', () => {
    const onReconnect = jest.fn();
    const { rerender, container } = render(
      <StreamState
        status={{ state: 'open', failures: 0, retryAt: null, error: null }}
        onReconnect={onReconnect}
      />
    );
    expect(container.textContent).toBe('Live');
    rerender(
      <StreamState
        status={{
          state: 'retrying',
          failures: 2,
          retryAt: Date.now() + 4000,
          error: 'the server closed the live stream'
        }}
        onReconnect={onReconnect}
      />
    );
    expect(container.textContent).toMatch(/Reconnecting in [45] s/);
    fireEvent.click(screen.getByRole('button', { name: 'now' }));
    expect(onReconnect).toHaveBeenCalled();
  });
});
