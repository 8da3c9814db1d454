import React from 'react';

import { VisibleReactWidget } from '../common/VisibleReactWidget';
import { MountsModel } from '../mounts/model';
import { DataPanel, IDataActions } from './DataPanel';
import { DataModel } from './model';

/**
 * The "Data" section of the sidebar. It loads nothing until it is first
 * shown.
 */
export class DataWidget extends VisibleReactWidget {
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
