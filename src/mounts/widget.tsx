import React from 'react';

import { VisibleReactWidget } from '../common/VisibleReactWidget';
import { MountsModel } from './model';
import { IMountActions, MountsPanel } from './MountsPanel';

/**
 * The "Mounts" section of the sidebar.
 */
export class MountsWidget extends VisibleReactWidget {
  constructor(model: MountsModel, actions: IMountActions) {
    super();
    this._model = model;
    this._actions = actions;
    this.id = 'af-lab-mounts';
    this.addClass('jp-AFLab-MountsSection');
    this.title.label = 'Mounts';
    this.title.caption =
      'Rucio DIDs mounted as folders of local, verified files (or as filesets), with live progress';
  }

  get model(): MountsModel {
    return this._model;
  }

  /**
   * Point at one mount (scrolls to it and outlines it for a few seconds).
   */
  highlight(mountId: string | null): void {
    this._highlight = mountId;
    this.update();
    window.clearTimeout(this._timer);
    if (mountId) {
      this._timer = window.setTimeout(() => {
        this._highlight = null;
        this.update();
      }, 4000);
    }
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  protected render(): JSX.Element {
    return (
      <MountsPanel
        model={this._model}
        actions={this._actions}
        highlight={this._highlight}
        active={this.isVisible}
      />
    );
  }

  private _model: MountsModel;
  private _actions: IMountActions;
  private _highlight: string | null = null;
  private _timer = 0;
}
