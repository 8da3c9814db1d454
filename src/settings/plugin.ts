import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { IAFLabSettings, SETTINGS_PLUGIN_ID } from '../tokens';
import { AFLabSettings } from './settings';

/**
 * Provides the af-lab user settings (`schema/plugin.json`).
 *
 * The token is available at once with the defaults; the values follow the
 * settings registry as soon as it has loaded them.
 */
const plugin: JupyterFrontEndPlugin<IAFLabSettings> = {
  id: SETTINGS_PLUGIN_ID,
  description: 'The af-lab user settings.',
  autoStart: true,
  provides: IAFLabSettings,
  optional: [ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    registry: ISettingRegistry | null
  ): IAFLabSettings => {
    const settings = new AFLabSettings();
    if (registry) {
      registry
        .load(SETTINGS_PLUGIN_ID)
        .then(loaded => settings.connect(loaded))
        .catch(reason => {
          console.error(
            `af-lab: could not load the settings ${SETTINGS_PLUGIN_ID}; using the defaults.`,
            reason
          );
        });
    }
    return settings;
  }
};

export default plugin;
