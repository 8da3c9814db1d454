import { SidePanel } from '@jupyterlab/ui-components';
import { ArrayExt } from '@lumino/algorithm';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { AccordionPanel, Widget } from '@lumino/widgets';

import { afLabIcon } from '../icons';
import { IAFLabSidebar, SIDEBAR_ID } from '../tokens';

const DEFAULT_RANK = 1000;

/**
 * Where the sections' expanded/collapsed state is kept between sessions.
 */
export const SECTIONS_STATE_KEY = 'af-lab:sidebar-sections';

/**
 * Where the sections' heights (shares of the sidebar) are kept.
 */
export const SIZES_STATE_KEY = 'af-lab:sidebar-sizes';

interface ISection {
  widget: Widget;
  rank: number;
  weight: number;
}

/**
 * Section id → its share of the height when open (any positive number).
 */
export type SectionWeights = Record<string, number>;

/**
 * The relative sizes of an accordion's sections: every open section gets its
 * weight's share (never nothing), a closed one none. All closed → all zero.
 */
export function shareHeight(
  sections: readonly { id: string; open: boolean; weight: number }[],
  saved: SectionWeights
): number[] {
  const weights = sections.map(s => {
    if (!s.open) {
      return 0;
    }
    const w = saved[s.id];
    return typeof w === 'number' && w > 0.02 ? w : Math.max(s.weight, 0.05);
  });
  const total = weights.reduce((a, b) => a + b, 0);
  return total > 0 ? weights.map(w => w / total) : weights;
}

/**
 * Section id → expanded.
 */
type SectionsState = Record<string, boolean>;

/**
 * The part of JupyterLab's state database the sidebar uses.
 */
export interface ISectionsStateDB {
  fetch(id: string): Promise<unknown>;
  save(id: string, value: any): Promise<unknown>;
}

/**
 * The "Analysis Facility" left sidebar: a header and an accordion of sections
 * ordered by rank.
 */
export class FacilitySidebar extends SidePanel implements IAFLabSidebar {
  constructor(options: FacilitySidebar.IOptions = {}) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-AFLab-sidebar');
    this.title.icon = afLabIcon;
    this.title.caption = 'Analysis Facility';

    const heading = document.createElement('h2');
    heading.textContent = 'Analysis Facility';
    heading.className = 'jp-AFLab-sidebar-title';
    this.header.addWidget(new Widget({ node: heading }));

    this._onActivate = options.onActivate ?? null;
    this._state = options.state ?? null;
    if (this._state) {
      const state = this._state;
      void Promise.all([
        state.fetch(SECTIONS_STATE_KEY).catch(() => undefined),
        state.fetch(SIZES_STATE_KEY).catch(() => undefined)
      ])
        .then(([saved, sizes]) => {
          if (sizes && typeof sizes === 'object') {
            this._weights = sizes as SectionWeights;
          }
          if (saved && typeof saved === 'object') {
            this._saved = saved as SectionsState;
            for (const { widget } of this._sections) {
              this._applySaved(widget);
            }
          }
          this._shareHeight();
        })
        .finally(() => {
          this._stateLoaded = true;
        });
    }
    if (this.content instanceof AccordionPanel) {
      this.content.expansionToggled.connect(this._onToggled, this);
      this.content.handleMoved.connect(this._onHandleMoved, this);
    }
  }

  get panel(): Widget {
    return this;
  }

  addSection(
    widget: Widget,
    options: IAFLabSidebar.ISectionOptions = {}
  ): IDisposable {
    const rank = options.rank ?? DEFAULT_RANK;
    widget.addClass('jp-AFLab-section');
    const index = ArrayExt.upperBound(
      this._sections,
      rank,
      (section, value) => section.rank - value
    );
    const section: ISection = { widget, rank, weight: options.weight ?? 1 };
    this._sections.splice(index, 0, section);
    this.insertWidget(index, widget);
    // The first time, the quiet sections start collapsed so that Data gets the
    // room; the user's own choice wins once it is known.
    if (options.expanded === false) {
      this._setExpanded(widget, false);
    }
    this._applySaved(widget);
    this._shareHeight();

    const remove = () => {
      ArrayExt.removeFirstOf(this._sections, section);
      widget.disposed.disconnect(remove);
      if (!widget.isDisposed && widget.parent === this.content) {
        widget.parent = null;
      }
    };
    widget.disposed.connect(remove);
    return new DisposableDelegate(remove);
  }

  activateSection(widget: Widget): void {
    this._onActivate?.();
    const index = this.widgets.indexOf(widget);
    if (index >= 0 && this.content instanceof AccordionPanel) {
      this.content.expand(index);
    }
  }

  private _applySaved(widget: Widget): void {
    const expanded = this._saved[widget.id];
    if (typeof expanded === 'boolean') {
      this._setExpanded(widget, expanded);
    }
  }

  private _setExpanded(widget: Widget, expanded: boolean): void {
    const index = this.widgets.indexOf(widget);
    if (index < 0 || !(this.content instanceof AccordionPanel)) {
      return;
    }
    this._applying = true;
    try {
      if (expanded) {
        this.content.expand(index);
      } else {
        this.content.collapse(index);
      }
    } finally {
      this._applying = false;
    }
  }

  /**
   * Give every open section its share of the height. Lumino's accordion
   * restores a section to the size it had when it was closed, which is 0 px
   * for one that started closed: an "open" section with no room.
   */
  private _shareHeight(): void {
    if (!(this.content instanceof AccordionPanel)) {
      return;
    }
    const byWidget = new Map(this._sections.map(s => [s.widget, s]));
    const sizes = shareHeight(
      this.content.widgets.map(w => ({
        id: w.id,
        open: !w.isHidden,
        weight: byWidget.get(w)?.weight ?? 1
      })),
      this._weights
    );
    if (sizes.some(size => size > 0)) {
      this.content.setRelativeSizes(sizes);
    }
  }

  /**
   * The user dragged a divider: remember the open sections' shares.
   */
  private _onHandleMoved(panel: AccordionPanel): void {
    const sizes = panel.relativeSizes();
    const weights = { ...this._weights };
    panel.widgets.forEach((w, i) => {
      if (!w.isHidden && w.id && sizes[i] > 0) {
        weights[w.id] = Math.round(sizes[i] * 1000) / 1000;
      }
    });
    this._weights = weights;
    if (this._state) {
      void this._state.save(SIZES_STATE_KEY, weights);
    }
  }

  private _onToggled(panel: AccordionPanel, index: number): void {
    this._shareHeight();
    const widget = panel.widgets[index];
    if (this._applying || !widget?.id || !this._state) {
      return;
    }
    this._saved = { ...this._saved, [widget.id]: !widget.isHidden };
    if (this._stateLoaded) {
      void this._state.save(SECTIONS_STATE_KEY, this._saved);
    }
  }

  private _sections: ISection[] = [];
  private _onActivate: (() => void) | null;
  private _state: ISectionsStateDB | null;
  private _saved: SectionsState = {};
  private _weights: SectionWeights = {};
  private _stateLoaded = false;
  private _applying = false;
}

export namespace FacilitySidebar {
  export interface IOptions {
    /**
     * Bring the sidebar to the front (e.g. `shell.activateById`).
     */
    onActivate?: () => void;
    /**
     * Where to remember which sections the user expanded.
     */
    state?: ISectionsStateDB;
  }
}
