import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IMount, IMountRequest, IUnmountResult } from '../mounts/types';
import { describeError } from '../request';
import * as defaultApi from './api';
import {
  attachmentKey,
  mergeAttachments,
  readAttachments,
  withAttachments
} from './metadata';
import { IAttachment, IResolvedAttachment } from './types';

/**
 * The REST calls the model uses (replaced in tests).
 */
export type AttachmentsApi = Pick<typeof defaultApi, 'resolveAttachments'>;

/**
 * What the model needs of the mounts (the shared mounts model in the lab).
 */
export interface IMountOps {
  create(request: IMountRequest): Promise<IMount>;
  retry(id: string): Promise<IMount>;
  remove(id: string): Promise<IUnmountResult>;
}

/**
 * A notebook as the model sees it: its path and its `af_lab` metadata
 * section (a NotebookPanel in the lab, a plain object in tests).
 */
export interface INotebookHandle {
  readonly path: string;
  getSection(): unknown;
  setSection(value: Record<string, unknown>): void;
  /**
   * Emits when the notebook's metadata may have changed.
   */
  readonly sectionChanged: ISignal<any, unknown>;
}

/**
 * Record `additions` in the notebook's metadata (merged: no duplicates).
 *
 * @returns whether the metadata changed
 */
export function recordAttachments(
  notebook: INotebookHandle,
  additions: readonly Omit<IAttachment, 'added'>[]
): boolean {
  const section = notebook.getSection();
  const merged = mergeAttachments(readAttachments(section), additions);
  if (!merged) {
    return false;
  }
  notebook.setSection(withAttachments(section, merged));
  return true;
}

/**
 * Why an attachment cannot be mounted again now, or null when it can.
 */
export function remountBlocked(
  resolved: IResolvedAttachment | undefined
): string | null {
  switch (resolved?.state) {
    case undefined:
      return 'Its state is not known yet.';
    case 'gone':
      return 'Deleted from Rucio: there is nothing to mount any more.';
    case 'invalid':
      return resolved.message || 'Not a DID this server can mount.';
    case 'mounted':
      return 'Already mounted, with the content Rucio lists.';
    case 'mounting':
      return 'Being mounted right now.';
    default:
      return null;
  }
}

/**
 * The "Data used by this notebook" view's model: the current notebook's
 * attachments (its metadata) and what the server says became of each.
 */
export class AttachmentsModel implements IDisposable {
  constructor(options: AttachmentsModel.IOptions = {}) {
    this._api = options.api ?? defaultApi;
    this._mounts = options.mounts ?? null;
    this._delayMs = options.delayMs ?? 300;
  }

  /**
   * Any change: the notebook, its attachments, their states, busy flags.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get notebook(): INotebookHandle | null {
    return this._notebook;
  }

  get attachments(): readonly IAttachment[] {
    return this._attachments;
  }

  get loading(): boolean {
    return this._loading;
  }

  /**
   * The last resolve's failure, as a message for the user; null if none.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * The server's answer for `attachment` (undefined until resolved).
   */
  resolved(attachment: IAttachment): IResolvedAttachment | undefined {
    return this._resolved.get(attachmentKey(attachment));
  }

  /**
   * A re-mount in flight, or its failure message.
   */
  busy(attachment: IAttachment): boolean {
    return this._busy.has(attachmentKey(attachment));
  }

  actionError(attachment: IAttachment): string | null {
    return this._actionErrors.get(attachmentKey(attachment)) ?? null;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /**
   * Follow another notebook (or none).
   */
  setNotebook(notebook: INotebookHandle | null): void {
    if (notebook === this._notebook) {
      return;
    }
    this._notebook?.sectionChanged.disconnect(this._onSection, this);
    this._notebook = notebook;
    this._resolved.clear();
    this._actionErrors.clear();
    this._error = null;
    notebook?.sectionChanged.connect(this._onSection, this);
    this._read();
    this._changed.emit();
    this.scheduleRefresh();
  }

  /**
   * Resolve again after a short quiet time (many triggers, one request).
   */
  scheduleRefresh(): void {
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => void this.refresh(), this._delayMs);
  }

  /**
   * Ask the server what became of every attachment; `rucio` re-lists the
   * DIDs' content in Rucio instead of using the recent listing.
   */
  async refresh(rucio = false): Promise<void> {
    window.clearTimeout(this._timer);
    const generation = ++this._generation;
    const list = this._attachments;
    if (list.length === 0) {
      this._resolved.clear();
      this._loading = false;
      this._changed.emit();
      return;
    }
    this._loading = true;
    this._changed.emit();
    try {
      const answers = await this._api.resolveAttachments(list, rucio);
      if (generation !== this._generation || this._disposed) {
        return; // a newer request (or another notebook) took over
      }
      this._resolved.clear();
      list.forEach((a, i) => {
        if (answers[i]) {
          this._resolved.set(attachmentKey(a), answers[i]);
        }
      });
      this._error = null;
    } catch (reason) {
      if (generation !== this._generation) {
        return;
      }
      this._error = describeError(reason);
    }
    this._loading = false;
    this._changed.emit();
  }

  /**
   * Take the attachment off the notebook's list (its mount, if any, stays).
   * A DID the kernel reports again is not put back in this browser session.
   */
  remove(attachment: IAttachment): void {
    const notebook = this._notebook;
    if (!notebook) {
      return;
    }
    const key = attachmentKey(attachment);
    this._dismissed.add(`${notebook.path}\n${key}`);
    const section = notebook.getSection();
    const rest = readAttachments(section).filter(a => attachmentKey(a) !== key);
    notebook.setSection(withAttachments(section, rest));
    this._read();
    this._changed.emit();
  }

  /**
   * Whether `did` was removed from `notebook`'s list in this session.
   */
  dismissed(
    notebook: INotebookHandle,
    a: { did: string; instance?: string }
  ): boolean {
    return this._dismissed.has(`${notebook.path}\n${attachmentKey(a)}`);
  }

  /**
   * Mount the attachment again in its recorded mode: a failed mount is
   * retried; a mount whose DID changed in Rucio is replaced by a fresh one.
   */
  async remount(attachment: IAttachment): Promise<void> {
    const key = attachmentKey(attachment);
    const resolved = this._resolved.get(key);
    const blocked = remountBlocked(resolved);
    if (blocked || !this._mounts || this._busy.has(key)) {
      return;
    }
    this._busy.add(key);
    this._actionErrors.delete(key);
    this._changed.emit();
    try {
      // Only a mount in the recorded mode is replaced; another mode's stays.
      const mount =
        resolved!.mount?.mode === attachment.mode ? resolved!.mount : null;
      if (mount && ['failed', 'cancelled'].includes(mount.state)) {
        await this._mounts.retry(mount.id);
      } else {
        if (mount) {
          await this._mounts.remove(mount.id);
        }
        await this._mounts.create({
          did: attachment.did,
          mode: attachment.mode,
          ...(attachment.instance ? { instance: attachment.instance } : {}),
          ...(mount ? { target: mount.target, refresh: true } : {})
        });
      }
    } catch (reason) {
      this._actionErrors.set(key, describeError(reason));
    } finally {
      this._busy.delete(key);
      this._changed.emit();
    }
    await this.refresh();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    window.clearTimeout(this._timer);
    this._notebook?.sectionChanged.disconnect(this._onSection, this);
    Signal.clearData(this);
  }

  private _onSection(): void {
    const before = JSON.stringify(this._attachments);
    this._read();
    if (JSON.stringify(this._attachments) !== before) {
      this._changed.emit();
      this.scheduleRefresh();
    }
  }

  private _read(): void {
    this._attachments = this._notebook
      ? readAttachments(this._notebook.getSection())
      : [];
  }

  private _api: AttachmentsApi;
  private _mounts: IMountOps | null;
  private _delayMs: number;
  private _notebook: INotebookHandle | null = null;
  private _attachments: IAttachment[] = [];
  private _resolved = new Map<string, IResolvedAttachment>();
  private _busy = new Set<string>();
  private _actionErrors = new Map<string, string>();
  private _dismissed = new Set<string>();
  private _loading = false;
  private _error: string | null = null;
  private _generation = 0;
  private _timer = 0;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}

export namespace AttachmentsModel {
  export interface IOptions {
    api?: AttachmentsApi;
    mounts?: IMountOps;
    /**
     * Quiet time before a scheduled resolve, in ms. Default 300.
     */
    delayMs?: number;
  }
}
