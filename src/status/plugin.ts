import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

import { IAFLabSettings, IAFLabSidebar, SectionRank } from '../tokens';
import { StatusWidget } from './widget';

/**
 * The "Facility status" section: `GET /af-lab/status`, one row per service.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'af-lab:status',
  description: 'Shows whether the facility services are reachable.',
  autoStart: true,
  requires: [IAFLabSidebar, IAFLabSettings],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IAFLabSidebar,
    settings: IAFLabSettings
  ): void => {
    sidebar.addSection(new StatusWidget(settings), {
      rank: SectionRank.Status,
      weight: 0.6
    });
  }
};

export default plugin;
