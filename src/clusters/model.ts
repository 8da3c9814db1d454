import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import * as defaultApi from './api';
import {
  adaptOperation,
  adoptListedNames,
  creationFor,
  creationRequest,
  fieldOf,
  ICreation,
  IJobsState,
  IOperation,
  IOperationError,
  jobsPollPeriod,
  listBackoff,
  listPollPeriod,
  newCreation,
  POLL,
  scaleOperation,
  shutdownOperation,
  UIRequest
} from './state';
import {
  IAdaptBounds,
  ICluster,
  ICreateClusterBody,
  IProfile,
  IProfilesResponse
} from './types';

export {
  fieldOf,
  ICreation,
  IJobsState,
  IOperation,
  IOperationError,
  POLL,
  UIRequest
} from './state';

/**
 * The state of the Clusters view, shared by the sidebar section and the
 * `af-lab:*-cluster` commands.
 */
export class ClustersModel implements IDisposable {
  constructor(options: ClustersModel.IOptions = {}) {
    this._api = options.api ?? defaultApi;
    this._now = options.now ?? (() => Date.now());
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Emitted when a command wants the view to open the form or a scale editor.
   */
  get uiRequested(): ISignal<this, UIRequest> {
    return this._uiRequested;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._clearTimer();
    Signal.clearData(this);
  }

  // -------------------------------------------------------------- state

  get profiles(): IProfilesResponse | null {
    return this._profiles;
  }

  get profilesError(): unknown {
    return this._profilesError;
  }

  /**
   * The clusters from the server, oldest first, without the ones a running
   * creation stands for; null before the first answer.
   */
  get clusters(): ICluster[] | null {
    if (this._clusters === null) {
      return null;
    }
    return this._clusters.filter(c => !creationFor(this._creations, c));
  }

  get listError(): unknown {
    return this._listError;
  }

  get loading(): boolean {
    return this._listRequest !== null;
  }

  /**
   * When the list was last fetched successfully (ms), 0 before.
   */
  get loadedAt(): number {
    return this._loadedAt;
  }

  get creations(): ReadonlyArray<ICreation> {
    return this._creations;
  }

  find(id: string): ICluster | undefined {
    return (this._clusters ?? []).find(c => c.id === id);
  }

  profile(name: string): IProfile | undefined {
    return this._profiles?.profiles.find(p => p.name === name);
  }

  jobs(id: string): IJobsState | undefined {
    return this._jobs.get(id);
  }

  operation(id: string): IOperation | undefined {
    return this._ops.get(id);
  }

  error(id: string): IOperationError | undefined {
    return this._errors.get(id);
  }

  dismissError(id: string): void {
    if (this._errors.delete(id)) {
      this._emit();
    }
  }

  /**
   * Ask the view to show something (used by commands).
   */
  requestUI(request: UIRequest): void {
    this._uiRequested.emit(request);
  }

  // -------------------------------------------------------------- polling

  /**
   * Whether the view is on screen. Polling runs only while it is; when it
   * comes back, stale data is fetched at once.
   */
  setActive(active: boolean): void {
    if (active === this._active || this._disposed) {
      return;
    }
    this._active = active;
    if (!active) {
      this._clearTimer();
      return;
    }
    if (this._profiles === null && this._profilesRequest === null) {
      void this.loadProfiles();
    }
    this._schedule();
  }

  get isActive(): boolean {
    return this._active;
  }

  /**
   * Fetch the list (and the jobs that are due) now.
   */
  async refresh(): Promise<void> {
    await this._refreshList();
    await this._refreshDueJobs();
    this._schedule();
  }

  /**
   * Fetch the profiles (again).
   */
  loadProfiles(): Promise<void> {
    if (this._profilesRequest) {
      return this._profilesRequest;
    }
    const request = this._api
      .fetchProfiles()
      .then(profiles => {
        this._profiles = profiles;
        this._profilesError = null;
      })
      .catch(error => {
        this._profilesError = error;
      })
      .finally(() => {
        this._profilesRequest = null;
        this._emit();
      });
    this._profilesRequest = request;
    this._emit();
    return request;
  }

  get profilesLoading(): boolean {
    return this._profilesRequest !== null;
  }

  /**
   * Fetch the jobs of one cluster now (coalesced with a running request).
   */
  refreshJobs(id: string): Promise<void> {
    const running = this._jobsRequests.get(id);
    if (running) {
      return running;
    }
    const previous = this._jobs.get(id);
    this._jobs.set(id, {
      data: previous?.data ?? null,
      error: previous?.error ?? null,
      loading: true,
      at: previous?.at ?? 0
    });
    const request = this._api
      .fetchJobs(id)
      .then(data => {
        this._jobs.set(id, {
          data,
          error: null,
          loading: false,
          at: this._now()
        });
      })
      .catch(error => {
        this._jobs.set(id, {
          data: previous?.data ?? null,
          error,
          loading: false,
          at: this._now()
        });
      })
      .finally(() => {
        this._jobsRequests.delete(id);
        this._emit();
      });
    this._jobsRequests.set(id, request);
    this._emit();
    return request;
  }

  // -------------------------------------------------------------- actions

  /**
   * Create a cluster. While the request runs, {@link creations} holds a
   * placeholder the view shows with a spinner.
   *
   * @throws the server's error when it names a form field (`field`), so the
   * form can show it there; other failures stay on the placeholder card
   * (state `failed`) and are thrown too.
   */
  async create(
    profileName: string,
    body: ICreateClusterBody,
    name = ''
  ): Promise<ICluster> {
    const creation = newCreation(
      ++this._creationCounter,
      profileName,
      this.profile(profileName) ?? null,
      name,
      body,
      this._now(),
      this._clusters
    );
    this._creations = [creation, ...this._creations];
    this._mutated();
    try {
      const cluster = await this._api.createCluster(creationRequest(creation));
      this._creations = this._creations.filter(c => c !== creation);
      this._upsert(cluster);
      if (cluster.backend !== 'local') {
        void this.refreshJobs(cluster.id);
      }
      return cluster;
    } catch (error) {
      if (fieldOf(error)) {
        this._creations = this._creations.filter(c => c !== creation);
      } else {
        this._creations = this._creations.map(c =>
          c === creation ? { ...c, state: 'failed', error } : c
        );
      }
      throw error;
    } finally {
      this._mutated();
    }
  }

  /**
   * Forget a failed creation.
   */
  dismissCreation(key: number): void {
    const before = this._creations.length;
    this._creations = this._creations.filter(c => c.key !== key);
    if (this._creations.length !== before) {
      this._emit();
    }
  }

  /**
   * Scale to `workers` (stops adaptive scaling).
   */
  async scale(id: string, workers: number): Promise<ICluster | null> {
    const { op, failure } = scaleOperation(workers, this._now());
    return this._operate(id, op, failure, () =>
      this._api.scaleCluster(id, workers)
    );
  }

  /**
   * Start or change adaptive scaling, or stop it (`null`).
   */
  async adapt(
    id: string,
    bounds: IAdaptBounds | null
  ): Promise<ICluster | null> {
    const { op, failure } = adaptOperation(bounds, this._now());
    return this._operate(id, op, failure, () =>
      this._api.adaptCluster(id, bounds)
    );
  }

  /**
   * Shut a cluster down, or dismiss a stopped/failed one.
   */
  async shutdown(id: string): Promise<boolean> {
    const { op, failure } = shutdownOperation(this.find(id), this._now());
    const result = await this._operate(id, op, failure, async () => {
      await this._api.deleteCluster(id);
      return null;
    });
    return result !== undefined;
  }

  // -------------------------------------------------------------- internals

  private async _operate(
    id: string,
    op: IOperation,
    failure: string,
    call: () => Promise<ICluster | null>
  ): Promise<ICluster | null> {
    if (this._ops.has(id)) {
      throw new Error('Another action on this cluster is still running.');
    }
    this._ops.set(id, op);
    this._errors.delete(id);
    this._mutated();
    try {
      const cluster = await call();
      if (cluster) {
        this._upsert(cluster);
        if (cluster.backend !== 'local') {
          void this.refreshJobs(id);
        }
      } else {
        this._remove(id);
      }
      return cluster;
    } catch (error) {
      this._errors.set(id, { title: failure, error, at: this._now() });
      if (error instanceof Error && 'status' in error) {
        const status = (error as { status: number }).status;
        if (status === 404) {
          this._remove(id); // it is gone already
        }
      }
      throw error;
    } finally {
      this._ops.delete(id);
      this._mutated();
    }
  }

  private _upsert(cluster: ICluster): void {
    const list = this._clusters ?? [];
    const index = list.findIndex(c => c.id === cluster.id);
    this._clusters =
      index === -1
        ? [...list, cluster]
        : list.map(c => (c.id === cluster.id ? cluster : c));
  }

  private _remove(id: string): void {
    if (this._clusters) {
      this._clusters = this._clusters.filter(c => c.id !== id);
    }
    this._jobs.delete(id);
  }

  /**
   * A change was made: answers of requests started before it are stale.
   */
  private _mutated(): void {
    this._generation++;
    this._emit();
    this._schedule();
  }

  private _refreshList(): Promise<void> {
    if (this._listRequest) {
      return this._listRequest;
    }
    const generation = this._generation;
    const request = this._api
      .listClusters()
      .then(clusters => {
        this._listFailures = 0;
        this._listError = null;
        if (generation !== this._generation) {
          // An action finished meanwhile: this answer may predate it.
          this._stale = true;
          return;
        }
        this._stale = false;
        this._clusters = clusters;
        this._loadedAt = this._now();
        for (const id of Array.from(this._jobs.keys())) {
          if (!clusters.some(c => c.id === id)) {
            this._jobs.delete(id);
          }
        }
        adoptListedNames(this._creations, clusters);
      })
      .catch(error => {
        this._listFailures++;
        this._listError = error;
      })
      .finally(() => {
        this._listRequest = null;
        this._emit();
      });
    this._listRequest = request;
    this._emit();
    return request;
  }

  private _jobsDueIn(cluster: ICluster): number | null {
    const period = jobsPollPeriod(cluster, this._jobs.get(cluster.id));
    if (period === null) {
      return null;
    }
    const at = this._jobs.get(cluster.id)?.at ?? 0;
    return Math.max(0, at + period - this._now());
  }

  private async _refreshDueJobs(): Promise<void> {
    const due = (this._clusters ?? []).filter(c => this._jobsDueIn(c) === 0);
    await Promise.all(due.map(c => this.refreshJobs(c.id)));
  }

  private _nextDelay(): number {
    let listDelay: number;
    if (this._listFailures > 0) {
      listDelay = listBackoff(this._listFailures);
    } else {
      const period = this._listPeriod();
      listDelay = this._loadedAt
        ? Math.max(0, this._loadedAt + period - this._now())
        : 0;
    }
    let delay = listDelay;
    for (const c of this._clusters ?? []) {
      const due = this._jobsDueIn(c);
      if (due !== null) {
        delay = Math.min(delay, due);
      }
    }
    // Never two ticks closer than POLL.min (answers arriving together).
    return Math.max(delay, this._lastTickAt + POLL.min - this._now(), 0);
  }

  private _listPeriod(): number {
    const pending = this._ops.size > 0 || this._stale;
    return listPollPeriod(this._clusters, this._creations, pending);
  }

  private _schedule(): void {
    this._clearTimer();
    if (!this._active || this._disposed) {
      return;
    }
    const delay = this._nextDelay();
    this._timer = setTimeout(() => {
      this._timer = null;
      void this._tick();
    }, delay);
  }

  private async _tick(): Promise<void> {
    if (!this._active || this._disposed) {
      return;
    }
    this._lastTickAt = this._now();
    const listDue =
      this._listFailures > 0 ||
      this._stale ||
      !this._loadedAt ||
      this._now() - this._loadedAt >= this._listPeriod() - 50;
    if (listDue) {
      await this._refreshList();
    }
    await this._refreshDueJobs();
    this._schedule();
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _api: ClustersModel.IApi;
  private _now: () => number;
  private _disposed = false;
  private _active = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _changed = new Signal<this, void>(this);
  private _uiRequested = new Signal<this, UIRequest>(this);

  private _profiles: IProfilesResponse | null = null;
  private _profilesError: unknown = null;
  private _profilesRequest: Promise<void> | null = null;

  private _clusters: ICluster[] | null = null;
  private _listError: unknown = null;
  private _listFailures = 0;
  private _listRequest: Promise<void> | null = null;
  private _loadedAt = 0;
  private _lastTickAt = 0;
  private _generation = 0;
  private _stale = false;

  private _jobs = new Map<string, IJobsState>();
  private _jobsRequests = new Map<string, Promise<void>>();
  private _ops = new Map<string, IOperation>();
  private _errors = new Map<string, IOperationError>();
  private _creations: ICreation[] = [];
  private _creationCounter = 0;
}

export namespace ClustersModel {
  /**
   * The REST calls the model makes (the `api` module; replaceable in tests).
   */
  export type IApi = Pick<
    typeof defaultApi,
    | 'fetchProfiles'
    | 'listClusters'
    | 'createCluster'
    | 'scaleCluster'
    | 'adaptCluster'
    | 'deleteCluster'
    | 'fetchJobs'
  >;

  export interface IOptions {
    api?: IApi;
    now?: () => number;
  }
}
