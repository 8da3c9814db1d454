import React from 'react';

import { VisibleReactWidget } from '../common/VisibleReactWidget';
import { IAFLabSettings } from '../tokens';
import { StatusPanel } from './StatusPanel';

/**
 * The "Facility status" section of the sidebar.
 *
 * It only polls while it is visible (sidebar open and section expanded).
 */
export class StatusWidget extends VisibleReactWidget {
  constructor(settings: IAFLabSettings) {
    super();
    this._settings = settings;
    this.id = 'af-lab-status';
    this.addClass('jp-AFLab-StatusSection');
    this.title.label = 'Facility status';
    this.title.caption =
      'Whether the facility services (data, storage, credentials, batch) answer';
    settings.changed.connect(this._onSettingsChanged, this);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._settings.changed.disconnect(this._onSettingsChanged, this);
    super.dispose();
  }

  protected render(): JSX.Element {
    return (
      <StatusPanel
        refreshSeconds={this._settings.statusRefreshSeconds}
        active={this.isVisible}
      />
    );
  }

  private _onSettingsChanged(): void {
    this.update();
  }

  private _settings: IAFLabSettings;
}
