import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IDIDDetails } from './types';

/**
 * How much a watcher wants to know about a DID:
 * `meta` (size, file count, replicas of a file; cheap),
 * `auto` (plus the availability per RSE, unless the collection is big),
 * `full` (the availability of any collection, however big).
 */
export type DetailLevel = 'meta' | 'auto' | 'full';

const RANK: Record<DetailLevel, number> = { meta: 0, auto: 1, full: 2 };

/**
 * What is known about one DID.
 */
export interface IDetailsEntry {
  details: IDIDDetails | null;
  /**
   * The level `details` answers.
   */
  level: DetailLevel | null;
  loading: boolean;
  error: unknown;
  /**
   * The server is still counting replicas (a long poll is running).
   */
  counting: boolean;
}

export type DetailsFetcher = (
  instance: string,
  did: string,
  options: { availability: 'auto' | 'full' | 'skip'; wait: number }
) => Promise<IDIDDetails>;

/**
 * DID details for the rows on screen, fetched lazily and shared.
 *
 * Rows `watch` the DIDs they show; a fetch starts only after a row stayed
 * on screen briefly (fast scrolling costs nothing), at most `concurrency`
 * at a time. While a watched collection's availability is not `complete`,
 * the details are asked again with the server's `wait` long poll, so the
 * count appears the moment the server has it and nothing polls once it is
 * complete or nobody watches.
 */
export class DetailsStore implements IDisposable {
  constructor(fetch: DetailsFetcher, options: DetailsStore.IOptions = {}) {
    this._fetch = fetch;
    this._concurrency = options.concurrency ?? 4;
    this._delayMs = options.delayMs ?? 150;
    this._waitS = options.waitSeconds ?? 10;
    this._retryMs = options.pollErrorDelayMs ?? 5000;
    this._minPollMs = options.minPollIntervalMs ?? 1000;
  }

  /**
   * Emits the key (`instance|did`) of an entry that changed.
   */
  get changed(): ISignal<this, string> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  get(instance: string, did: string): IDetailsEntry | undefined {
    return this._entries.get(key(instance, did));
  }

  /**
   * Keep a DID's details current at `level` while the returned disposable
   * lives.
   */
  watch(instance: string, did: string, level: DetailLevel): IDisposable {
    const k = key(instance, did);
    const watcher = { level };
    let set = this._watchers.get(k);
    if (!set) {
      set = new Set();
      this._watchers.set(k, set);
    }
    set.add(watcher);
    const timer = window.setTimeout(
      () => this._want(instance, did),
      this._delayMs
    );
    return new DisposableDelegate(() => {
      window.clearTimeout(timer);
      const watchers = this._watchers.get(k);
      watchers?.delete(watcher);
      if (watchers && watchers.size === 0) {
        this._watchers.delete(k);
      }
    });
  }

  /**
   * Fetch again now (after an error, or on request).
   */
  refresh(instance: string, did: string): void {
    const entry = this._entries.get(key(instance, did));
    if (entry) {
      entry.error = null;
      entry.level = entry.details ? 'meta' : null;
    }
    this._want(instance, did, true);
  }

  /**
   * Forget everything (e.g. after logging in again).
   */
  clear(): void {
    this._entries.clear();
    this._queue = [];
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._queue = [];
    this._watchers.clear();
    Signal.clearData(this);
  }

  private _wanted(k: string): DetailLevel | null {
    const watchers = this._watchers.get(k);
    if (!watchers || watchers.size === 0) {
      return null;
    }
    let best: DetailLevel = 'meta';
    for (const w of watchers) {
      if (RANK[w.level] > RANK[best]) {
        best = w.level;
      }
    }
    return best;
  }

  private _want(instance: string, did: string, force = false): void {
    if (this._disposed) {
      return;
    }
    const k = key(instance, did);
    const level = this._wanted(k);
    if (level === null) {
      return;
    }
    const entry = this._entry(k);
    if (entry.loading || (entry.error && !force)) {
      return;
    }
    const satisfied =
      entry.level !== null &&
      RANK[entry.level] >= RANK[level] &&
      !needsPoll(entry.details, entry.level);
    if (satisfied && !force) {
      return;
    }
    if (!this._queue.some(q => q.k === k)) {
      this._queue.push({ k, instance, did });
    }
    this._pump();
  }

  private _pump(): void {
    while (this._running < this._concurrency && this._queue.length > 0) {
      const next = this._queue.shift()!;
      void this._load(next.k, next.instance, next.did);
    }
  }

  private async _load(k: string, instance: string, did: string) {
    const level = this._wanted(k);
    if (level === null) {
      return;
    }
    const entry = this._entry(k);
    // A long poll only when we already know the count is under way.
    const polling = needsPoll(entry.details, entry.level);
    const started = Date.now();
    entry.loading = true;
    entry.counting = polling;
    this._running++;
    this._changed.emit(k);
    let ok = false;
    try {
      const details = await this._fetch(instance, did, {
        availability:
          level === 'meta' ? 'skip' : level === 'full' ? 'full' : 'auto',
        wait: level === 'meta' ? 0 : polling ? this._waitS : 1.5
      });
      if (this._disposed) {
        return;
      }
      // A skip answer carries no availability: keep the one we have.
      if (level === 'meta' && entry.details?.availability) {
        details.availability = entry.details.availability;
      }
      entry.details = details;
      entry.level =
        entry.level && RANK[entry.level] > RANK[level] ? entry.level : level;
      entry.error = null;
      ok = true;
    } catch (error) {
      entry.error = error;
    } finally {
      this._running--;
      entry.loading = false;
      entry.counting = ok && needsPoll(entry.details, entry.level);
      if (!this._disposed) {
        this._changed.emit(k);
        if (ok && entry.counting) {
          // Poll on (long poll) while the count is incomplete and watched;
          // never faster than minPollIntervalMs, whatever the server does.
          const rest = Math.max(0, this._minPollMs - (Date.now() - started));
          window.setTimeout(() => this._want(instance, did), rest);
        } else if (ok) {
          this._want(instance, did);
        } else if (this._wanted(k) !== null) {
          // Polling failed: try again later, not in a tight loop.
          window.setTimeout(() => {
            if (entry.error && this._wanted(k) !== null) {
              entry.error = null;
              this._want(instance, did);
            }
          }, this._retryMs);
        }
        this._pump();
      }
    }
  }

  private _entry(k: string): IDetailsEntry {
    let entry = this._entries.get(k);
    if (!entry) {
      entry = {
        details: null,
        level: null,
        loading: false,
        error: null,
        counting: false
      };
      this._entries.set(k, entry);
    }
    return entry;
  }

  private _fetch: DetailsFetcher;
  private _concurrency: number;
  private _delayMs: number;
  private _waitS: number;
  private _retryMs: number;
  private _minPollMs: number;
  private _running = 0;
  private _disposed = false;
  private _queue: { k: string; instance: string; did: string }[] = [];
  private _entries = new Map<string, IDetailsEntry>();
  private _watchers = new Map<string, Set<{ level: DetailLevel }>>();
  private _changed = new Signal<this, string>(this);
}

export namespace DetailsStore {
  export interface IOptions {
    /**
     * Parallel requests. Default 4.
     */
    concurrency?: number;
    /**
     * How long a row must stay on screen before its details are fetched.
     * Default 150 ms.
     */
    delayMs?: number;
    /**
     * The server-side wait of a long poll. Default 10 s.
     */
    waitSeconds?: number;
    /**
     * After a failed poll, wait this long before the next. Default 5 s.
     */
    pollErrorDelayMs?: number;
    /**
     * Polls start at least this far apart, even if the server answers at
     * once. Default 1 s.
     */
    minPollIntervalMs?: number;
  }
}

export function key(instance: string, did: string): string {
  return `${instance}|${did}`;
}

/**
 * Whether the availability is being counted and a long poll will tell more.
 */
export function needsPoll(
  details: IDIDDetails | null,
  level: DetailLevel | null
): boolean {
  if (!details || level === null || level === 'meta') {
    return false;
  }
  const a = details.availability;
  if (!a || details.type === 'file') {
    return false;
  }
  return !a.complete && a.computed !== false;
}
