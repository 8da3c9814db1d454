import { URLExt } from '@jupyterlab/coreutils';

import { AFLabRequestError, endpointUrl, requestAPI } from '../request';
import {
  IJobDetail,
  IProvenanceAnswer,
  IPublishJob,
  IPublishOptions,
  IPublishPlan,
  IPublishRequest
} from './types';

/**
 * The Publish routes of the af_lab server extension. Every function throws
 * {@link AFLabRequestError} with a message written for the user.
 */

function query(params: Record<string, string | number | undefined>): string {
  const defined: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') {
      defined[key] = String(value);
    }
  }
  return Object.keys(defined).length ? URLExt.objectToQueryString(defined) : '';
}

function post(body: unknown): RequestInit {
  return { method: 'POST', body: JSON.stringify(body) };
}

function expectObject<T>(answer: unknown, what: string, key?: string): T {
  const ok =
    typeof answer === 'object' &&
    answer !== null &&
    (key === undefined || key in (answer as Record<string, unknown>));
  if (!ok) {
    throw new AFLabRequestError({
      status: 200,
      type: 'invalid_response',
      message:
        `The server's answer to ${what} is not what this interface expects. ` +
        'The af_lab server extension may not match this version of the interface.',
      url: endpointUrl(what),
      body: answer
    });
  }
  return answer as T;
}

/**
 * `GET publish/options`: scopes, writable RSEs with quota, defaults, naming.
 */
export async function fetchOptions(
  instance?: string
): Promise<IPublishOptions> {
  const answer = await requestAPI<IPublishOptions>(
    `publish/options${query({ instance })}`
  );
  return expectObject<IPublishOptions>(answer, 'publish/options', 'scopes');
}

/**
 * `POST publish/validate`: every check of a publish, nothing started.
 */
export async function validatePublish(
  request: IPublishRequest,
  init: RequestInit = {}
): Promise<IPublishPlan> {
  const answer = await requestAPI<IPublishPlan>('publish/validate', {
    ...post(request),
    ...init
  });
  return expectObject<IPublishPlan>(answer, 'publish/validate', 'files_total');
}

/**
 * `POST publish/jobs`: start a publish job.
 */
export async function submitPublish(
  request: IPublishRequest
): Promise<IPublishJob> {
  const answer = await requestAPI<IPublishJob>('publish/jobs', post(request));
  return expectObject<IPublishJob>(answer, 'publish/jobs', 'id');
}

/**
 * `GET publish/jobs`: every job, newest first.
 */
export async function fetchJobs(): Promise<IPublishJob[]> {
  const answer = await requestAPI<{ jobs: IPublishJob[] }>('publish/jobs');
  const { jobs } = expectObject<{ jobs: IPublishJob[] }>(
    answer,
    'publish/jobs',
    'jobs'
  );
  return Array.isArray(jobs) ? jobs : [];
}

/**
 * `GET publish/jobs/<id>`: a job with (a page of) its files.
 */
export async function fetchJob(
  id: string,
  offset = 0,
  limit = 200
): Promise<IJobDetail> {
  const answer = await requestAPI<IJobDetail>(
    `publish/jobs/${encodeURIComponent(id)}${query({ offset, limit })}`
  );
  return expectObject<IJobDetail>(answer, 'publish/jobs/<id>', 'job');
}

/**
 * `POST publish/jobs/<id>/cancel` (409 once registration has begun).
 */
export async function cancelJob(id: string): Promise<IPublishJob> {
  return requestAPI<IPublishJob>(
    `publish/jobs/${encodeURIComponent(id)}/cancel`,
    { method: 'POST' }
  );
}

/**
 * `POST publish/jobs/<id>/retry`: resumes an interrupted job in place; a
 * failed or cancelled one runs again as a new job (returned).
 */
export async function retryJob(id: string): Promise<IPublishJob> {
  return requestAPI<IPublishJob>(
    `publish/jobs/${encodeURIComponent(id)}/retry`,
    { method: 'POST' }
  );
}

/**
 * `DELETE publish/jobs/<id>`: forget an ended job (never the data).
 */
export async function deleteJob(id: string): Promise<void> {
  await requestAPI<void>(`publish/jobs/${encodeURIComponent(id)}`, {
    method: 'DELETE'
  });
}

/**
 * `GET publish/provenance?did=`.
 */
export async function fetchProvenance(
  did: string,
  instance?: string
): Promise<IProvenanceAnswer> {
  const answer = await requestAPI<IProvenanceAnswer>(
    `publish/provenance${query({ did, instance })}`
  );
  return expectObject<IProvenanceAnswer>(
    answer,
    'publish/provenance',
    'provenance'
  );
}
