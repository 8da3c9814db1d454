/**
 * Answers of the cluster REST API as the server sends them (shapes copied
 * from a real af_lab server; see af_lab/clusters/handlers.py), for the
 * `src/__tests__/clusters*.spec.ts(x)` tests.
 */
import { ICluster, IJobsResponse, IProfile, IProfilesResponse } from '../types';

export const LOCAL_PROFILE: IProfile = {
  name: 'local',
  display_name: 'Local (this server)',
  description: 'Dask workers as processes next to your notebook server.',
  backend: 'local',
  limits: { max_workers: 2, max_cores: 2, max_memory: '23.54 GiB' },
  schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Local (this server)',
    type: 'object',
    properties: {
      cores: {
        type: 'integer',
        title: 'Cores per worker',
        minimum: 1,
        default: 1,
        maximum: 2,
        description: 'at most 2'
      },
      memory: {
        type: 'string',
        title: 'Memory per worker',
        pattern: '^\\s*\\d+(\\.\\d+)?\\s*[kKMGTP]?i?B?\\s*$',
        default: '2.00 GiB',
        description: 'at most 23.54 GiB',
        'x-maximum-bytes': 25275882536
      },
      workers: {
        type: 'integer',
        title: 'Workers to start',
        minimum: 0,
        default: 0,
        maximum: 2,
        description: 'at most 2'
      },
      adapt: {
        title: 'Adaptive scaling',
        description:
          "Let Dask add and remove workers between these bounds (overrides 'workers').",
        type: ['object', 'null'],
        properties: {
          minimum: { type: 'integer', minimum: 0, title: 'Minimum workers' },
          maximum: {
            type: 'integer',
            minimum: 0,
            title: 'Maximum workers',
            maximum: 2
          }
        },
        additionalProperties: false,
        default: null
      }
    },
    required: [],
    additionalProperties: false
  } as IProfile['schema']
};

export const HTCONDOR_PROFILE: IProfile = {
  name: 'htcondor',
  display_name: 'HTCondor pool',
  description: 'Workers as HTCondor jobs.',
  backend: 'htcondor',
  limits: {
    max_workers: 4,
    max_cores: 2,
    max_memory: '2 GiB',
    max_disk: '10 GiB',
    max_clusters: 2,
    images: ['/cvmfs/unpacked.cern.ch/coffea:latest', 'other:1']
  },
  schema: {
    type: 'object',
    properties: {
      cores: {
        type: 'integer',
        title: 'Cores per worker',
        minimum: 1,
        default: 1,
        maximum: 2
      },
      memory: {
        type: 'string',
        title: 'Memory per worker',
        pattern: '^\\s*\\d+(\\.\\d+)?\\s*[kKMGTP]?i?B?\\s*$',
        default: '256 MiB',
        'x-maximum-bytes': 2147483648
      },
      disk: {
        type: 'string',
        title: 'Disk per worker',
        pattern: '^\\s*\\d+(\\.\\d+)?\\s*[kKMGTP]?i?B?\\s*$',
        'x-maximum-bytes': 10737418240
      },
      image: {
        type: 'string',
        title: 'Container image',
        enum: ['/cvmfs/unpacked.cern.ch/coffea:latest', 'other:1']
      },
      workers: {
        type: 'integer',
        title: 'Workers to start',
        minimum: 0,
        default: 0,
        maximum: 4
      },
      adapt: {
        title: 'Adaptive scaling',
        type: ['object', 'null'],
        properties: {
          minimum: { type: 'integer', minimum: 0, title: 'Minimum workers' },
          maximum: {
            type: 'integer',
            minimum: 0,
            title: 'Maximum workers',
            maximum: 4
          }
        },
        default: null
      }
    },
    required: ['disk'],
    additionalProperties: false
  } as IProfile['schema']
};

export const PROFILES: IProfilesResponse = {
  default: 'local',
  profiles: [LOCAL_PROFILE, HTCONDOR_PROFILE],
  errors: []
};

export function cluster(overrides: Partial<ICluster> = {}): ICluster {
  return {
    id: '7f7f1532-3376-4a57-b7ed-21f9551ccdb7',
    name: 'Local (this server) 1',
    profile: 'local',
    backend: 'local',
    state: 'running',
    message: '',
    options: {
      cores: 1,
      memory: '2.00 GiB',
      disk: null,
      gpus: 0,
      image: null,
      universe: null,
      workers: 1,
      adapt: null
    },
    scheduler_address: 'tcp://127.0.0.1:41073',
    dashboard_link: 'http://127.0.0.1:38525/status',
    dashboard_url:
      '/dask/dashboard/7f7f1532-3376-4a57-b7ed-21f9551ccdb7/status',
    workers: 1,
    requested_workers: 1,
    cores: 1,
    memory: '2.00 GiB',
    memory_bytes: 2147483648,
    adapt: null,
    pending: null,
    warnings: [],
    token: null,
    created: 1795392365.27,
    ...overrides
  };
}

export function htcondorCluster(overrides: Partial<ICluster> = {}): ICluster {
  return cluster({
    id: '0b1e9c4e-8d7a-4c55-9f0e-6a9d2c3b4a11',
    name: 'HTCondor pool 1',
    profile: 'htcondor',
    backend: 'htcondor',
    workers: 1,
    requested_workers: 3,
    cores: 1,
    memory: '256.00 MiB',
    pending: { workers: 2, since: 1795392370 },
    ...overrides
  });
}

export const HTCONDOR_JOBS: IJobsResponse = {
  cluster: '0b1e9c4e-8d7a-4c55-9f0e-6a9d2c3b4a11',
  backend: 'htcondor',
  queried_at: 1795392380,
  counts: { submitted: 3, idle: 1, running: 1, held: 1, done: 0 },
  jobs: [
    {
      job_id: '12.0',
      worker: 'af-0b1e9c4e-0',
      connected: true,
      status: 'running',
      since: 1795392371,
      hold_reason: null
    },
    {
      job_id: '13.0',
      worker: 'af-0b1e9c4e-1',
      connected: false,
      status: 'idle',
      since: 1795392371,
      hold_reason: null
    },
    {
      job_id: '14.0',
      worker: 'af-0b1e9c4e-2',
      connected: false,
      status: 'held',
      since: 1795392372,
      hold_reason: 'Error from slot1@node: Failed to pull image coffea:latest'
    }
  ],
  message:
    '1 held, 1 idle, 1 running (hold reason: Error from slot1@node: Failed to pull image coffea:latest)'
};
