import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { FallbackPoll } from '../common/fallbackPoll';
import { OwnActions } from '../common/notify';
import * as api from './api';
import {
  EventStream,
  IServerEvent,
  IStreamStatus
} from '../common/eventStream';
import { isActive, isEnded } from './format';
import { IPublishJob } from './types';

/**
 * The user's publish jobs, kept current by the `publish` event topic.
 *
 * The list is read with `GET publish/jobs` at start, after every reconnect of
 * the event stream (events sent during a gap are lost), and by the shared
 * {@link FallbackPoll} while the stream is down and a job is still active.
 */
export class PublishJobsModel implements IDisposable {
  /**
   * The jobs this browser session started or retried (their toasts).
   */
  readonly own = new OwnActions();

  constructor(options: PublishJobsModel.IOptions = {}) {
    this._stream = options.stream ?? null;
    this._ownsFallback = !options.fallback;
    this._fallback =
      options.fallback ??
      new FallbackPoll({ stream: this._stream, intervalMs: options.pollMs });
    if (this._stream) {
      this._stream.received.connect(this._onEvent, this);
      this._stream.statusChanged.connect(this._onStatus, this);
      this._stream.opened.connect(this._onOpened, this);
    }
  }

  /**
   * Emitted after any change (jobs, loading, errors, stream state).
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Emitted when a job seen running in this session ends.
   */
  get jobEnded(): ISignal<this, IPublishJob> {
    return this._jobEnded;
  }

  /**
   * Jobs, newest first.
   */
  get jobs(): IPublishJob[] {
    return this._jobs;
  }

  /**
   * Whether the first listing has arrived.
   */
  get loaded(): boolean {
    return this._loaded;
  }

  get loading(): boolean {
    return this._loading !== null;
  }

  /**
   * The error of the last listing; null when it succeeded.
   */
  get error(): unknown {
    return this._error;
  }

  /**
   * The live-update stream's state; null without a stream.
   */
  get streamStatus(): IStreamStatus | null {
    return this._stream?.status ?? null;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * Start: list the jobs and open the event stream.
   */
  start(): void {
    void this.refresh();
    this._stream?.start();
    this._polled ??= this._fallback.add({
      wanted: () => !this._disposed && this._jobs.some(isActive),
      refresh: async () => {
        await this.refresh();
        if (this._error) {
          throw this._error; // the fallback backs off
        }
      }
    });
  }

  /**
   * Reconnect the event stream at once (when waiting to retry).
   */
  reconnect(): void {
    this._stream?.reconnectNow();
  }

  /**
   * Read the full list again.
   */
  refresh(): Promise<void> {
    if (this._loading) {
      // Read again once this one is done: it may predate what the caller
      // wants to see (e.g. a reconnect).
      this._again = true;
      return this._loading;
    }
    const started = Date.now();
    this._loading = api
      .fetchJobs()
      .then(jobs => {
        this._error = null;
        this._loaded = true;
        this._merge(jobs, started);
      })
      .catch(error => {
        this._error = error;
      })
      .finally(() => {
        this._loading = null;
        this._emit();
        if (this._again && !this._disposed) {
          this._again = false;
          void this.refresh();
        }
      });
    this._emit();
    return this._loading;
  }

  /**
   * Insert or update a job (newer `updated` wins).
   */
  upsert(job: IPublishJob): void {
    if (this._disposed || !job || typeof job.id !== 'string') {
      return;
    }
    const index = this._jobs.findIndex(j => j.id === job.id);
    if (index >= 0) {
      const old = this._jobs[index];
      if ((old.updated ?? 0) > (job.updated ?? 0)) {
        return;
      }
      this._noteTransition(old, job);
      this._jobs = [...this._jobs];
      this._jobs[index] = job;
    } else {
      if (isActive(job)) {
        this._watched.add(job.id);
      }
      this._jobs = sortJobs([job, ...this._jobs]);
    }
    this._removed.delete(job.id);
    this._emit();
  }

  get(id: string): IPublishJob | undefined {
    return this._jobs.find(j => j.id === id);
  }

  /**
   * Cancel a queued or running job.
   */
  async cancel(id: string): Promise<void> {
    const job = await api.cancelJob(id);
    if (job && typeof job === 'object' && 'id' in job) {
      this.upsert(job);
    }
  }

  /**
   * Resume an interrupted job, or run a failed/cancelled one again (as a new
   * job, which is returned).
   */
  async retry(id: string): Promise<IPublishJob> {
    const job = await api.retryJob(id);
    this.own.add(job?.id);
    this.upsert(job);
    return job;
  }

  /**
   * Forget an ended job (the published data stays).
   */
  async dismiss(id: string): Promise<void> {
    await api.deleteJob(id);
    this._removed.add(id);
    this._jobs = this._jobs.filter(j => j.id !== id);
    this._emit();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._polled?.dispose();
    if (this._ownsFallback) {
      this._fallback.dispose();
    }
    if (this._stream) {
      this._stream.received.disconnect(this._onEvent, this);
      this._stream.statusChanged.disconnect(this._onStatus, this);
      this._stream.opened.disconnect(this._onOpened, this);
    }
    Signal.clearData(this);
  }

  private _merge(jobs: IPublishJob[], started: number): void {
    const byId = new Map(this._jobs.map(j => [j.id, j]));
    const next: IPublishJob[] = [];
    for (const job of jobs) {
      if (this._removed.has(job.id)) {
        continue;
      }
      const old = byId.get(job.id);
      if (old && (old.updated ?? 0) > (job.updated ?? 0)) {
        next.push(old); // an event was newer than this listing
      } else {
        if (old) {
          this._noteTransition(old, job);
        }
        next.push(job);
      }
      byId.delete(job.id);
    }
    // Jobs created after the listing was requested (pushed by events).
    for (const old of byId.values()) {
      if ((old.created ?? 0) * 1000 >= started - 1000) {
        next.push(old);
      }
    }
    for (const job of next) {
      if (isActive(job)) {
        this._watched.add(job.id);
      }
    }
    this._jobs = sortJobs(next);
  }

  private _noteTransition(old: IPublishJob, job: IPublishJob): void {
    if (isActive(job)) {
      this._watched.add(job.id);
    }
    if (
      this._watched.has(job.id) &&
      (isEnded(job) || job.state === 'interrupted') &&
      old.state !== job.state
    ) {
      this._watched.delete(job.id);
      this._jobEnded.emit(job);
    }
  }

  private _onEvent(_: unknown, event: IServerEvent): void {
    // Every job's events are on `publish/<job id>`.
    if (!event.topic.startsWith('publish/')) {
      return;
    }
    const job = event.data as IPublishJob;
    if (job && typeof job === 'object' && typeof job.id === 'string') {
      this.upsert(job);
    }
  }

  private _onOpened(): void {
    // Events sent while not connected are lost: catch up (also on the first
    // connection, which may open after the first listing was read).
    void this.refresh();
  }

  private _onStatus(_: unknown, _status: IStreamStatus): void {
    this._emit();
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _stream: EventStream | null;
  private _fallback: FallbackPoll;
  private _ownsFallback: boolean;
  private _polled: IDisposable | null = null;
  private _jobs: IPublishJob[] = [];
  private _loaded = false;
  private _loading: Promise<void> | null = null;
  private _again = false;
  private _error: unknown = null;
  private _disposed = false;
  private _watched = new Set<string>();
  private _removed = new Set<string>();
  private _changed = new Signal<this, void>(this);
  private _jobEnded = new Signal<this, IPublishJob>(this);
}

export namespace PublishJobsModel {
  export interface IOptions {
    /**
     * The live-update stream (topic `publish`); none in tests.
     */
    stream?: EventStream | null;
    /**
     * The shared polling fallback (default: one of its own on `stream`).
     */
    fallback?: FallbackPoll;
    /**
     * Poll period of its own fallback while the stream is down and a job is
     * active.
     */
    pollMs?: number;
  }
}

function sortJobs(jobs: IPublishJob[]): IPublishJob[] {
  return [...jobs].sort((a, b) => (b.created ?? 0) - (a.created ?? 0));
}
