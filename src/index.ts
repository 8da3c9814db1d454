import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import attachmentsPlugin from './attachments/plugin';
import clustersPlugin from './clusters/plugin';
import eventsPlugin from './common/eventsPlugin';
import mountsPlugin from './mounts/plugin';
import publishPlugin from './publish/plugin';
import rootFilePlugin from './rootfile/plugin';
import rucioPlugin from './rucio/plugin';
import settingsPlugin from './settings/plugin';
import sidebarPlugin from './sidebar/plugin';
import statusPlugin from './status/plugin';

export * from './tokens';

/**
 * All af-lab plugins. Each capability lives in its own folder and contributes
 * its plugin(s) with one line here (e.g. `rucioPlugin` from
 * `./rucio/plugin`); it adds its view with `IAFLabSidebar.addSection`.
 */
const plugins: JupyterFrontEndPlugin<any>[] = [
  settingsPlugin,
  eventsPlugin,
  sidebarPlugin,
  statusPlugin,
  rucioPlugin,
  mountsPlugin,
  clustersPlugin,
  publishPlugin,
  attachmentsPlugin,
  rootFilePlugin
];

export default plugins;
