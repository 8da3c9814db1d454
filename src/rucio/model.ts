import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { explainMountError, IExplainedError } from '../mounts/errors';
import { AFLabRequestError } from '../request';
import * as defaultApi from './api';
import { DetailsStore } from './details';
import { DataTree, ITreeNode, ListingKind } from './tree';
import {
  CredentialsBody,
  ICredentialStatus,
  IDIDItem,
  IPage,
  IRucioInstance,
  SearchType
} from './types';

/**
 * The REST calls the Data view uses (replaced in tests).
 */
export type RucioApi = Pick<
  typeof defaultApi,
  | 'listInstances'
  | 'listScopes'
  | 'searchDIDs'
  | 'getDID'
  | 'listContent'
  | 'listReplicas'
  | 'credentialStatus'
  | 'putCredentials'
>;

/**
 * The choices of the type filter, in menu order. The default is
 * `collection`: containers and datasets, never thousands of files.
 */
export const SEARCH_TYPES: { value: SearchType; label: string }[] = [
  {
    value: 'collection',
    label: 'Containers & datasets'
  },
  { value: 'container', label: 'Containers' },
  { value: 'dataset', label: 'Datasets' },
  { value: 'file', label: 'Files' },
  { value: 'all', label: 'Everything (incl. files)' }
];

export const DEFAULT_SEARCH_TYPE: SearchType = 'collection';

/**
 * The type a search really uses: the default (`collection`) widens to every
 * type for an exact `scope:name` (no wildcard), so a file found by its name
 * (e.g. one just published) is there. The `%rucio search` magic does the same.
 */
export function effectiveSearchType(
  pattern: string,
  type: SearchType
): SearchType {
  const text = pattern.trim();
  const colon = text.indexOf(':');
  const exact = colon > 0 && colon < text.length - 1 && !text.includes('*');
  return type === DEFAULT_SEARCH_TYPE && exact ? 'all' : type;
}

/**
 * Where the credentials check stands for the selected instance.
 */
export type LoginState =
  'unknown' | 'checking' | 'logged_in' | 'logged_out' | 'error';

/**
 * Turn what the user typed into a search pattern: `myscope` (a known
 * scope) → `myscope:*`; `scope:` → `scope:*`; anything else as typed.
 */
export function normalizePattern(text: string, scopes: string[]): string {
  const q = text.trim();
  if (!q) {
    return '';
  }
  if (!q.includes(':')) {
    return scopes.includes(q) ? `${q}:*` : q;
  }
  return q.endsWith(':') ? `${q}*` : q;
}

/**
 * The state of the Data view: instances, login, scopes, the search and its
 * result tree, and DID details.
 */
export class DataModel implements IDisposable {
  constructor(options: DataModel.IOptions = {}) {
    this._api = options.api ?? defaultApi;
    this._pageSize = options.pageSize ?? (() => 200);
    this._preferred = options.defaultInstance ?? (() => '');
    this.tree = new DataTree(
      (kind, parent, cursor, opts) =>
        this._fetchPage(kind, parent, cursor, opts),
      { pageSize: () => this._pageSize() }
    );
    this.tree.changed.connect(this._emit, this);
    this.details = new DetailsStore(
      (instance, did, opts) => this._api.getDID(instance, did, opts),
      options.details
    );
  }

  readonly tree: DataTree;
  readonly details: DetailsStore;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  get instances(): IRucioInstance[] | null {
    return this._instances;
  }

  get instancesError(): unknown {
    return this._instancesError;
  }

  get instance(): string {
    return this._instance;
  }

  get instanceInfo(): IRucioInstance | null {
    return this._instances?.find(i => i.name === this._instance) ?? null;
  }

  get login(): LoginState {
    return this._login;
  }

  get credentials(): ICredentialStatus | null {
    return this._credentials;
  }

  get credentialsError(): unknown {
    return this._credentialsError;
  }

  get scopes(): string[] {
    return this._scopes;
  }

  get scopesError(): unknown {
    return this._scopesError;
  }

  /**
   * The pattern and type of the search shown (null before the first).
   */
  get searched(): { pattern: string; type: SearchType } | null {
    return this._searched;
  }

  /**
   * Load the instances, pick one and check the login (idempotent).
   */
  start(): Promise<void> {
    if (!this._starting) {
      this._starting = this.loadInstances();
    }
    return this._starting;
  }

  async loadInstances(): Promise<void> {
    this._instancesError = null;
    this._emit();
    try {
      this._instances = await this._api.listInstances();
    } catch (error) {
      this._instancesError = error;
      this._starting = null;
      this._emit();
      return;
    }
    const preferred = this._preferred();
    const pick =
      this._instances.find(i => i.name === this._instance) ??
      this._instances.find(i => i.name === preferred) ??
      this._instances.find(i => i.default) ??
      this._instances[0];
    this._emit();
    if (pick) {
      await this.selectInstance(pick.name);
    }
  }

  /**
   * Switch to another instance: check its login and load its scopes.
   */
  async selectInstance(name: string): Promise<void> {
    if (name !== this._instance) {
      this._instance = name;
      this._scopes = [];
      this._searched = null;
      this.tree.clear();
      this.details.clear();
    }
    this._emit();
    await this.checkLogin();
    if (this._login === 'logged_in' || this._login === 'error') {
      await this.loadScopes();
    }
  }

  /**
   * Ask the server whether the selected instance has working credentials.
   */
  async checkLogin(): Promise<void> {
    const instance = this._instance;
    if (!instance) {
      return;
    }
    this._login = 'checking';
    this._credentialsError = null;
    this._emit();
    try {
      const answer = await this._api.credentialStatus();
      if (instance !== this._instance) {
        return;
      }
      const status =
        answer.instances.find(s => s.instance === instance) ?? null;
      this._credentials = status;
      this._login = status
        ? status.logged_in
          ? 'logged_in'
          : 'logged_out'
        : 'error';
      if (!status) {
        this._credentialsError = new Error(
          `The server reports no credential status for '${instance}'.`
        );
      }
    } catch (error) {
      if (instance !== this._instance) {
        return;
      }
      this._credentialsError = error;
      this._login = 'error';
    }
    this._emit();
  }

  /**
   * Send new credentials (write-only). On success the search shown is run
   * again.
   *
   * @throws {AFLabRequestError} when Rucio or Vault refuse them
   */
  async submitCredentials(body: CredentialsBody): Promise<void> {
    const instance = this._instance;
    const status = await this._api.putCredentials(instance, body);
    if (instance !== this._instance) {
      return;
    }
    this._credentials = status;
    this._login = status.logged_in ? 'logged_in' : 'logged_out';
    this._credentialsError = null;
    this._emit();
    if (status.logged_in) {
      this.details.clear();
      await this.loadScopes();
      if (this._searched) {
        void this.search(this._searched.pattern, this._searched.type);
      }
    }
  }

  /**
   * Show the credentials form again (e.g. to change the password).
   */
  askForCredentials(): void {
    this._login = 'logged_out';
    this._emit();
  }

  async loadScopes(refresh = false): Promise<void> {
    const instance = this._instance;
    this._scopesError = null;
    try {
      const scopes = await this._api.listScopes(instance, refresh);
      if (instance === this._instance) {
        this._scopes = scopes;
      }
    } catch (error) {
      if (instance === this._instance) {
        this._scopesError = error;
        this.noteError(error);
      }
    }
    this._emit();
  }

  /**
   * Search (the results replace the previous ones).
   */
  search(pattern: string, type: SearchType, refresh = false): Promise<void> {
    const normalized = normalizePattern(pattern, this._scopes);
    if (!normalized) {
      this._searched = null;
      this.tree.clear();
      return Promise.resolve();
    }
    this._searched = {
      pattern: normalized,
      type: effectiveSearchType(normalized, type)
    };
    return this.tree.search(refresh);
  }

  /**
   * The error of the last mount request of a DID (shown under its row).
   */
  mountNotice(did: string): IExplainedError | null {
    return this._notices.get(`${this._instance}|${did}`) ?? null;
  }

  /**
   * Show (or, with null, clear) a mount error under a DID's row.
   */
  setMountNotice(
    instance: string,
    did: string,
    error: unknown | null,
    action = 'Mount'
  ): void {
    const key = `${instance}|${did}`;
    if (error === null) {
      if (!this._notices.delete(key)) {
        return;
      }
    } else {
      const explained = explainMountError(error, action);
      this._notices.set(key, explained);
      this.noteError(error);
    }
    this._noticeVersion++;
    this._emit();
  }

  /**
   * Changes whenever a notice is added or removed.
   */
  get noticeVersion(): number {
    return this._noticeVersion;
  }

  /**
   * React to an error of any request: a 401 means the login is gone.
   */
  noteError(error: unknown): void {
    if (
      error instanceof AFLabRequestError &&
      (error.status === 401 || error.type === 'credentials') &&
      this._login !== 'logged_out'
    ) {
      this._login = 'logged_out';
      this._credentials = this._credentials
        ? { ...this._credentials, logged_in: false, message: error.message }
        : null;
      this._emit();
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.details.dispose();
    Signal.clearData(this);
  }

  private async _fetchPage(
    kind: ListingKind,
    parent: ITreeNode | null,
    cursor: string | null,
    options: { limit: number; refresh: boolean; offset?: number }
  ): Promise<IPage<IDIDItem>> {
    const instance = this._instance;
    const paging = {
      cursor,
      limit: options.limit,
      refresh: options.refresh,
      offset: options.offset
    };
    try {
      if (kind === 'search' || !parent) {
        const searched = this._searched;
        if (!searched) {
          throw new Error('Nothing to search for.');
        }
        return await this._api.searchDIDs(
          instance,
          searched.pattern,
          searched.type,
          paging
        );
      }
      if (kind === 'content') {
        return await this._api.listContent(instance, parent.item.did, paging);
      }
      return await this._api.listReplicas(instance, parent.item.did, paging);
    } catch (error) {
      this.noteError(error);
      throw error;
    }
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _api: RucioApi;
  private _pageSize: () => number;
  private _preferred: () => string;
  private _disposed = false;
  private _starting: Promise<void> | null = null;
  private _instances: IRucioInstance[] | null = null;
  private _instancesError: unknown = null;
  private _instance = '';
  private _login: LoginState = 'unknown';
  private _credentials: ICredentialStatus | null = null;
  private _credentialsError: unknown = null;
  private _scopes: string[] = [];
  private _scopesError: unknown = null;
  private _searched: { pattern: string; type: SearchType } | null = null;
  private _notices = new Map<string, IExplainedError>();
  private _noticeVersion = 0;
  private _changed = new Signal<this, void>(this);
}

export namespace DataModel {
  export interface IOptions {
    api?: RucioApi;
    /**
     * The page size of listings (read at every request).
     */
    pageSize?: () => number;
    /**
     * The instance the user prefers (settings), '' for the server's default.
     */
    defaultInstance?: () => string;
    details?: DetailsStore.IOptions;
  }
}
