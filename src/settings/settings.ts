import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ISignal, Signal } from '@lumino/signaling';

import { IAFLabSettings } from '../tokens';

/**
 * The defaults; they match `schema/plugin.json`.
 */
export const DEFAULT_SETTINGS = {
  defaultInstance: '',
  pageSize: 200,
  statusRefreshSeconds: 15
} as const;

/**
 * {@link IAFLabSettings} backed by the settings registry.
 */
export class AFLabSettings implements IAFLabSettings {
  get defaultInstance(): string {
    return this._defaultInstance;
  }

  get pageSize(): number {
    return this._pageSize;
  }

  get statusRefreshSeconds(): number {
    return this._statusRefreshSeconds;
  }

  get changed(): ISignal<IAFLabSettings, void> {
    return this._changed;
  }

  /**
   * Follow a loaded settings object from now on.
   */
  connect(settings: ISettingRegistry.ISettings): void {
    settings.changed.connect(() => this.update(settings.composite));
    this.update(settings.composite);
  }

  /**
   * Take new values; anything missing or invalid falls back to the default.
   */
  update(composite: Partial<Record<string, unknown>>): void {
    this._defaultInstance =
      typeof composite.defaultInstance === 'string'
        ? composite.defaultInstance.trim()
        : DEFAULT_SETTINGS.defaultInstance;
    this._pageSize = positiveInteger(
      composite.pageSize,
      DEFAULT_SETTINGS.pageSize,
      1
    );
    this._statusRefreshSeconds = positiveInteger(
      composite.statusRefreshSeconds,
      DEFAULT_SETTINGS.statusRefreshSeconds,
      0
    );
    this._changed.emit();
  }

  private _defaultInstance: string = DEFAULT_SETTINGS.defaultInstance;
  private _pageSize: number = DEFAULT_SETTINGS.pageSize;
  private _statusRefreshSeconds: number = DEFAULT_SETTINGS.statusRefreshSeconds;
  private _changed = new Signal<IAFLabSettings, void>(this);
}

function positiveInteger(
  value: unknown,
  fallback: number,
  minimum: number
): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < minimum) {
    return fallback;
  }
  return Math.round(value);
}
