import { IDisposable } from '@lumino/disposable';
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { EventStream } from './common/eventStream';
import { FallbackPoll } from './common/fallbackPoll';

/**
 * The id of the settings schema `schema/plugin.json` and of the plugin that
 * provides {@link IAFLabSettings}.
 */
export const SETTINGS_PLUGIN_ID = 'af-lab:plugin';

/**
 * The DOM id of the left-sidebar panel (and of its tab).
 */
export const SIDEBAR_ID = 'af-lab-sidebar';

/**
 * Suggested ranks of the sidebar sections, top to bottom. Lower comes first.
 */
export const SectionRank = {
  Status: 100,
  Data: 200,
  Mounts: 300,
  Clusters: 400,
  Publish: 500
} as const;

/**
 * The "Analysis Facility" left sidebar. Each capability adds its view as one
 * collapsible section.
 */
export interface IAFLabSidebar {
  /**
   * The sidebar panel itself (id `af-lab-sidebar`).
   */
  readonly panel: Widget;

  /**
   * Add a section. Its header shows `widget.title.label`; set
   * `widget.title.caption` for a tooltip.
   *
   * @returns a disposable that removes the section again
   */
  addSection(
    widget: Widget,
    options?: IAFLabSidebar.ISectionOptions
  ): IDisposable;

  /**
   * Open the sidebar and expand the given section.
   */
  activateSection(widget: Widget): void;
}

export namespace IAFLabSidebar {
  export interface ISectionOptions {
    /**
     * Position in the sidebar, lower first (see {@link SectionRank}).
     * Sections of equal rank keep the order they were added in. Default 1000.
     */
    rank?: number;
    /**
     * Whether the section starts expanded the first time a user opens the
     * sidebar (afterwards the user's own choice is restored). Default true.
     */
    expanded?: boolean;
    /**
     * The section's share of the height, relative to the other open sections,
     * until the user drags a divider (then the user's sizes are remembered).
     * Default 1.
     */
    weight?: number;
  }
}

export const IAFLabSidebar = new Token<IAFLabSidebar>(
  'af-lab:IAFLabSidebar',
  'The Analysis Facility left sidebar: capabilities add their sections to it.'
);

/**
 * The user settings of af-lab (`af-lab:plugin`), with their defaults until the
 * settings registry has answered.
 */
export interface IAFLabSettings {
  /**
   * The facility instance (e.g. a Rucio instance) to use by default; '' lets
   * the server choose.
   */
  readonly defaultInstance: string;

  /**
   * How many items a listing requests per page.
   */
  readonly pageSize: number;

  /**
   * Seconds between automatic refreshes of the facility status; 0 turns them
   * off.
   */
  readonly statusRefreshSeconds: number;

  /**
   * Emitted whenever a setting changes (including the first load).
   */
  readonly changed: ISignal<IAFLabSettings, void>;
}

export const IAFLabSettings = new Token<IAFLabSettings>(
  'af-lab:IAFLabSettings',
  'The af-lab user settings (default instance, page size, refresh interval).'
);

/**
 * The one live connection to the server's event stream (topics `mounts/…`,
 * `publish/…`, `clusters/…`), shared by all sections.
 */
export interface IAFLabEvents {
  readonly stream: EventStream;
  /**
   * The one polling fallback while the stream is down: sections add
   * themselves to it instead of running their own timers.
   */
  readonly fallback: FallbackPoll;
}

export const IAFLabEvents = new Token<IAFLabEvents>(
  'af-lab:IAFLabEvents',
  "The one connection to af-lab's server event stream."
);
