import React from 'react';

import { VisibleReactWidget } from '../common/VisibleReactWidget';
import { AttachmentsPanel } from './AttachmentsPanel';
import { AttachmentsModel } from './model';

/**
 * The "Notebook Inputs" section of the sidebar (not "…Data": the Data
 * section's title must stay unique as a substring).
 */
export class AttachmentsWidget extends VisibleReactWidget {
  constructor(model: AttachmentsModel) {
    super();
    this._model = model;
    this.id = 'af-lab-attachments';
    this.addClass('jp-AFLab-AttachmentsSection');
    this.title.label = 'Notebook Inputs';
    this.title.caption =
      'Data used by this notebook: the DIDs it mounted, and whether each is still mounted and still in Rucio';
  }

  get model(): AttachmentsModel {
    return this._model;
  }

  protected render(): JSX.Element {
    return <AttachmentsPanel model={this._model} />;
  }

  private _model: AttachmentsModel;
}
