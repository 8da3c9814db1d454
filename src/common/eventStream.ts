import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { endpointUrl } from '../request';

/**
 * One message of `GET /af-lab/events`: `{"id", "topic", "time", "data"}`.
 */
export interface IServerEvent<T = unknown> {
  id: number;
  topic: string;
  time: number;
  data: T;
}

/**
 * One Server-Sent Events message as the wire format defines it.
 */
export interface ISSEMessage {
  /**
   * The `data:` lines joined with newlines.
   */
  data: string;
  /**
   * The `event:` field ('' when absent: a plain "message").
   */
  event: string;
  /**
   * The last `id:` field seen (it carries over between messages).
   */
  lastEventId: string;
}

/**
 * An incremental parser of the `text/event-stream` format (WHATWG HTML §9.2):
 * feed it decoded text in chunks of any size; it returns the messages that
 * are complete. Comment lines (`: keepalive`) are skipped; `\n`, `\r\n` and
 * `\r` all end a line, also when a chunk ends between `\r` and `\n`.
 */
export class SSEParser {
  /**
   * The `retry:` value last announced by the server, in ms (null if none).
   */
  retryMs: number | null = null;

  feed(chunk: string): ISSEMessage[] {
    this._buffer += chunk;
    const messages: ISSEMessage[] = [];
    let start = 0;
    const buffer = this._buffer;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) {
        continue;
      }
      if (c === 13 && i === buffer.length - 1) {
        // A '\r' at the end of the chunk may be the first half of '\r\n'.
        break;
      }
      this._line(buffer.slice(start, i), messages);
      if (c === 13 && buffer.charCodeAt(i + 1) === 10) {
        i++;
      }
      start = i + 1;
    }
    this._buffer = buffer.slice(start);
    return messages;
  }

  /**
   * Forget a partial message (after the connection was lost).
   */
  reset(): void {
    this._buffer = '';
    this._data = [];
    this._event = '';
  }

  private _line(line: string, out: ISSEMessage[]): void {
    if (line === '') {
      if (this._data.length > 0) {
        out.push({
          data: this._data.join('\n'),
          event: this._event,
          lastEventId: this._lastId
        });
      }
      this._data = [];
      this._event = '';
      return;
    }
    if (line.startsWith(':')) {
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    switch (field) {
      case 'data':
        this._data.push(value);
        break;
      case 'event':
        this._event = value;
        break;
      case 'id':
        if (!value.includes('\0')) {
          this._lastId = value;
        }
        break;
      case 'retry':
        if (/^\d+$/.test(value)) {
          this.retryMs = parseInt(value, 10);
        }
        break;
      default:
        break;
    }
  }

  private _buffer = '';
  private _data: string[] = [];
  private _event = '';
  private _lastId = '';
}

/**
 * Where the live connection stands, for the UI.
 */
export interface IStreamStatus {
  /**
   * `idle` before start, `connecting` until the server answers, `open` while
   * events can flow, `retrying` while waiting to reconnect, `closed` after
   * stop or dispose.
   */
  state: 'idle' | 'connecting' | 'open' | 'retrying' | 'closed';
  /**
   * Connection attempts that failed in a row.
   */
  failures: number;
  /**
   * When the next attempt starts (ms since the epoch), while retrying.
   */
  retryAt: number | null;
  /**
   * Why the last connection ended, written for the user.
   */
  error: string | null;
}

/**
 * The live event stream of the af_lab server (`GET /af-lab/events?topic=…`).
 *
 * It is read with an authenticated `fetch` (ServerConnection, so the Jupyter
 * token and XSRF handling apply like on every other route) and a
 * ReadableStream reader, not with EventSource. A lost connection is retried
 * with exponential backoff (1 s, 2 s, 4 s … 30 s, with jitter); a connection
 * that stays silent longer than the server's keepalive allows is treated as
 * lost. After every (re)connect {@link opened} fires, so listeners can
 * re-read the state they may have missed.
 */
export class EventStream<T = unknown> implements IDisposable {
  constructor(options: EventStream.IOptions) {
    this._topics = [...options.topics];
    this._settings = options.settings;
    this._minDelay = options.minDelayMs ?? 1000;
    this._maxDelay = options.maxDelayMs ?? 30000;
    this._silenceMs = options.silenceMs ?? 45000;
    this._random = options.random ?? Math.random;
  }

  /**
   * Every event of the subscribed topics.
   */
  get received(): ISignal<this, IServerEvent<T>> {
    return this._received;
  }

  /**
   * The server accepted a (re)connection: events from now on are live.
   */
  get opened(): ISignal<this, void> {
    return this._opened;
  }

  get statusChanged(): ISignal<this, IStreamStatus> {
    return this._statusChanged;
  }

  get status(): IStreamStatus {
    return this._status;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * The URL the stream reads.
   */
  get url(): string {
    const settings = this._settings ?? ServerConnection.makeSettings();
    const query = this._topics
      .map(topic => `topic=${encodeURIComponent(topic)}`)
      .join('&');
    return endpointUrl('events', settings) + (query ? `?${query}` : '');
  }

  /**
   * Connect (no-op while connected or waiting to reconnect).
   */
  start(): void {
    if (this._disposed || this._running) {
      return;
    }
    this._running = true;
    void this._connect();
  }

  /**
   * Disconnect and stop reconnecting (until the next start).
   */
  stop(): void {
    this._running = false;
    this._clearTimers();
    this._abort?.abort();
    this._abort = null;
    this._setStatus({ state: 'closed', retryAt: null });
  }

  /**
   * Reconnect at once if waiting to retry (e.g. the user asked for it).
   */
  reconnectNow(): void {
    if (this._running && this._status.state === 'retrying') {
      this._clearTimers();
      void this._connect();
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this.stop();
    this._disposed = true;
    Signal.clearData(this);
  }

  private async _connect(): Promise<void> {
    if (!this._running) {
      return;
    }
    const abort = new AbortController();
    this._abort = abort;
    this._parser.reset();
    this._setStatus({ state: 'connecting', retryAt: null });
    const settings = this._settings ?? ServerConnection.makeSettings();
    let openedAt = 0;
    let error: string | null = null;
    try {
      const response = await ServerConnection.makeRequest(
        this.url,
        {
          method: 'GET',
          headers: { Accept: 'text/event-stream' },
          cache: 'no-store',
          signal: abort.signal
        },
        settings
      );
      if (!response.ok) {
        throw new Error(
          response.status === 403 || response.status === 401
            ? `the server refused the live stream (HTTP ${response.status}); your session may have expired`
            : `the live stream answered HTTP ${response.status}`
        );
      }
      if (!response.body) {
        throw new Error('this browser cannot read a streamed answer');
      }
      openedAt = Date.now();
      this._setStatus({ state: 'open', error: null, retryAt: null });
      this._opened.emit();
      await this._read(response.body.getReader(), abort);
      if (abort.signal.aborted && !this._silent) {
        return; // stopped on purpose
      }
      error = this._silent
        ? 'the live stream went silent'
        : 'the server closed the live stream';
    } catch (reason) {
      if (abort.signal.aborted && !this._silent) {
        return; // stopped on purpose
      }
      error = this._silent
        ? 'the live stream went silent'
        : reason instanceof Error
          ? reason.message
          : String(reason);
    } finally {
      this._silent = false;
      if (this._watchdog) {
        window.clearTimeout(this._watchdog);
        this._watchdog = 0;
      }
    }
    if (!this._running || this._abort !== abort) {
      return;
    }
    this._abort = null;
    // A connection that lived a while resets the backoff.
    const failures =
      openedAt && Date.now() - openedAt > 10000 ? 1 : this._status.failures + 1;
    const delay = this._delay(failures);
    this._setStatus({
      state: 'retrying',
      failures,
      error,
      retryAt: Date.now() + delay
    });
    this._retryTimer = window.setTimeout(() => {
      this._retryTimer = 0;
      void this._connect();
    }, delay);
  }

  private async _read(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    abort: AbortController
  ): Promise<void> {
    const decoder = new TextDecoder();
    const onAbort = () => {
      void reader.cancel().catch(() => undefined);
    };
    abort.signal.addEventListener('abort', onAbort);
    try {
      this._armWatchdog(abort);
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          break;
        }
        this._armWatchdog(abort);
        const text = decoder.decode(value, { stream: true });
        for (const message of this._parser.feed(text)) {
          this._dispatch(message);
        }
      }
    } finally {
      abort.signal.removeEventListener('abort', onAbort);
    }
  }

  private _dispatch(message: ISSEMessage): void {
    let event: IServerEvent<T>;
    try {
      event = JSON.parse(message.data);
    } catch {
      console.warn('af-lab: ignoring an event that is not JSON', message.data);
      return;
    }
    if (
      typeof event !== 'object' ||
      event === null ||
      typeof event.topic !== 'string'
    ) {
      return;
    }
    this._received.emit(event);
  }

  private _armWatchdog(abort: AbortController): void {
    if (this._watchdog) {
      window.clearTimeout(this._watchdog);
    }
    this._watchdog = window.setTimeout(() => {
      this._watchdog = 0;
      this._silent = true;
      abort.abort();
    }, this._silenceMs);
  }

  private _delay(failures: number): number {
    const base = Math.min(
      this._maxDelay,
      this._minDelay * 2 ** Math.max(0, failures - 1)
    );
    return Math.round(base * (0.75 + 0.5 * this._random()));
  }

  private _clearTimers(): void {
    if (this._retryTimer) {
      window.clearTimeout(this._retryTimer);
      this._retryTimer = 0;
    }
    if (this._watchdog) {
      window.clearTimeout(this._watchdog);
      this._watchdog = 0;
    }
  }

  private _setStatus(change: Partial<IStreamStatus>): void {
    this._status = { ...this._status, ...change };
    this._statusChanged.emit(this._status);
  }

  private _topics: string[];
  private _settings: ServerConnection.ISettings | undefined;
  private _minDelay: number;
  private _maxDelay: number;
  private _silenceMs: number;
  private _random: () => number;
  private _parser = new SSEParser();
  private _running = false;
  private _disposed = false;
  private _silent = false;
  private _abort: AbortController | null = null;
  private _retryTimer = 0;
  private _watchdog = 0;
  private _status: IStreamStatus = {
    state: 'idle',
    failures: 0,
    retryAt: null,
    error: null
  };
  private _received = new Signal<this, IServerEvent<T>>(this);
  private _opened = new Signal<this, void>(this);
  private _statusChanged = new Signal<this, IStreamStatus>(this);
}

export namespace EventStream {
  export interface IOptions {
    /**
     * Topic prefixes, e.g. `['mounts']`.
     */
    topics: string[];
    /**
     * Server connection settings (default: the page's).
     */
    settings?: ServerConnection.ISettings;
    /**
     * First reconnect delay. Default 1000 ms.
     */
    minDelayMs?: number;
    /**
     * Longest reconnect delay. Default 30000 ms.
     */
    maxDelayMs?: number;
    /**
     * A connection silent this long (the server sends a keepalive every
     * 15 s) is dropped and reconnected. Default 45000 ms.
     */
    silenceMs?: number;
    /**
     * Jitter source (tests pass a constant). Default Math.random.
     */
    random?: () => number;
  }
}
