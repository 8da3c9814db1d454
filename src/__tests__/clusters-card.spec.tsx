import { act, fireEvent, render, screen } from '@testing-library/react';
import React from 'react';

import {
  cluster,
  HTCONDOR_JOBS,
  HTCONDOR_PROFILE,
  htcondorCluster,
  LOCAL_PROFILE
} from '../clusters/__tests__/fixtures';
import { ClusterCard, IClusterCardActions } from '../clusters/ClusterCard';
import {
  explainMissingWorkers,
  formatDuration,
  holdReasons,
  progressText
} from '../clusters/format';
import { clientCode, dashboardItems } from '../clusters/lab';
import { IJobsState } from '../clusters/model';
import { ClusterState, ICluster } from '../clusters/types';
import { AFLabRequestError } from '../request';

function actions(): jest.Mocked<IClusterCardActions> {
  return {
    scale: jest.fn().mockResolvedValue(undefined),
    adapt: jest.fn().mockResolvedValue(undefined),
    shutdown: jest.fn().mockResolvedValue(undefined),
    insertClientCode: jest.fn().mockResolvedValue(undefined),
    copy: jest.fn(),
    openDashboard: jest.fn().mockResolvedValue(undefined),
    dismissError: jest.fn()
  };
}

function renderCard(
  c: ICluster,
  extra: Partial<React.ComponentProps<typeof ClusterCard>> = {}
) {
  const a = actions();
  const onScaleOpenChange = jest.fn();
  const result = render(
    <ul>
      <ClusterCard
        cluster={c}
        profile={c.backend === 'htcondor' ? HTCONDOR_PROFILE : LOCAL_PROFILE}
        actions={a}
        scaleOpen={false}
        onScaleOpenChange={onScaleOpenChange}
        {...extra}
      />
    </ul>
  );
  const card = result.container.querySelector(
    '.jp-AFLab-ClusterCard'
  ) as HTMLElement;
  return { ...result, card, actions: a, onScaleOpenChange };
}

function jobsState(data = HTCONDOR_JOBS): IJobsState {
  return { data, error: null, loading: false, at: Date.now() };
}

describe('ClusterCard', () => {
  it('shows name, profile, state, size, scheduler address and text buttons', async () => {
    const { card, actions: a } = renderCard(
      cluster({
        workers: 2,
        requested_workers: 2,
        cores: 2,
        memory: '4.00 GiB'
      })
    );
    expect(card.dataset.state).toBe('running');
    expect(card.querySelector('.jp-AFLab-ClusterCard-name')?.textContent).toBe(
      'Local (this server) 1'
    );
    expect(card.textContent).toContain('Local (this server)');
    expect(card.textContent).toContain('1 core · 2.00 GiB memory per worker');
    expect(card.querySelector('.jp-AFLab-badge')?.textContent).toBe('Running');
    const stat = (k: string) =>
      card.querySelector(`[data-stat="${k}"] dd`)?.textContent;
    expect(stat('workers')).toBe('2');
    expect(stat('cores')).toBe('2');
    expect(stat('memory')).toBe('4.00 GiB');
    expect(card.querySelector('code')?.textContent).toBe(
      'tcp://127.0.0.1:41073'
    );
    // Every action has a word on it.
    for (const name of [
      'Dashboard',
      'Scale…',
      'Insert client code',
      'Shut down'
    ]) {
      expect(
        screen.getByRole('button', { name: new RegExp(name) })
      ).toBeTruthy();
    }
    fireEvent.click(screen.getByRole('button', { name: /Copy scheduler/ }));
    expect(a.copy).toHaveBeenCalledWith('tcp://127.0.0.1:41073');
    expect(screen.getByText('Copied')).toBeTruthy();
    await act(async () =>
      fireEvent.click(
        screen.getByRole('button', { name: /Insert client code/ })
      )
    );
    expect(a.insertClientCode).toHaveBeenCalled();
    fireEvent.click(screen.getByRole('button', { name: /Shut down/ }));
    expect(a.shutdown).toHaveBeenCalled();
    // A local cluster has no batch jobs, and says so.
    expect(card.querySelector('[data-backend="local"]')?.textContent).toContain(
      'no batch jobs'
    );
  });

  it.each<[ClusterState, string, boolean]>([
    ['starting', 'Starting', true],
    ['running', 'Running', true],
    ['stopping', 'Shutting down', false],
    ['stopped', 'Stopped', false],
    ['failed', 'Failed', false]
  ])('state %s is written out as %j', (state, label, live) => {
    const { card } = renderCard(
      cluster({
        state,
        message:
          state === 'failed'
            ? 'Its scheduler died (signal 9).'
            : state === 'stopped'
              ? 'It was shut down after 3600 s without tasks.'
              : '',
        scheduler_address: live ? 'tcp://127.0.0.1:41073' : ''
      })
    );
    expect(card.dataset.state).toBe(state);
    expect(card.querySelector('.jp-AFLab-badge')?.textContent).toBe(label);
    expect(!!card.querySelector('.jp-AFLab-ClusterStats')).toBe(live);
    if (state === 'failed' || state === 'stopped') {
      expect(card.textContent).toContain(
        state === 'failed' ? 'Its scheduler died' : 'without tasks'
      );
      expect(screen.getByRole('button', { name: 'Dismiss' })).toBeTruthy();
      expect(screen.queryByRole('button', { name: /Scale/ })).toBeNull();
    }
    if (state === 'starting' || state === 'stopping') {
      expect(card.querySelector('.jp-AFLab-spinner')).not.toBeNull();
    }
  });

  it('shows a spinner and words while an action runs, never just a grey button', () => {
    const { card } = renderCard(cluster(), {
      operation: {
        kind: 'scale',
        text: 'Asking for 2 workers…',
        startedAt: Date.now() - 3000
      }
    });
    const progress = card.querySelector('.jp-AFLab-ClusterProgress');
    expect(progress?.querySelector('.jp-AFLab-spinner')).not.toBeNull();
    expect(progress?.textContent).toMatch(/Asking for 2 workers… \d+ s/);
    expect(card.getAttribute('aria-busy')).toBe('true');
  });

  it('says when workers are still starting', () => {
    const { card } = renderCard(cluster({ workers: 1, requested_workers: 2 }));
    expect(card.querySelector('[data-stat="workers"] dd')?.textContent).toBe(
      '1 / 2'
    );
    expect(card.textContent).toContain('Starting workers: 1 of 2 connected');
  });

  it('shows HTCondor job counts, hold reasons and why workers are missing', () => {
    const { card } = renderCard(htcondorCluster(), { jobs: jobsState() });
    const counts = Array.from(
      card.querySelectorAll('.jp-AFLab-JobStatus-counts [data-job-state]')
    ).map(e => [e.getAttribute('data-job-state'), e.textContent]);
    expect(counts).toEqual([
      ['running', '1 running'],
      ['idle', '1 idle'],
      ['held', '1 held']
    ]);
    expect(card.textContent).toContain('of 3 submitted');
    expect(card.querySelector('.jp-AFLab-HoldReasons')?.textContent).toContain(
      'Failed to pull image coffea:latest'
    );
    expect(card.querySelector('.jp-AFLab-JobStatus-why')?.textContent).toBe(
      '2 workers missing: 1 job is held by HTCondor and will not start until released or removed; 1 job waits in the queue for a free slot.'
    );
    expect(card.textContent).toContain('Waiting for workers: 1 of 3 connected');
    expect(card.querySelectorAll('.jp-AFLab-JobList tbody tr')).toHaveLength(3);
  });

  it('explains "0 workers" when every job is idle', () => {
    const c = htcondorCluster({ workers: 0, requested_workers: 2 });
    const jobs = {
      ...HTCONDOR_JOBS,
      counts: { submitted: 2, idle: 2, running: 0, held: 0, done: 0 },
      jobs: HTCONDOR_JOBS.jobs.slice(0, 2).map(j => ({
        ...j,
        status: 'idle',
        connected: false
      }))
    };
    expect(explainMissingWorkers(c, jobs)).toBe(
      'No worker yet: 2 jobs wait in the queue for a free slot.'
    );
    const { card } = renderCard(c, { jobs: jobsState(jobs) });
    expect(card.textContent).toContain('No worker yet');
  });

  it('keeps the last job counts when a refresh fails', () => {
    const error = new AFLabRequestError({
      status: 502,
      type: 'condor',
      message: 'condor_q failed: Failed to connect to schedd'
    });
    const { card } = renderCard(htcondorCluster(), {
      jobs: { ...jobsState(), error }
    });
    expect(card.textContent).toContain('1 running');
    expect(
      card.querySelector('.jp-AFLab-JobStatus-error')?.textContent
    ).toContain('may be out of date: condor_q failed');
  });

  it("shows a failed action's condor stderr as printed", () => {
    const error = new AFLabRequestError({
      status: 502,
      type: 'condor',
      message:
        'condor_submit failed: ERROR: Failed to connect to local queue manager\nAttempting to submit jobs...',
      details: {
        command: 'condor_submit',
        exit_code: 1,
        stderr:
          'ERROR: Failed to connect to local queue manager\nAttempting to submit jobs...'
      }
    });
    const { card, actions: a } = renderCard(htcondorCluster(), {
      error: { title: 'Scaling to 3 workers failed', error, at: Date.now() }
    });
    const notice = card.querySelector('.jp-AFLab-ClusterError') as HTMLElement;
    expect(notice.textContent).toContain('Scaling to 3 workers failed');
    expect(notice.querySelector('pre')?.textContent).toBe(
      'ERROR: Failed to connect to local queue manager\nAttempting to submit jobs...'
    );
    expect(notice.textContent).toContain('condor_submit exited with 1');
    fireEvent.click(screen.getByRole('button', { name: 'Dismiss' }));
    expect(a.dismissError).toHaveBeenCalledWith(htcondorCluster().id);
  });

  it('opens the scale editor and validates against the profile limit', async () => {
    const { actions: a } = renderCard(cluster(), { scaleOpen: true });
    const input = screen.getByLabelText(
      'Number of workers'
    ) as HTMLInputElement;
    fireEvent.change(input, { target: { value: '5' } });
    fireEvent.click(screen.getByRole('button', { name: 'Scale' }));
    expect(
      await screen.findByText("Workers: at most 2 with this cluster's profile.")
    ).toBeTruthy();
    expect(a.scale).not.toHaveBeenCalled();
    fireEvent.change(input, { target: { value: '2' } });
    fireEvent.click(screen.getByRole('button', { name: 'Scale' }));
    expect(a.scale).toHaveBeenCalledWith(cluster().id, 2);
  });
});

describe('wording', () => {
  it('formats durations', () => {
    expect(formatDuration(4.4)).toBe('4 s');
    expect(formatDuration(75)).toBe('1 min 15 s');
    expect(formatDuration(3720)).toBe('1 h 2 min');
  });

  it('describes progress', () => {
    expect(progressText(cluster(), Date.now())).toBeNull();
    expect(progressText(cluster({ state: 'starting' }), Date.now())).toBe(
      'Starting the scheduler and the first workers…'
    );
    expect(progressText(htcondorCluster(), 1795392380 * 1000)).toBe(
      'Waiting for workers: 1 of 3 connected (10 s)'
    );
  });

  it('groups hold reasons', () => {
    const held = { ...HTCONDOR_JOBS.jobs[2] };
    expect(
      holdReasons({
        ...HTCONDOR_JOBS,
        jobs: [held, { ...held, job_id: '15.0' }]
      })
    ).toEqual([
      {
        reason: 'Error from slot1@node: Failed to pull image coffea:latest',
        count: 2
      }
    ]);
  });

  it('writes client code that fetches the cluster certificate in the kernel', () => {
    const c = cluster();
    expect(clientCode(c)).toBe(
      `from af_lab.kernel import FacilityClient\n\nclient = FacilityClient.discover().dask_client("${c.id}")\nclient`
    );
  });

  it('lists dashboard plots like dask-labextension, without GPU plots on CPU clusters', () => {
    const plots = {
      'Individual Task Stream': '/individual-task-stream',
      'Individual Gpu Memory': '/individual-gpu-memory',
      'Individual Rmm Memory': '/individual-rmm-memory',
      'Individual Progress': '/individual-progress',
      'Individual Bandwidth Types': '/individual-bandwidth-types'
    };
    expect(dashboardItems(plots, false).map(i => i.label)).toEqual([
      'Task Stream',
      'Progress',
      'Bandwidth Types'
    ]);
    expect(dashboardItems(plots, true).map(i => i.label)).toContain(
      'Gpu Memory'
    );
    expect(dashboardItems(plots, false)[0]).toEqual({
      route: '/individual-task-stream',
      label: 'Task Stream',
      key: 'Task Stream'
    });
  });
});
