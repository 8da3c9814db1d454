import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { PublishPanel } from './JobList';
import { PublishJobsModel } from './model';
import { IPublishJob } from './types';

/**
 * The "Publish" section of the Analysis Facility sidebar.
 */
export class PublishSection extends ReactWidget {
  constructor(options: PublishSection.IOptions) {
    super();
    this._options = options;
    this.id = 'af-lab-publish';
    this.addClass('jp-AFLab-PublishSection');
    this.title.label = 'Publish';
    this.title.caption =
      'Publish workspace files to Rucio, with live progress and provenance';
  }

  protected render(): JSX.Element {
    return (
      <PublishPanel
        model={this._options.model}
        onPublish={this._options.onPublish}
        onPublishAgain={this._options.onPublishAgain}
        showInData={this._options.showInData}
      />
    );
  }

  private _options: PublishSection.IOptions;
}

export namespace PublishSection {
  export interface IOptions {
    model: PublishJobsModel;
    onPublish: () => void;
    onPublishAgain?: (job: IPublishJob) => void;
    showInData?: (did: string) => void;
  }
}
