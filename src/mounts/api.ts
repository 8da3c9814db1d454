import { ServerConnection } from '@jupyterlab/services';

import {
  AFLabRequestError,
  endpointUrl,
  makeRequest,
  reasonOf,
  requestAPI
} from '../request';
import {
  ICacheUsage,
  IMount,
  IMountFile,
  IMountRequest,
  IUnmountResult
} from './types';

function json(body: unknown): RequestInit {
  return {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' }
  };
}

function mountPath(id: string, rest = ''): string {
  return `mounts/${encodeURIComponent(id)}${rest}`;
}

/**
 * `GET /af-lab/mounts`.
 */
export async function listMounts(): Promise<{
  mounts: IMount[];
  cache: ICacheUsage | null;
}> {
  const answer = await requestAPI<{ mounts: IMount[]; cache?: ICacheUsage }>(
    'mounts'
  );
  if (!answer || !Array.isArray(answer.mounts)) {
    throw new AFLabRequestError({
      status: 200,
      type: 'invalid_response',
      message:
        'The list of mounts has an unexpected form; the af_lab server extension may not match this interface.',
      url: endpointUrl('mounts'),
      body: answer
    });
  }
  return { mounts: answer.mounts, cache: answer.cache ?? null };
}

/**
 * `POST /af-lab/mounts`: the new (201) or the identical existing (200) mount.
 */
export async function createMount(request: IMountRequest): Promise<IMount> {
  const answer = await requestAPI<{ mount: IMount }>('mounts', json(request));
  return answer.mount;
}

export async function cancelMount(id: string): Promise<IMount> {
  return (
    await requestAPI<{ mount: IMount }>(mountPath(id, '/cancel'), json({}))
  ).mount;
}

export async function retryMount(id: string): Promise<IMount> {
  return (
    await requestAPI<{ mount: IMount }>(mountPath(id, '/retry'), json({}))
  ).mount;
}

export async function removeMount(id: string): Promise<IUnmountResult> {
  return requestAPI<IUnmountResult>(mountPath(id), { method: 'DELETE' });
}

export async function cacheUsage(): Promise<ICacheUsage> {
  return (await requestAPI<{ cache: ICacheUsage }>('mounts/cache')).cache;
}

/**
 * One page of `GET mounts/<id>/files`.
 */
export async function mountFiles(
  id: string,
  options: { offset?: number; limit?: number; state?: string } = {}
): Promise<{ files: IMountFile[]; total: number }> {
  const params = new URLSearchParams();
  params.set('offset', String(options.offset ?? 0));
  params.set('limit', String(options.limit ?? 5000));
  if (options.state) {
    params.set('state', options.state);
  }
  return requestAPI(mountPath(id, `/files?${params.toString()}`));
}

/**
 * Every file of a mount (page after page).
 */
export async function allMountFiles(
  id: string,
  state?: string
): Promise<IMountFile[]> {
  const files: IMountFile[] = [];
  for (;;) {
    const page = await mountFiles(id, {
      offset: files.length,
      limit: 5000,
      state
    });
    files.push(...page.files);
    if (page.files.length === 0 || files.length >= page.total) {
      return files;
    }
  }
}

/**
 * `GET mounts/<id>/fileset`: the coffea/uproot fileset as text.
 */
export async function mountFileset(
  id: string,
  format: 'json' | 'yaml' = 'json'
): Promise<string> {
  const settings = ServerConnection.makeSettings();
  const url = endpointUrl(mountPath(id, `/fileset?format=${format}`), settings);
  const response = await makeRequest(
    url,
    {},
    settings,
    error => `Cannot reach the Jupyter server (${reasonOf(error)}).`
  );
  const text = await response.text();
  if (!response.ok) {
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    const error = body && typeof body === 'object' ? body.error : null;
    throw new AFLabRequestError({
      status: response.status,
      type: (error && error.type) || 'http',
      message:
        (error && error.message) ||
        `The fileset could not be read (HTTP ${response.status}).`,
      url,
      body
    });
  }
  return text;
}
