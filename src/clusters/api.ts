import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  AFLabRequestError,
  endpointUrl,
  isRecord,
  makeRequest,
  requestAPI
} from '../request';
import {
  IAdaptBounds,
  ICluster,
  IClustersResponse,
  ICreateClusterBody,
  IJobsResponse,
  IProfilesResponse
} from './types';

/**
 * The REST calls of the Clusters view, `<baseUrl>/af-lab/clusters/...`.
 * Every function throws {@link AFLabRequestError} with a user-facing message.
 */

function invalid(endPoint: string, what: string, body: unknown): never {
  throw new AFLabRequestError({
    status: 200,
    type: 'invalid_response',
    message:
      `The answer of ${endPoint} has no ${what}. ` +
      'The af_lab server extension may not match this version of the interface.',
    url: endpointUrl(endPoint),
    body
  });
}

function clusterPath(id: string): string {
  return `clusters/${encodeURIComponent(id)}`;
}

function checkCluster(endPoint: string, answer: unknown): ICluster {
  if (!isRecord(answer) || typeof answer.id !== 'string') {
    invalid(endPoint, 'cluster', answer);
  }
  return answer as unknown as ICluster;
}

/**
 * `GET /af-lab/clusters/profiles`: what the site offers and its limits.
 */
export async function fetchProfiles(): Promise<IProfilesResponse> {
  const endPoint = 'clusters/profiles';
  const answer = await requestAPI<IProfilesResponse>(endPoint);
  if (!isRecord(answer) || !Array.isArray(answer.profiles)) {
    invalid(endPoint, 'list of profiles', answer);
  }
  return {
    default: answer.default ?? '',
    profiles: answer.profiles,
    errors: Array.isArray(answer.errors) ? answer.errors : []
  };
}

/**
 * `GET /af-lab/clusters`: the user's clusters, oldest first.
 */
export async function listClusters(): Promise<ICluster[]> {
  const answer = await requestAPI<IClustersResponse>('clusters');
  if (!isRecord(answer) || !Array.isArray(answer.clusters)) {
    invalid('clusters', 'list of clusters', answer);
  }
  return answer.clusters;
}

/**
 * `POST /af-lab/clusters`: answers once the cluster runs (this takes a while:
 * the scheduler starts and the first workers are started or submitted).
 */
export async function createCluster(
  body: ICreateClusterBody
): Promise<ICluster> {
  const answer = await requestAPI<ICluster>('clusters', {
    method: 'POST',
    body: JSON.stringify(body)
  });
  return checkCluster('clusters', answer);
}

/**
 * `PATCH /af-lab/clusters/<id>` with `{"workers": n}`: answers once the jobs
 * are submitted (HTCondor) or the workers started (local).
 */
export async function scaleCluster(
  id: string,
  workers: number
): Promise<ICluster> {
  const endPoint = clusterPath(id);
  const answer = await requestAPI<ICluster>(endPoint, {
    method: 'PATCH',
    body: JSON.stringify({ workers })
  });
  return checkCluster(endPoint, answer);
}

/**
 * `PATCH /af-lab/clusters/<id>` with `{"adapt": {...}}`, or `{"adapt": null}`
 * to stop adapting (the current workers stay).
 */
export async function adaptCluster(
  id: string,
  adapt: IAdaptBounds | null
): Promise<ICluster> {
  const endPoint = clusterPath(id);
  const answer = await requestAPI<ICluster>(endPoint, {
    method: 'PATCH',
    body: JSON.stringify({ adapt })
  });
  return checkCluster(endPoint, answer);
}

/**
 * `DELETE /af-lab/clusters/<id>`: shuts a cluster down (workers, batch jobs,
 * scheduler), or dismisses a stopped/failed one.
 */
export async function deleteCluster(id: string): Promise<void> {
  await requestAPI<void>(clusterPath(id), { method: 'DELETE' });
}

/**
 * `GET /af-lab/clusters/<id>/jobs`: the HTCondor jobs of a cluster.
 */
export async function fetchJobs(id: string): Promise<IJobsResponse> {
  const endPoint = `${clusterPath(id)}/jobs`;
  const answer = await requestAPI<IJobsResponse>(endPoint);
  if (!isRecord(answer) || !Array.isArray(answer.jobs)) {
    invalid(endPoint, 'list of jobs', answer);
  }
  return answer;
}

/**
 * The full URL of a cluster's dashboard (without `/status`) when the Jupyter
 * server proxies it (dask-labextension's `<baseUrl>dask/dashboard/<id>/`);
 * null for a direct link the browser may not reach.
 */
export function proxiedDashboardBase(
  dashboardUrl: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string | null {
  if (!dashboardUrl || !URLExt.isLocal(dashboardUrl, true)) {
    return null;
  }
  let path = dashboardUrl.replace(/\/status\/?$/, '');
  const basePath = URLExt.parse(settings.baseUrl).pathname;
  if (path.startsWith(basePath)) {
    path = path.slice(basePath.length);
  }
  return URLExt.join(settings.baseUrl, path);
}

/**
 * The individual dashboard plots of a cluster (`individual-plots.json`,
 * through dask-labextension's proxy), as `{name: route}`.
 *
 * @throws {AFLabRequestError} when the dashboard does not answer
 */
export async function fetchDashboardPlots(
  dashboardUrl: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<Record<string, string>> {
  const base = proxiedDashboardBase(dashboardUrl, settings);
  if (base === null) {
    throw new AFLabRequestError({
      status: 0,
      type: 'dashboard',
      message:
        'This server does not proxy Dask dashboards (dask-labextension is not enabled): ' +
        'open the dashboard in a browser tab instead.',
      url: dashboardUrl
    });
  }
  const url = URLExt.join(base, 'individual-plots.json');
  const response = await makeRequest(
    url,
    {},
    settings,
    error => `Cannot reach the cluster's dashboard (${String(error)}).`
  );
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok || !isRecord(body)) {
    throw new AFLabRequestError({
      status: response.status,
      type: 'dashboard',
      message:
        `The cluster's dashboard does not answer (HTTP ${response.status}). ` +
        'Its scheduler may have stopped.',
      url,
      body
    });
  }
  const plots: Record<string, string> = {};
  for (const [name, route] of Object.entries(body)) {
    if (typeof route === 'string') {
      plots[name] = route;
    }
  }
  return plots;
}
