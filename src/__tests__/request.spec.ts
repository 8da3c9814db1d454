import { ServerConnection } from '@jupyterlab/services';

import {
  AFLabRequestError,
  describeError,
  endpointUrl,
  requestAPI
} from '../request';

const BASE = 'http://localhost:8888/a@b/';

function settingsWith(
  fetch: (request: Request) => Promise<Response>
): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl: BASE,
    fetch: fetch as unknown as typeof window.fetch
  });
}

function answer(
  status: number,
  body: unknown,
  headers: Record<string, string> = { 'Content-Type': 'application/json' }
): jest.Mock {
  const text =
    body === undefined
      ? null
      : typeof body === 'string'
        ? body
        : JSON.stringify(body);
  return jest.fn(async () => new Response(text, { status, headers }));
}

async function caught(promise: Promise<unknown>): Promise<AFLabRequestError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(AFLabRequestError);
    return error as AFLabRequestError;
  }
  throw new Error('the request did not fail');
}

describe('endpointUrl', () => {
  it('joins the base URL, the af-lab namespace and the endpoint', () => {
    const settings = ServerConnection.makeSettings({ baseUrl: BASE });
    expect(endpointUrl('status', settings)).toBe(
      'http://localhost:8888/a@b/af-lab/status'
    );
    expect(endpointUrl('rucio/dids', settings)).toBe(
      'http://localhost:8888/a@b/af-lab/rucio/dids'
    );
  });
});

describe('requestAPI', () => {
  it('requests <baseUrl>/af-lab/<endpoint> and returns the parsed JSON', async () => {
    const fetch = answer(200, { services: [] });
    const data = await requestAPI<{ services: unknown[] }>(
      'status',
      {},
      settingsWith(fetch)
    );
    expect(data).toEqual({ services: [] });
    expect(fetch).toHaveBeenCalledTimes(1);
    const request: Request = fetch.mock.calls[0][0];
    expect(request.method).toBe('GET');
    expect(new URL(request.url).pathname).toBe('/a@b/af-lab/status');
  });

  it('passes the method and the body on', async () => {
    const fetch = answer(200, { ok: true });
    await requestAPI(
      'mounts',
      { method: 'POST', body: JSON.stringify({ name: 'x' }) },
      settingsWith(fetch)
    );
    const request: Request = fetch.mock.calls[0][0];
    expect(request.method).toBe('POST');
    expect(await request.text()).toBe('{"name":"x"}');
  });

  it('returns undefined for an empty answer', async () => {
    const fetch = answer(204, undefined, {});
    await expect(
      requestAPI('thing', { method: 'DELETE' }, settingsWith(fetch))
    ).resolves.toBeUndefined();
  });

  it('throws the server error body as a typed error', async () => {
    const fetch = answer(503, {
      error: {
        type: 'unavailable',
        message: 'Rucio at https://rucio.example does not answer.',
        service: 'rucio:demo'
      }
    });
    const error = await caught(requestAPI('status', {}, settingsWith(fetch)));
    expect(error.status).toBe(503);
    expect(error.type).toBe('unavailable');
    expect(error.message).toBe(
      'Rucio at https://rucio.example does not answer.'
    );
    expect(error.details).toEqual({ service: 'rucio:demo' });
    expect(error.url).toContain('/a@b/af-lab/status');
    expect(describeError(error)).toBe(error.message);
  });

  it('keeps the HTTP status when the error body has no message', async () => {
    const fetch = answer(409, { error: { type: 'conflict' } });
    const error = await caught(requestAPI('x', {}, settingsWith(fetch)));
    expect(error.status).toBe(409);
    expect(error.type).toBe('conflict');
    expect(error.message).toContain('HTTP 409');
  });

  it("uses jupyter_server's own error message", async () => {
    const fetch = answer(500, {
      message: 'Unhandled error',
      reason: null,
      traceback: '...'
    });
    const error = await caught(requestAPI('x', {}, settingsWith(fetch)));
    expect(error.status).toBe(500);
    expect(error.type).toBe('http');
    expect(error.message).toContain('Unhandled error');
    expect(error.message).toContain('HTTP 500');
  });

  it('explains a 404 without a JSON body', async () => {
    const fetch = answer(404, '<html>404: Not Found</html>', {
      'Content-Type': 'text/html'
    });
    const error = await caught(requestAPI('status', {}, settingsWith(fetch)));
    expect(error.status).toBe(404);
    expect(error.type).toBe('http');
    expect(error.message).toContain('/a@b/af-lab/status');
    expect(error.message).toContain('af_lab server extension');
    expect(error.body).toBe('<html>404: Not Found</html>');
  });

  it('explains a 403 (expired session)', async () => {
    const fetch = answer(403, { message: 'Forbidden', reason: null });
    const error = await caught(requestAPI('status', {}, settingsWith(fetch)));
    expect(error.status).toBe(403);
    expect(error.message).toContain('reload the page');
  });

  it('reports an unreachable server as a network error', async () => {
    const fetch = jest.fn(async () => {
      throw new TypeError('Failed to fetch');
    });
    const error = await caught(requestAPI('status', {}, settingsWith(fetch)));
    expect(error.status).toBe(0);
    expect(error.type).toBe('network');
    expect(error.message).toContain('Failed to fetch');
  });

  it('rejects a successful answer that is not JSON', async () => {
    const fetch = answer(200, 'not json', { 'Content-Type': 'text/plain' });
    const error = await caught(requestAPI('status', {}, settingsWith(fetch)));
    expect(error.status).toBe(200);
    expect(error.type).toBe('invalid_response');
  });
});

describe('describeError', () => {
  it('describes anything that was thrown', () => {
    expect(describeError(new Error('boom'))).toBe('boom');
    expect(describeError('plain')).toBe('plain');
  });
});
