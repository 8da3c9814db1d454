import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IStateDB } from '@jupyterlab/statedb';

import { afLabIcon } from '../icons';
import { IAFLabSidebar, SIDEBAR_ID } from '../tokens';
import { FacilitySidebar } from './widget';

/**
 * The command that opens the sidebar.
 */
export const OPEN_SIDEBAR_COMMAND = 'af-lab:open-sidebar';

/**
 * The core plugin: the "Analysis Facility" left sidebar that capability
 * plugins add their sections to (see {@link IAFLabSidebar}).
 */
const plugin: JupyterFrontEndPlugin<IAFLabSidebar> = {
  id: 'af-lab:sidebar',
  description: 'The Analysis Facility left sidebar.',
  autoStart: true,
  provides: IAFLabSidebar,
  optional: [ILayoutRestorer, ICommandPalette, IStateDB],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    state: IStateDB | null
  ): IAFLabSidebar => {
    const sidebar = new FacilitySidebar({
      onActivate: () => app.shell.activateById(SIDEBAR_ID),
      state: state ?? undefined
    });
    app.shell.add(sidebar, 'left', { rank: 850 });
    restorer?.add(sidebar, SIDEBAR_ID);

    app.commands.addCommand(OPEN_SIDEBAR_COMMAND, {
      label: 'Open the Analysis Facility Panel',
      caption: 'Facility status, data, mounts, clusters and publishing',
      icon: args => (args.isPalette ? undefined : afLabIcon),
      execute: () => app.shell.activateById(SIDEBAR_ID)
    });
    palette?.addItem({
      command: OPEN_SIDEBAR_COMMAND,
      category: 'Analysis Facility'
    });

    console.log('JupyterLab extension af-lab is activated!');
    return sidebar;
  }
};

export default plugin;
