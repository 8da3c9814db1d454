import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { EventStream, IServerEvent } from '../common/eventStream';
import { FallbackPoll, streamIsDown } from '../common/fallbackPoll';
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
  newCreation,
  readClusterEvent,
  scaleOperation,
  shutdownOperation,
  UIRequest
} from './state';
import {
  IAdaptBounds,
  ICluster,
  ICreateClusterBody,
  IProfile,
  IProfilesResponse,
  LIVE_STATES
} from './types';

export {
  fieldOf,
  ICreation,
  IJobsState,
  IOperation,
  IOperationError,
  UIRequest
} from './state';

/**
 * What the model uses of the shared event stream (replaced in tests).
 */
export type IClusterEventSource = Pick<
  EventStream,
  'received' | 'opened' | 'status' | 'start'
>;

/**
 * The state of the Clusters view, shared by the sidebar section and the
 * `af-lab:*-cluster` commands.
 *
 * It is kept current by the server's `clusters/<id>` events (the cluster)
 * and `clusters/<id>/jobs` events (its batch jobs) on the shared event
 * stream; the list is read when the view is first shown and after every
 * reconnect. While the stream is down and the view is shown, the shared
 * {@link FallbackPoll} re-reads the list and the batch jobs.
 */
export class ClustersModel implements IDisposable {
  constructor(options: ClustersModel.IOptions = {}) {
    this._api = options.api ?? defaultApi;
    this._now = options.now ?? (() => Date.now());
    this._events = options.events ?? null;
    this._ownsFallback = !options.fallback;
    this._fallback =
      options.fallback ?? new FallbackPoll({ stream: this._events });
    this._polled = this._fallback.add({
      wanted: () => this._active && !this._disposed,
      refresh: () => this._pollOnce()
    });
    this._events?.received.connect(this._onEvent, this);
    this._events?.opened.connect(this._onOpened, this);
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
    this._polled.dispose();
    if (this._ownsFallback) {
      this._fallback.dispose();
    }
    Signal.disconnectReceiver(this);
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

  // -------------------------------------------------------------- updates

  /**
   * Whether the view is on screen. The first time (and whenever the list may
   * be stale: no live stream) the list is read at once; while it is shown
   * and the stream is down, the shared fallback keeps reading it.
   */
  setActive(active: boolean): void {
    if (active === this._active || this._disposed) {
      return;
    }
    this._active = active;
    if (!active) {
      return;
    }
    this._events?.start();
    if (this._profiles === null && this._profilesRequest === null) {
      void this.loadProfiles();
    }
    if (!this._loadedAt || !this._events || streamIsDown(this._events.status)) {
      void this.refresh();
    }
  }

  get isActive(): boolean {
    return this._active;
  }

  /**
   * Fetch the list and the batch jobs of its clusters now.
   */
  async refresh(): Promise<void> {
    await this._refreshList();
    const batch = (this._clusters ?? []).filter(
      c =>
        c.backend !== 'local' &&
        (LIVE_STATES.includes(c.state) || !this._jobs.get(c.id)?.at)
    );
    await Promise.all(batch.map(c => this.refreshJobs(c.id)));
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
    this._emit();
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
      this._emit();
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
    this._emit();
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
      this._emit();
    }
  }

  /**
   * Note that a cluster changed: list answers asked for before are stale for
   * it (see {@link _refreshList}).
   */
  private _touched(id: string): void {
    this._changedAt.set(id, ++this._changes);
  }

  private _upsert(cluster: ICluster): void {
    this._touched(cluster.id);
    const list = this._clusters ?? [];
    const index = list.findIndex(c => c.id === cluster.id);
    this._clusters =
      index === -1
        ? [...list, cluster]
        : list.map(c => (c.id === cluster.id ? cluster : c));
  }

  private _remove(id: string): void {
    this._touched(id);
    if (this._clusters) {
      this._clusters = this._clusters.filter(c => c.id !== id);
    }
    this._jobs.delete(id);
  }

  private _onEvent(_: unknown, { topic, data }: IServerEvent): void {
    const event = readClusterEvent(topic, data);
    if (!event) {
      return; // another section's topic
    }
    if (event.kind === 'jobs') {
      const loading = this._jobsRequests.has(event.id);
      const at = this._now();
      this._jobs.set(event.id, { data: event.jobs, error: null, loading, at });
    } else if (event.kind === 'removed') {
      this._remove(event.id);
    } else {
      // The browser's dashboard URL is the REST answer's (the base URL).
      const dashboard_url = this.find(event.id)?.dashboard_url ?? '';
      this._upsert({ ...event.cluster, dashboard_url });
      adoptListedNames(this._creations, this._clusters ?? []);
      if (event.cluster.dashboard_link && !dashboard_url) {
        void this._refreshList(); // a new cluster: read its dashboard URL
      }
    }
    this._emit();
  }

  private _onOpened(): void {
    // Events sent while disconnected are lost: catch up.
    if (this._loadedAt || this._active) {
      void this.refresh();
    }
  }

  /**
   * One read of the fallback; a rejection makes it back off.
   */
  private async _pollOnce(): Promise<void> {
    await this.refresh();
    if (this._listError) {
      throw this._listError;
    }
  }

  private _refreshList(): Promise<void> {
    if (this._listRequest) {
      return this._listRequest;
    }
    const askedAt = this._changes;
    const request = this._api
      .listClusters()
      .then(listed => {
        this._listError = null;
        // An event or action newer than this answer wins for its cluster.
        const newer = (id: string) => (this._changedAt.get(id) ?? 0) > askedAt;
        const clusters = listed
          .filter(c => !newer(c.id) || this.find(c.id))
          .map(c => (newer(c.id) ? this.find(c.id)! : c));
        for (const known of this._clusters ?? []) {
          if (newer(known.id) && !clusters.some(c => c.id === known.id)) {
            clusters.push(known);
          }
        }
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

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _api: ClustersModel.IApi;
  private _now: () => number;
  private _disposed = false;
  private _active = false;
  private _events: IClusterEventSource | null;
  private _fallback: FallbackPoll;
  private _ownsFallback: boolean;
  private _polled: IDisposable;
  private _changed = new Signal<this, void>(this);
  private _uiRequested = new Signal<this, UIRequest>(this);

  private _profiles: IProfilesResponse | null = null;
  private _profilesError: unknown = null;
  private _profilesRequest: Promise<void> | null = null;

  private _clusters: ICluster[] | null = null;
  private _listError: unknown = null;
  private _listRequest: Promise<void> | null = null;
  private _loadedAt = 0;
  // Local change counter: which clusters changed after a list was asked for.
  private _changes = 0;
  private _changedAt = new Map<string, number>();

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
    /**
     * The shared event stream (topics `clusters/…`); none: the fallback
     * polls whenever the view is shown.
     */
    events?: IClusterEventSource | null;
    /**
     * The shared polling fallback (default: one of its own).
     */
    fallback?: FallbackPoll;
  }
}
