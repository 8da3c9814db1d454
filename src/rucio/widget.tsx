import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { MountsModel } from '../mounts/model';
import { DataPanel, IDataActions } from './DataPanel';
import { DataModel } from './model';

/**
 * The "Data" section of the sidebar. It loads nothing until it is first
 * shown.
 */
export class DataWidget extends ReactWidget {
  constructor(model: DataModel, mounts: MountsModel, actions: IDataActions) {
    super();
    this._model = model;
    this._mounts = mounts;
    this._actions = actions;
    this.id = 'af-lab-data';
    this.addClass('jp-AFLab-DataSection');
    this.title.label = 'Data';
    this.title.caption =
      'Find datasets in Rucio, see where their replicas are, and mount them';
  }

  get model(): DataModel {
    return this._model;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.update();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.update();
  }

  protected render(): JSX.Element {
    return (
      <DataPanel
        model={this._model}
        mounts={this._mounts}
        actions={this._actions}
        active={this.isVisible}
      />
    );
  }

  private _model: DataModel;
  private _mounts: MountsModel;
  private _actions: IDataActions;
}
