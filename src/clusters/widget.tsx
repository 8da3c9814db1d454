import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { ClustersPanel, IClustersPanelProps } from './ClustersPanel';
import { ClustersModel } from './model';

/**
 * The "Clusters" section of the sidebar.
 *
 * The model polls only while this section is on screen (sidebar open,
 * section expanded, browser tab visible).
 */
export class ClustersWidget extends ReactWidget {
  constructor(options: ClustersWidget.IOptions) {
    super();
    this._model = options.model;
    this._actions = options.actions;
    this._shownDashboard = options.shownDashboard;
    this.id = 'af-lab-clusters';
    this.addClass('jp-AFLab-ClustersSection');
    this.title.label = 'Clusters';
    this.title.caption =
      'Dask clusters: create, scale, dashboards and batch job states';
    document.addEventListener('visibilitychange', this._onVisibility);
  }

  get model(): ClustersModel {
    return this._model;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    document.removeEventListener('visibilitychange', this._onVisibility);
    this._model.setActive(false);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._syncActive();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._syncActive();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._syncActive();
  }

  protected onBeforeDetach(msg: Message): void {
    this._model.setActive(false);
    super.onBeforeDetach(msg);
  }

  protected render(): JSX.Element {
    return (
      <ClustersPanel
        model={this._model}
        actions={this._actions}
        shownDashboard={this._shownDashboard}
      />
    );
  }

  private _syncActive(): void {
    this._model.setActive(this.isVisible && !document.hidden);
  }

  private _onVisibility = (): void => {
    this._syncActive();
  };

  private _model: ClustersModel;
  private _actions: IClustersPanelProps['actions'];
  private _shownDashboard?: () => string;
}

export namespace ClustersWidget {
  export interface IOptions {
    model: ClustersModel;
    actions: IClustersPanelProps['actions'];
    shownDashboard?: () => string;
  }
}
