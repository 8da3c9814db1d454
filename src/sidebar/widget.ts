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

interface ISection {
  widget: Widget;
  rank: number;
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
      void this._state
        .fetch(SECTIONS_STATE_KEY)
        .then(saved => {
          if (saved && typeof saved === 'object') {
            this._saved = saved as SectionsState;
            for (const { widget } of this._sections) {
              this._applySaved(widget);
            }
          }
        })
        .catch(() => undefined) // no saved state: keep the defaults
        .finally(() => {
          this._stateLoaded = true;
        });
    }
    if (this.content instanceof AccordionPanel) {
      this.content.expansionToggled.connect(this._onToggled, this);
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
    const section: ISection = { widget, rank };
    this._sections.splice(index, 0, section);
    this.insertWidget(index, widget);
    // The first time, the quiet sections start collapsed so that Data gets the
    // room; the user's own choice wins once it is known.
    if (options.expanded === false) {
      this._setExpanded(widget, false);
    }
    this._applySaved(widget);

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

  private _onToggled(panel: AccordionPanel, index: number): void {
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
