import { ServerConnection } from '@jupyterlab/services';

import {
  EventStream,
  IServerEvent,
  IStreamStatus,
  SSEParser
} from '../common/eventStream';

const encoder = new TextEncoder();
// jsdom has no global ReadableStream; the one of fetch's Response is what a
// browser hands the reader anyway.
const Stream = new Response('').body!.constructor as typeof ReadableStream;

describe('SSEParser', () => {
  it('parses data lines, skipping comments', () => {
    const parser = new SSEParser();
    const messages = parser.feed(
      ': connected\n\ndata: {"a": 1}\n\n: keepalive\n\ndata: {"b": 2}\n\n'
    );
    expect(messages.map(m => m.data)).toEqual(['{"a": 1}', '{"b": 2}']);
  });

  it('keeps a message split across chunks until it is complete', () => {
    const parser = new SSEParser();
    expect(parser.feed('da')).toEqual([]);
    expect(parser.feed('ta: {"x":')).toEqual([]);
    expect(parser.feed(' 1}\n')).toEqual([]);
    const messages = parser.feed('\n');
    expect(messages).toHaveLength(1);
    expect(JSON.parse(messages[0].data)).toEqual({ x: 1 });
  });

  it('accepts \\r\\n and \\r line ends, also \\r\\n split across chunks', () => {
    const parser = new SSEParser();
    expect(parser.feed('data: one\r')).toEqual([]);
    expect(parser.feed('\n\r\n').map(m => m.data)).toEqual(['one']);
    // A final '\r' may be half of '\r\n': it waits for the next chunk.
    expect(parser.feed('data: two\r\r')).toEqual([]);
    expect(parser.feed('data: three\n\n').map(m => m.data)).toEqual([
      'two',
      'three'
    ]);
  });

  it('joins multi-line data and reads event, id and retry', () => {
    const parser = new SSEParser();
    const [message] = parser.feed(
      'event: progress\nid: 7\nretry: 2500\ndata: line 1\ndata:line 2\n\n'
    );
    expect(message).toEqual({
      data: 'line 1\nline 2',
      event: 'progress',
      lastEventId: '7'
    });
    expect(parser.retryMs).toBe(2500);
    // The id carries over; the event name does not.
    const [next] = parser.feed('data: x\n\n');
    expect(next).toEqual({ data: 'x', event: '', lastEventId: '7' });
  });

  it('ignores blocks without data and forgets a partial message on reset', () => {
    const parser = new SSEParser();
    expect(parser.feed('event: nothing\n\n')).toEqual([]);
    parser.feed('data: half');
    parser.reset();
    expect(parser.feed('\n\n')).toEqual([]);
  });
});

/**
 * A fetch whose answers are scripted streams: each call takes the next one.
 */
function scriptedFetch(
  answers: (() => Response | Promise<Response>)[]
): jest.Mock {
  return jest.fn(async (request: Request) => {
    const next = answers.shift();
    if (!next) {
      // Never answers (like a server that keeps the stream open).
      return new Promise<Response>((_, reject) => {
        request.signal?.addEventListener('abort', () =>
          reject(new DOMException('aborted', 'AbortError'))
        );
      });
    }
    return next();
  });
}

/**
 * A streamed answer that sends `chunks` and then ends (or stays open).
 */
function streamed(chunks: string[], end = true): () => Response {
  return () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new Stream<Uint8Array>({
      start(c) {
        controller = c;
        for (const chunk of chunks) {
          c.enqueue(encoder.encode(chunk));
        }
        if (end) {
          c.close();
        }
      }
    });
    void controller;
    return new Response(body, {
      status: 200,
      headers: { 'Content-Type': 'text/event-stream' }
    });
  };
}

function event(id: number, topic: string, data: unknown): string {
  return `data: ${JSON.stringify({ id, topic, time: 1, data })}\n\n`;
}

function until(predicate: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (predicate()) {
        resolve();
      } else if (Date.now() - start > ms) {
        reject(new Error('timed out'));
      } else {
        setTimeout(check, 5);
      }
    };
    check();
  });
}

describe('EventStream', () => {
  function stream(
    fetch: jest.Mock,
    options: Partial<EventStream.IOptions> = {}
  ) {
    return new EventStream({
      topics: ['mounts', 'publish'],
      settings: ServerConnection.makeSettings({
        baseUrl: 'http://localhost:8888/',
        fetch: fetch as unknown as typeof window.fetch
      }),
      minDelayMs: 10,
      maxDelayMs: 40,
      random: () => 0.5,
      ...options
    });
  }

  it('reads the topics with an authenticated GET and emits each event', async () => {
    const fetch = scriptedFetch([
      streamed(
        [
          ': connected\n\n',
          event(1, 'mounts/a', { id: 'a', state: 'fetching' }).slice(0, 20),
          event(1, 'mounts/a', { id: 'a', state: 'fetching' }).slice(20),
          event(2, 'mounts/a', { id: 'a', state: 'ready' })
        ],
        false
      )
    ]);
    const s = stream(fetch);
    const events: IServerEvent[] = [];
    const opened = jest.fn();
    s.received.connect((_, e) => events.push(e));
    s.opened.connect(opened);
    s.start();
    await until(() => events.length === 2);
    expect(events.map(e => (e.data as any).state)).toEqual([
      'fetching',
      'ready'
    ]);
    expect(events[0].topic).toBe('mounts/a');
    expect(opened).toHaveBeenCalledTimes(1);
    expect(s.status.state).toBe('open');
    const request: Request = fetch.mock.calls[0][0];
    expect(request.method).toBe('GET');
    // (ServerConnection adds a cache buster for `cache: 'no-store'`.)
    expect(request.url).toMatch(
      /^http:\/\/localhost:8888\/af-lab\/events\?topic=mounts&topic=publish(&\d+)?$/
    );
    expect(request.headers.get('Accept')).toBe('text/event-stream');
    s.dispose();
    expect(s.status.state).toBe('closed');
  });

  it('reconnects with backoff when the stream ends or fails, and reports it', async () => {
    const fetch = scriptedFetch([
      streamed([event(1, 'mounts/a', { id: 'a' })]),
      async () => new Response('gone', { status: 503 }),
      streamed([event(2, 'mounts/b', { id: 'b' })], false)
    ]);
    const s = stream(fetch);
    const statuses: IStreamStatus[] = [];
    const events: IServerEvent[] = [];
    const opened = jest.fn();
    s.statusChanged.connect((_, st) => statuses.push({ ...st }));
    s.received.connect((_, e) => events.push(e));
    s.opened.connect(opened);
    s.start();
    await until(() => events.length === 2);
    expect(fetch).toHaveBeenCalledTimes(3);
    // Opened twice: each time, listeners re-read what they may have missed.
    expect(opened).toHaveBeenCalledTimes(2);
    const retrying = statuses.filter(st => st.state === 'retrying');
    expect(retrying.map(st => st.failures)).toEqual([1, 2]);
    expect(retrying[0].error).toBe('the server closed the live stream');
    expect(retrying[1].error).toContain('HTTP 503');
    expect(retrying.every(st => typeof st.retryAt === 'number')).toBe(true);
    expect(s.status.state).toBe('open');
    s.dispose();
  });

  it('drops a silent connection and connects again', async () => {
    const fetch = scriptedFetch([
      streamed([': connected\n\n'], false),
      streamed([event(1, 'mounts/a', { id: 'a' })], false)
    ]);
    const s = stream(fetch, { silenceMs: 30 });
    const events: IServerEvent[] = [];
    const statuses: IStreamStatus[] = [];
    s.received.connect((_, e) => events.push(e));
    s.statusChanged.connect((_, st) => statuses.push({ ...st }));
    s.start();
    await until(() => events.length === 1);
    expect(statuses.find(st => st.state === 'retrying')?.error).toBe(
      'the live stream went silent'
    );
    s.dispose();
  });

  it('ignores events that are not JSON and stops on stop()', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    const fetch = scriptedFetch([
      streamed(['data: not json\n\n', event(1, 'mounts/a', {})], false)
    ]);
    const s = stream(fetch);
    const events: IServerEvent[] = [];
    s.received.connect((_, e) => events.push(e));
    s.start();
    await until(() => events.length === 1);
    expect(warn).toHaveBeenCalled();
    s.stop();
    expect(s.status.state).toBe('closed');
    await new Promise(r => setTimeout(r, 50));
    expect(fetch).toHaveBeenCalledTimes(1);
    warn.mockRestore();
    s.dispose();
  });
});
