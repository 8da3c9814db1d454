import { AFLabRequestError, endpointUrl, requestAPI } from '../request';
import {
  CredentialsBody,
  ICredentialStatus,
  ICredentialsAnswer,
  IDIDDetails,
  IDIDItem,
  IPage,
  IRucioInstance,
  SearchType
} from './types';

/**
 * `rucio/instances/<inst>/...`
 */
function inst(instance: string, rest: string): string {
  return `rucio/instances/${encodeURIComponent(instance)}/${rest}`;
}

/**
 * A DID in a URL path: `scope:name`, percent-encoded (`/` → `%2F`).
 */
export function didPath(did: string): string {
  return encodeURIComponent(did);
}

function query(params: Record<string, string | number | undefined | null>) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') {
      search.set(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

function checkPage<T>(answer: IPage<T>, what: string): IPage<T> {
  if (!answer || !Array.isArray(answer.items)) {
    throw new AFLabRequestError({
      status: 200,
      type: 'invalid_response',
      message: `The answer for ${what} is not a page of items; the af_lab server extension may not match this interface.`,
      url: endpointUrl(),
      body: answer
    });
  }
  return answer;
}

/**
 * Paging options of every listing.
 */
export interface IPaging {
  cursor?: string | null;
  limit?: number;
  /**
   * With a cursor: start at this item of the cursor's listing (a jump).
   */
  offset?: number;
  /**
   * Ask Rucio again instead of the server's cached listing (first page only).
   */
  refresh?: boolean;
}

function paging(options: IPaging) {
  return {
    cursor: options.cursor ?? undefined,
    limit: options.limit,
    offset: options.cursor ? options.offset : undefined,
    refresh: options.refresh && !options.cursor ? 1 : undefined
  };
}

export async function listInstances(): Promise<IRucioInstance[]> {
  const answer = await requestAPI<{ instances: IRucioInstance[] }>(
    'rucio/instances'
  );
  return Array.isArray(answer?.instances) ? answer.instances : [];
}

export async function listScopes(
  instance: string,
  refresh = false
): Promise<string[]> {
  const answer = await requestAPI<{ scopes: string[] }>(
    inst(instance, `scopes${query({ refresh: refresh ? 1 : undefined })}`)
  );
  return Array.isArray(answer?.scopes) ? answer.scopes : [];
}

/**
 * `GET dids?q=scope:name*&type=…`: one page of search hits.
 */
export async function searchDIDs(
  instance: string,
  pattern: string,
  type: SearchType,
  options: IPaging & { filter?: string } = {}
): Promise<IPage<IDIDItem>> {
  const answer = await requestAPI<IPage<IDIDItem>>(
    inst(
      instance,
      `dids${query({ q: pattern, type, filter: options.filter, ...paging(options) })}`
    )
  );
  return checkPage(answer, `the search ${pattern}`);
}

/**
 * `GET dids/<did>`: details and availability. `wait` is how long the server
 * may wait for the replica count (long poll, at most 30 s).
 */
export async function getDID(
  instance: string,
  did: string,
  options: {
    availability?: 'auto' | 'full' | 'skip';
    wait?: number;
    refresh?: boolean;
  } = {}
): Promise<IDIDDetails> {
  return requestAPI<IDIDDetails>(
    inst(
      instance,
      `dids/${didPath(did)}${query({
        availability: options.availability,
        wait: options.wait,
        refresh: options.refresh ? 1 : undefined
      })}`
    )
  );
}

/**
 * `GET dids/<did>/content`: a container's collections or a dataset's files.
 */
export async function listContent(
  instance: string,
  did: string,
  options: IPaging = {}
): Promise<IPage<IDIDItem>> {
  const answer = await requestAPI<IPage<IDIDItem>>(
    inst(instance, `dids/${didPath(did)}/content${query(paging(options))}`)
  );
  return checkPage(answer, `the content of ${did}`);
}

/**
 * `GET dids/<did>/replicas`: the files of a DID with their replicas.
 */
export async function listReplicas(
  instance: string,
  did: string,
  options: IPaging = {}
): Promise<IPage<IDIDItem>> {
  const answer = await requestAPI<IPage<IDIDItem>>(
    inst(instance, `dids/${didPath(did)}/replicas${query(paging(options))}`)
  );
  const page = checkPage(answer, `the replicas of ${did}`);
  for (const item of page.items) {
    item.type = item.type || 'file';
    item.length = item.length ?? 1;
  }
  return page;
}

/**
 * `GET /af-lab/credentials`: login status per instance (never a secret).
 */
export async function credentialStatus(): Promise<ICredentialsAnswer> {
  const answer = await requestAPI<ICredentialsAnswer>('credentials');
  return {
    vault: answer?.vault ?? null,
    instances: Array.isArray(answer?.instances) ? answer.instances : []
  };
}

/**
 * `PUT /af-lab/credentials/<instance>`: write-only; answers the new status.
 */
export async function putCredentials(
  instance: string,
  body: CredentialsBody
): Promise<ICredentialStatus> {
  return requestAPI<ICredentialStatus>(
    `credentials/${encodeURIComponent(instance)}`,
    {
      method: 'PUT',
      body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json' }
    }
  );
}
