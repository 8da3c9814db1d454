import { SidePanel } from '@jupyterlab/ui-components';
import { ArrayExt } from '@lumino/algorithm';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { AccordionPanel, Widget } from '@lumino/widgets';

import { afLabIcon } from '../icons';
import { IAFLabSidebar, SIDEBAR_ID } from '../tokens';

const DEFAULT_RANK = 1000;

interface ISection {
  widget: Widget;
  rank: number;
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

  private _sections: ISection[] = [];
  private _onActivate: (() => void) | null;
}

export namespace FacilitySidebar {
  export interface IOptions {
    /**
     * Bring the sidebar to the front (e.g. `shell.activateById`).
     */
    onActivate?: () => void;
  }
}
