import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  EventStream,
  IServerEvent,
  IStreamStatus
} from '../common/eventStream';
import { FallbackPoll } from '../common/fallbackPoll';
import { OwnActions } from '../common/notify';
import * as defaultApi from './api';
import {
  ACTIVE_STATES,
  ICacheUsage,
  IMount,
  IMountRemoved,
  IMountRequest,
  IUnmountResult
} from './types';

/**
 * The REST calls the model uses (replaced in tests).
 */
export type MountsApi = Pick<
  typeof defaultApi,
  | 'listMounts'
  | 'createMount'
  | 'cancelMount'
  | 'retryMount'
  | 'removeMount'
  | 'cacheUsage'
>;

/**
 * The subset of {@link EventStream} the model needs (replaced in tests).
 */
export interface IMountEventSource extends IDisposable {
  readonly received: ISignal<any, IServerEvent<unknown>>;
  readonly opened: ISignal<any, void>;
  readonly statusChanged: ISignal<any, IStreamStatus>;
  readonly status: IStreamStatus;
  start(): void;
  stop(): void;
  reconnectNow(): void;
}

/**
 * The user's mounts, kept current by the server's `mounts` event stream.
 *
 * The list is read once (`GET /af-lab/mounts`) and again after every
 * reconnect of the stream (events missed while disconnected are never
 * lost); in between, each `mounts/<id>` event replaces its mount. While the
 * stream is down and a job runs, the shared {@link FallbackPoll} re-reads
 * the list every few seconds so progress never stalls on screen.
 */
export class MountsModel implements IDisposable {
  /**
   * The mounts this browser session created or retried (their toasts).
   */
  readonly own = new OwnActions();

  constructor(options: MountsModel.IOptions = {}) {
    this._api = options.api ?? defaultApi;
    // A stream given to us is shared (other sections listen too): not ours
    // to dispose.
    this._ownsEvents = !options.events;
    this._events = options.events ?? new EventStream({ topics: ['mounts'] });
    this._ownsFallback = !options.fallback;
    this._fallback =
      options.fallback ?? new FallbackPoll({ stream: this._events });
    this._polled = this._fallback.add({
      wanted: () =>
        this._started && !this._disposed && this.mounts.some(isActive),
      refresh: async () => {
        await this.refresh();
        if (this._error) {
          throw this._error; // the fallback backs off
        }
      }
    });
    this._events.received.connect(this._onEvent, this);
    this._events.opened.connect(this._onOpened, this);
    this._events.statusChanged.connect(this._onStreamStatus, this);
  }

  /**
   * Any change: the list, a mount, the cache, loading or connection state.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Mounts, newest first.
   */
  get mounts(): readonly IMount[] {
    if (!this._sorted) {
      this._sorted = [...this._mounts.values()].sort(
        (a, b) => b.created - a.created || a.id.localeCompare(b.id)
      );
    }
    return this._sorted;
  }

  get cache(): ICacheUsage | null {
    return this._cache;
  }

  /**
   * Whether the list has been read at least once.
   */
  get loaded(): boolean {
    return this._loaded;
  }

  get loading(): boolean {
    return this._loading;
  }

  /**
   * The error of the last list read (null when it worked).
   */
  get error(): unknown {
    return this._error;
  }

  get connection(): IStreamStatus {
    return this._events.status;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * Read the list and connect the live stream (idempotent).
   */
  start(): void {
    if (this._started || this._disposed) {
      return;
    }
    this._started = true;
    this._events.start();
    void this.refresh();
  }

  /**
   * Read the list and the cache usage again.
   */
  refresh(): Promise<void> {
    if (this._refreshing) {
      return this._refreshing;
    }
    this._loading = true;
    this._emit();
    const askedAt = this._changes;
    const request = this._api
      .listMounts()
      .then(({ mounts, cache }) => {
        if (this._disposed) {
          return;
        }
        const next = new Map<string, IMount>();
        for (const mount of mounts) {
          // An event may have brought a newer state while the list was read.
          const known = this._mounts.get(mount.id);
          if (!known && (this._changedAt.get(mount.id) ?? 0) > askedAt) {
            continue; // unmounted while the list was read
          }
          next.set(
            mount.id,
            known && known.updated > mount.updated ? known : mount
          );
        }
        // A mount created (or pushed) while the list was read is not in it yet.
        for (const [id, known] of this._mounts) {
          if (!next.has(id) && (this._changedAt.get(id) ?? 0) > askedAt) {
            next.set(id, known);
          }
        }
        this._mounts = next;
        this._sorted = null;
        this._cache = cache;
        this._error = null;
        this._loaded = true;
      })
      .catch(error => {
        this._error = error;
      })
      .finally(() => {
        this._loading = false;
        this._refreshing = null;
        this._emit();
      });
    this._refreshing = request;
    return request;
  }

  /**
   * The mounts of a DID (optionally of one instance), newest first.
   */
  forDid(did: string, instance?: string): IMount[] {
    return this.mounts.filter(
      m => m.did === did && (!instance || m.instance === instance)
    );
  }

  get(id: string): IMount | undefined {
    return this._mounts.get(id);
  }

  /**
   * Mount a DID; the mount is in the list as soon as this resolves.
   *
   * @throws {AFLabRequestError} with the server's typed error
   */
  async create(request: IMountRequest): Promise<IMount> {
    this.start();
    const key = `${request.instance ?? ''}|${request.did}|${request.mode ?? 'cache'}`;
    this._pending.add(key);
    this._emit();
    try {
      const created = await this._api.createMount(request);
      this.own.add(created?.id);
      const mount = this._merge(created);
      this._refreshCacheSoon();
      return mount;
    } finally {
      this._pending.delete(key);
      this._emit();
    }
  }

  /**
   * Whether a create request for this DID (and mode) is in flight.
   */
  isCreating(did: string, instance?: string, mode?: string): boolean {
    for (const key of this._pending) {
      const [i, d, m] = key.split('|');
      if (
        d === did &&
        (!instance || !i || i === instance) &&
        (!mode || m === mode)
      ) {
        return true;
      }
    }
    return false;
  }

  async cancel(id: string): Promise<IMount> {
    return this._merge(await this._api.cancelMount(id));
  }

  async retry(id: string): Promise<IMount> {
    this.own.add(id);
    return this._merge(await this._api.retryMount(id));
  }

  async remove(id: string): Promise<IUnmountResult> {
    const result = await this._api.removeMount(id);
    this._changedAt.set(id, ++this._changes);
    if (this._mounts.delete(id)) {
      this._sorted = null;
    }
    this._refreshCacheSoon();
    this._emit();
    return result;
  }

  /**
   * Reconnect the live stream now (when it is waiting to retry).
   */
  reconnect(): void {
    this._events.reconnectNow();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._polled.dispose();
    if (this._ownsFallback) {
      this._fallback.dispose();
    }
    if (this._cacheTimer) {
      window.clearTimeout(this._cacheTimer);
    }
    if (this._ownsEvents) {
      this._events.dispose();
    } else {
      Signal.disconnectReceiver(this);
    }
    Signal.clearData(this);
  }

  private _onEvent(_: unknown, event: IServerEvent<unknown>): void {
    if (!event.topic.startsWith('mounts/')) {
      return;
    }
    const data = event.data as IMount | IMountRemoved | null;
    if (!data || typeof data !== 'object' || typeof data.id !== 'string') {
      return;
    }
    if (data.state === 'removed') {
      this._changedAt.set(data.id, ++this._changes);
      if (this._mounts.delete(data.id)) {
        this._sorted = null;
        this._refreshCacheSoon();
        this._emit();
      }
      return;
    }
    const mount = data as IMount;
    const before = this._mounts.get(mount.id);
    if (this._merge(mount) !== mount) {
      return; // an older event overtaken by a newer answer
    }
    if (before?.state !== mount.state && !isActive(mount)) {
      this._refreshCacheSoon();
    }
  }

  private _onOpened(): void {
    // Catch up on whatever happened while disconnected.
    void this.refresh();
  }

  private _onStreamStatus(): void {
    this._emit();
  }

  /**
   * Keep whichever state of a mount is newer: a small mount can finish, and
   * its events arrive, before the answer to the request that started it.
   */
  private _merge(mount: IMount): IMount {
    const known = this._mounts.get(mount.id);
    if (known && known.updated > mount.updated) {
      return known;
    }
    this._upsert(mount);
    return mount;
  }

  private _upsert(mount: IMount): void {
    this._mounts.set(mount.id, mount);
    this._changedAt.set(mount.id, ++this._changes);
    this._sorted = null;
    this._emit();
  }

  private _refreshCacheSoon(): void {
    if (this._cacheTimer || this._disposed) {
      return;
    }
    this._cacheTimer = window.setTimeout(() => {
      this._cacheTimer = 0;
      this._api
        .cacheUsage()
        .then(cache => {
          this._cache = cache;
          this._emit();
        })
        .catch(() => undefined);
    }, 300);
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _api: MountsApi;
  private _events: IMountEventSource;
  private _ownsEvents: boolean;
  private _fallback: FallbackPoll;
  private _ownsFallback: boolean;
  private _polled: IDisposable;
  private _mounts = new Map<string, IMount>();
  private _sorted: IMount[] | null = null;
  private _cache: ICacheUsage | null = null;
  private _loaded = false;
  private _loading = false;
  private _error: unknown = null;
  private _started = false;
  private _disposed = false;
  private _refreshing: Promise<void> | null = null;
  // Local change counter: which mounts changed after a list request was sent.
  private _changes = 0;
  private _changedAt = new Map<string, number>();
  private _pending = new Set<string>();
  private _cacheTimer = 0;
  private _changed = new Signal<this, void>(this);
}

export namespace MountsModel {
  export interface IOptions {
    api?: MountsApi;
    events?: IMountEventSource;
    /**
     * The shared polling fallback (default: one of its own on `events`).
     */
    fallback?: FallbackPoll;
  }
}

/**
 * Whether a background job of this mount runs.
 */
export function isActive(mount: IMount): boolean {
  return ACTIVE_STATES.includes(mount.state);
}
