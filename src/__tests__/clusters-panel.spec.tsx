import {
  act,
  fireEvent,
  render,
  screen,
  waitFor
} from '@testing-library/react';
import React from 'react';

import * as api from '../clusters/api';
import {
  cluster,
  HTCONDOR_JOBS,
  PROFILES
} from '../clusters/__tests__/fixtures';
import { ClustersPanel } from '../clusters/ClustersPanel';
import { ClustersModel } from '../clusters/model';
import { ICluster } from '../clusters/types';
import { AFLabRequestError } from '../request';
import { deferred } from './helpers';

jest.mock('../clusters/api');

const mocked = api as jest.Mocked<typeof api>;

const panelActions = () => ({
  shutdown: jest.fn().mockResolvedValue(undefined),
  insertClientCode: jest.fn().mockResolvedValue(undefined),
  copy: jest.fn(),
  openDashboard: jest.fn().mockResolvedValue(undefined)
});

beforeEach(() => {
  jest.resetAllMocks();
  mocked.fetchProfiles.mockResolvedValue(PROFILES);
  mocked.listClusters.mockResolvedValue([]);
  mocked.fetchJobs.mockResolvedValue(HTCONDOR_JOBS);
});

afterEach(() => {
  jest.useRealTimers();
});

describe('ClustersPanel', () => {
  function setup(model = new ClustersModel()) {
    const actions = panelActions();
    const result = render(<ClustersPanel model={model} actions={actions} />);
    act(() => model.setActive(true));
    return { ...result, model, actions };
  }

  it('offers to create a cluster when there is none', async () => {
    const { container, model } = setup();
    await screen.findByText(/No clusters yet/);
    expect(
      container
        .querySelector('.jp-AFLab-ClustersPanel')
        ?.getAttribute('data-phase')
    ).toBe('ready');
    model.dispose();
  });

  it('creates a cluster from the form with a spinner and text while it starts', async () => {
    const created = deferred<ICluster>();
    mocked.createCluster.mockReturnValue(created.promise);
    const { container, model } = setup();
    await screen.findByText(/No clusters yet/);

    fireEvent.click(screen.getAllByRole('button', { name: /New cluster/ })[0]);
    await screen.findByRole('form', { name: 'New cluster' });
    fireEvent.change(screen.getByLabelText('Workers to start'), {
      target: { value: '1' }
    });
    fireEvent.click(screen.getByRole('button', { name: 'Create cluster' }));

    expect(mocked.createCluster).toHaveBeenCalledWith({
      cores: 1,
      memory: '2.00 GiB',
      workers: 1,
      adapt: null,
      profile: 'local'
    });
    const placeholder = container.querySelector(
      '.jp-AFLab-CreationCard'
    ) as HTMLElement;
    expect(placeholder.dataset.state).toBe('creating');
    expect(placeholder.querySelector('.jp-AFLab-spinner')).not.toBeNull();
    expect(placeholder.textContent).toContain(
      'Creating the cluster: starting the scheduler…'
    );
    expect(placeholder.textContent).toContain('Then starting 1 worker.');
    // The form closed; the placeholder is the first thing in the list.
    expect(screen.queryByRole('form', { name: 'New cluster' })).toBeNull();

    await act(async () => created.resolve(cluster()));
    expect(container.querySelector('.jp-AFLab-CreationCard')).toBeNull();
    const card = container.querySelector(
      '.jp-AFLab-ClusterCard[data-cluster-id]'
    ) as HTMLElement;
    expect(card.dataset.state).toBe('running');
    model.dispose();
  });

  it('reopens the form with the over_limit error on its field', async () => {
    mocked.createCluster.mockRejectedValue(
      new AFLabRequestError({
        status: 400,
        type: 'over_limit',
        message: "cores 2 is over profile 'local''s limit max_cores = 1",
        details: { field: 'cores', limit: 'max_cores', value: 2, maximum: 1 }
      })
    );
    const { container, model } = setup();
    await screen.findByText(/No clusters yet/);
    fireEvent.click(screen.getAllByRole('button', { name: /New cluster/ })[0]);
    await screen.findByRole('form', { name: 'New cluster' });
    fireEvent.change(screen.getByLabelText('Cores per worker'), {
      target: { value: '2' }
    });
    fireEvent.click(screen.getByRole('button', { name: 'Create cluster' }));

    await screen.findByRole('form', { name: 'New cluster' });
    const cores = container.querySelector(
      '[data-field="cores"]'
    ) as HTMLElement;
    expect(cores.textContent).toContain('limit max_cores = 1');
    // What the user typed is kept.
    expect(
      (screen.getByLabelText('Cores per worker') as HTMLInputElement).value
    ).toBe('2');
    expect(container.querySelector('.jp-AFLab-CreationCard')).toBeNull();
    model.dispose();
  });

  it("keeps a failed creation on screen with condor's stderr", async () => {
    mocked.createCluster.mockRejectedValue(
      new AFLabRequestError({
        status: 502,
        type: 'condor',
        message:
          'condor_submit failed: ERROR: Parse error in expression: floor((',
        details: {
          command: 'condor_submit',
          exit_code: 1,
          stderr: 'ERROR: Parse error in expression: floor(('
        }
      })
    );
    const { container, model } = setup();
    await screen.findByText(/No clusters yet/);
    await act(async () => {
      await model
        .create('htcondor', { disk: '1 GiB', workers: 1 })
        .catch(() => undefined);
    });
    const failed = container.querySelector(
      '.jp-AFLab-CreationCard'
    ) as HTMLElement;
    expect(failed.dataset.state).toBe('create-failed');
    expect(failed.querySelector('pre')?.textContent).toBe(
      'ERROR: Parse error in expression: floor(('
    );
    expect(failed.textContent).toContain('The batch system refused');
    fireEvent.click(screen.getByRole('button', { name: 'Edit options' }));
    expect(container.querySelector('.jp-AFLab-CreationCard')).toBeNull();
    expect((screen.getByLabelText('Profile') as HTMLSelectElement).value).toBe(
      'htcondor'
    );
    model.dispose();
  });

  it('scales a cluster and shows the progress until the workers are there', async () => {
    mocked.listClusters.mockResolvedValue([cluster()]);
    const scaled = deferred<ICluster>();
    mocked.scaleCluster.mockReturnValue(scaled.promise);
    const { container, model } = setup();
    await waitFor(() =>
      expect(
        container.querySelector('.jp-AFLab-ClusterCard[data-cluster-id]')
      ).not.toBeNull()
    );
    fireEvent.click(screen.getByRole('button', { name: 'Scale…' }));
    fireEvent.change(screen.getByLabelText('Number of workers'), {
      target: { value: '2' }
    });
    fireEvent.click(screen.getByRole('button', { name: 'Scale' }));
    await screen.findByText('Asking for 2 workers…');
    expect(screen.getByText('Applying…')).toBeTruthy();
    expect(mocked.scaleCluster).toHaveBeenCalledWith(cluster().id, 2);

    await act(async () =>
      scaled.resolve(cluster({ workers: 1, requested_workers: 2 }))
    );
    expect(screen.queryByLabelText('Number of workers')).toBeNull();
    expect(container.textContent).toContain(
      'Starting workers: 1 of 2 connected'
    );
    model.dispose();
  });

  it('lists the newest cluster first and summarises', async () => {
    mocked.listClusters.mockResolvedValue([
      cluster({ id: 'a', name: 'old', workers: 2, requested_workers: 2 }),
      cluster({ id: 'b', name: 'new', workers: 1 })
    ]);
    const { container, model } = setup();
    await waitFor(() =>
      expect(
        container.querySelectorAll('.jp-AFLab-ClusterCard[data-cluster-id]')
      ).toHaveLength(2)
    );
    const names = Array.from(
      container.querySelectorAll('.jp-AFLab-ClusterCard-name')
    ).map(e => e.textContent);
    expect(names).toEqual(['new', 'old']);
    expect(
      container.querySelector('.jp-AFLab-ClustersPanel-summary')?.textContent
    ).toBe('2 clusters running · 3 workers');
    model.dispose();
  });
});
