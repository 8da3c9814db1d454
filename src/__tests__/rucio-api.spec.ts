import * as mountsApi from '../mounts/api';
import { AFLabRequestError } from '../request';
import * as rucioApi from '../rucio/api';

/**
 * Answer every request with the next scripted body; record the requests.
 */
function serve(...answers: [number, unknown, string?][]): Request[] {
  const requests: Request[] = [];
  jest.spyOn(globalThis, 'fetch').mockImplementation((async (
    input: RequestInfo
  ) => {
    const request = input as Request;
    requests.push(request);
    const [status, body, type] = answers.shift() ?? [200, {}];
    return new Response(
      typeof body === 'string' ? body : JSON.stringify(body),
      {
        status,
        headers: { 'Content-Type': type ?? 'application/json' }
      }
    );
  }) as any);
  return requests;
}

function path(request: Request): string {
  const url = new URL(request.url);
  // Drop ServerConnection's cache buster, if any.
  return `${url.pathname}${url.search.replace(/[?&]\d{10,}$/, '')}`;
}

const PAGE = {
  items: [],
  cursor: null,
  complete: true,
  count: 0,
  total: 0,
  cached_at: 0,
  expires_at: 0
};

afterEach(() => jest.restoreAllMocks());

describe('Rucio API calls', () => {
  it('builds the search, details, content and replicas URLs', async () => {
    const requests = serve(
      [200, PAGE],
      [200, { did: 's:a/b' }],
      [200, PAGE],
      [
        200,
        {
          ...PAGE,
          items: [{ scope: 's', name: 'f', did: 's:f', bytes: 1, replicas: [] }]
        }
      ]
    );
    await rucioApi.searchDIDs('demo', 'cms_opendata:*Mu*', 'collection', {
      limit: 50,
      refresh: true
    });
    await rucioApi.getDID('demo', 's:a/b', { availability: 'full', wait: 10 });
    await rucioApi.listContent('demo', 's:c', {
      cursor: 'WzEsMl0',
      limit: 200
    });
    const replicas = await rucioApi.listReplicas('demo', 's:d');
    expect(requests.map(path)).toEqual([
      '/af-lab/rucio/instances/demo/dids?q=cms_opendata%3A*Mu*&type=collection&limit=50&refresh=1',
      '/af-lab/rucio/instances/demo/dids/s%3Aa%2Fb?availability=full&wait=10',
      // A cursor never goes with refresh.
      '/af-lab/rucio/instances/demo/dids/s%3Ac/content?cursor=WzEsMl0&limit=200',
      '/af-lab/rucio/instances/demo/dids/s%3Ad/replicas'
    ]);
    expect(replicas.items[0]).toMatchObject({ type: 'file', length: 1 });
  });

  it('sends credentials with PUT, write-only, and reads the status', async () => {
    const requests = serve(
      [200, { instance: 'demo', logged_in: true }],
      [200, { vault: null, instances: [{ instance: 'demo' }] }]
    );
    await rucioApi.putCredentials('demo', {
      auth_type: 'userpass',
      username: 'jdoe',
      password: 'pw'
    });
    expect(requests[0].method).toBe('PUT');
    expect(path(requests[0])).toBe('/af-lab/credentials/demo');
    expect(await requests[0].json()).toEqual({
      auth_type: 'userpass',
      username: 'jdoe',
      password: 'pw'
    });
    const status = await rucioApi.credentialStatus();
    expect(status.instances).toHaveLength(1);
  });

  it('rejects an answer that is not a page', async () => {
    serve([200, { nope: true }]);
    await expect(rucioApi.listContent('demo', 's:x')).rejects.toBeInstanceOf(
      AFLabRequestError
    );
  });
});

describe('Mounts API calls', () => {
  it('creates, acts on and removes mounts', async () => {
    const m = { id: 'a1', state: 'queued' };
    const requests = serve(
      [201, { mount: m }],
      [200, { mount: m }],
      [200, { mount: m }],
      [200, { removed: 'a1', target: 't', kept: [], notes: [] }]
    );
    await mountsApi.createMount({
      did: 's:x',
      mode: 'stream',
      instance: 'demo'
    });
    await mountsApi.cancelMount('a1');
    await mountsApi.retryMount('a1');
    await mountsApi.removeMount('a1');
    expect(requests.map(r => `${r.method} ${path(r)}`)).toEqual([
      'POST /af-lab/mounts',
      'POST /af-lab/mounts/a1/cancel',
      'POST /af-lab/mounts/a1/retry',
      'DELETE /af-lab/mounts/a1'
    ]);
    expect(await requests[0].json()).toEqual({
      did: 's:x',
      mode: 'stream',
      instance: 'demo'
    });
  });

  it('reads every page of files and the fileset text', async () => {
    const file = (n: number) => ({ path: `${n}`, location: `/m/${n}` });
    const requests = serve(
      [200, { files: [file(1), file(2)], total: 3, offset: 0, limit: 5000 }],
      [200, { files: [file(3)], total: 3, offset: 2, limit: 5000 }],
      [200, '{"s:x": {"files": {}}}\n']
    );
    const files = await mountsApi.allMountFiles('a1', 'done');
    expect(files.map(f => f.location)).toEqual(['/m/1', '/m/2', '/m/3']);
    expect(await mountsApi.mountFileset('a1')).toBe('{"s:x": {"files": {}}}\n');
    expect(requests.map(path)).toEqual([
      '/af-lab/mounts/a1/files?offset=0&limit=5000&state=done',
      '/af-lab/mounts/a1/files?offset=2&limit=5000&state=done',
      '/af-lab/mounts/a1/fileset?format=json'
    ]);
  });

  it("turns the server's typed error into an AFLabRequestError", async () => {
    serve(
      [
        507,
        {
          error: {
            type: 'insufficient_storage',
            message: 'needs more',
            needed_bytes: 5
          }
        }
      ],
      [404, { error: { type: 'not_found', message: 'no mount x' } }]
    );
    const error = (await mountsApi
      .createMount({ did: 's:x' })
      .catch(e => e)) as AFLabRequestError;
    expect(error).toBeInstanceOf(AFLabRequestError);
    expect(error.status).toBe(507);
    expect(error.details.needed_bytes).toBe(5);
    const missing = (await mountsApi
      .mountFileset('x')
      .catch(e => e)) as AFLabRequestError;
    expect(missing.status).toBe(404);
    expect(missing.message).toBe('no mount x');
  });
});
