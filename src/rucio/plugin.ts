import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Clipboard, InputDialog, Notification } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { copyIcon, folderIcon, notebookIcon } from '@jupyterlab/ui-components';
import { UUID } from '@lumino/coreutils';
import { Menu } from '@lumino/widgets';

import { MountsModel } from '../mounts/model';
import {
  CELL_METADATA_KEY,
  insertMountCode,
  startCellDrag,
  updateMarkedCells
} from '../mounts/notebook';
import {
  absolutePath,
  mountSnippet,
  predictTarget,
  snippetForMount
} from '../mounts/snippet';
import { IAFLabMounts } from '../mounts/tokens';
import { IMount, IMountRequest, MountMode } from '../mounts/types';
import { describeError } from '../request';
import { IAFLabSettings, IAFLabSidebar, SectionRank } from '../tokens';
import { IDataActions } from './DataPanel';
import { mountIcon } from './icons';
import { DataModel } from './model';
import { defaultTarget, mountMenu, replicaState } from './mountMenu';
import { IDIDItem } from './types';
import { DataWidget } from './widget';

/**
 * Commands of the Data section; their args are `{did, type, instance}`
 * (plus `mode` for mounting).
 */
export const CommandIDs = {
  mount: 'af-lab:data-mount',
  insertCode: 'af-lab:data-insert-code',
  copyDid: 'af-lab:data-copy-did',
  copyPath: 'af-lab:data-copy-path',
  openMount: 'af-lab:data-open-mount',
  showMount: 'af-lab:data-show-mount',
  mountTo: 'af-lab:data-mount-to',
  requestReplica: 'af-lab:data-request-replica',
  showDid: 'af-lab:data-show-did'
} as const;

const MODE_LABELS: Record<MountMode, string> = {
  cache: 'Mount as Local Cached Copies',
  stream: 'Mount as Stream Fileset (root://, no copy)',
  replica: 'Mount Replicas in Place (RSEs on this host)'
};

const MODE_WORDS: Record<MountMode, string> = {
  cache: 'cached copies',
  stream: 'a stream fileset',
  replica: 'replicas in place'
};

/**
 * The "Data" section: browse Rucio, mount DIDs, and get code for them into a
 * notebook (button, menu or drag and drop).
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'af-lab:rucio',
  description:
    'Browse Rucio (search, container → dataset → file tree, replicas) and mount DIDs.',
  autoStart: true,
  requires: [IAFLabSidebar, IAFLabSettings],
  optional: [IAFLabMounts, INotebookTracker, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IAFLabSidebar,
    settings: IAFLabSettings,
    mountsService: IAFLabMounts | null,
    tracker: INotebookTracker | null,
    fileBrowser: IDefaultFileBrowser | null
  ): void => {
    const { commands } = app;
    // eslint-disable-next-line prefer-const
    let widget: DataWidget;
    const mounts = mountsService?.model ?? new MountsModel();
    const model = new DataModel({
      pageSize: () => settings.pageSize,
      defaultInstance: () => settings.defaultInstance
    });
    const serverRoot = () => PageConfig.getOption('serverRoot');

    const itemFrom = (args: any): IDIDItem | null => {
      const did = typeof args.did === 'string' ? args.did : '';
      if (!did.includes(':')) {
        return null;
      }
      return {
        did,
        scope: did.slice(0, did.indexOf(':')),
        name: did.slice(did.indexOf(':') + 1),
        type: typeof args.type === 'string' ? args.type : 'dataset',
        bytes: null,
        length: null
      };
    };
    const instanceFrom = (args: any): string =>
      typeof args.instance === 'string' && args.instance
        ? args.instance
        : model.instance;
    const mountOf = (args: any): IMount | undefined =>
      typeof args.did === 'string'
        ? mounts.forDid(args.did, instanceFrom(args))[0]
        : undefined;

    /**
     * Mount; errors go under the DID's row (and 401 shows the login form).
     */
    const replicasOf = (did: string, instance: string) => {
      const details = model.details.get(instance, did)?.details;
      return replicaState(details?.availability, details?.length ?? null);
    };

    const mountDid = async (
      item: IDIDItem,
      instance: string,
      mode: MountMode,
      extra: Partial<IMountRequest> = {}
    ): Promise<IMount | null> => {
      model.setMountNotice(instance, item.did, null);
      try {
        return await mounts.create({
          did: item.did,
          mode,
          instance,
          target: defaultTarget(item.did, mode, mounts.mounts),
          ...extra
        });
      } catch (error) {
        model.setMountNotice(instance, item.did, error);
        return null;
      }
    };

    const openMount = (mount: IMount) => {
      if (mount.state === 'ready' && mountsService) {
        void mountsService
          .openInFileBrowser(mount)
          .catch(reason => Notification.error(describeError(reason)));
      } else if (mountsService) {
        mountsService.show(mount.id);
      } else {
        void commands.execute('filebrowser:go-to-path', {
          path: mount.fileset ?? mount.target
        });
      }
    };

    const insertCode = async (item: IDIDItem, instance: string) => {
      let mount: IMount | null | undefined = mounts.forDid(
        item.did,
        instance
      )[0];
      if (!mount) {
        mount = await mountDid(item, instance, 'cache');
        if (!mount) {
          const notice = model.mountNotice(item.did);
          Notification.error(
            `${item.did} could not be mounted, so there is no code for it yet: ${
              notice?.message ?? 'see the Data section'
            }`,
            { autoClose: 8000 }
          );
          return;
        }
      }
      await insertMountCode({
        app,
        tracker,
        browserPath: fileBrowser?.model.path,
        mount,
        mounts: mounts.mounts,
        cell: { did: item.did, instance, mount: mount.id }
      });
      if (mount.state !== 'ready') {
        Notification.info(
          `${item.did} is being mounted; the cell waits for it when you run it.`,
          { autoClose: 5000 }
        );
      }
    };

    const startDrag = (
      item: IDIDItem,
      instance: string,
      clientX: number,
      clientY: number
    ) => {
      const existing = mounts.forDid(item.did, instance)[0];
      const root = serverRoot();
      const marker = existing ? null : UUID.uuid4();
      const source = existing
        ? snippetForMount(existing, root)
        : mountSnippet({
            did: item.did,
            didType: item.type,
            mode: 'cache',
            target: predictTarget(item.did, mounts.mounts),
            serverRoot: root,
            ready: false
          });
      const metadata = {
        [CELL_METADATA_KEY]: {
          did: item.did,
          instance,
          ...(marker ? { marker } : { mount: existing!.id })
        }
      };
      void startCellDrag({
        source,
        metadata,
        label: `${item.did} → code cell`,
        clientX,
        clientY,
        tracker
      }).then(async action => {
        if (action === 'none' || !marker) {
          return;
        }
        // Dropped: mount it now and make the cell match the real mount.
        const mount = await mountDid(item, instance, 'cache');
        if (mount) {
          const real = snippetForMount(mount, root);
          updateMarkedCells(tracker, marker, real === source ? null : real);
        } else {
          const notice = model.mountNotice(item.did);
          updateMarkedCells(
            tracker,
            marker,
            `# af-lab could not mount ${item.did}: ${(notice?.message ?? 'see the Data section').replace(/\n/g, ' ')}\n` +
              '# Fix the problem (Data section), mount it, then run this cell.\n' +
              source
          );
        }
      });
    };

    const copy = (text: string, what: string) => {
      Clipboard.copyToSystem(text);
      Notification.success(`Copied ${what}.`, { autoClose: 2500 });
    };

    commands.addCommand(CommandIDs.mount, {
      label: args =>
        MODE_LABELS[(args.mode as MountMode) ?? 'cache'] ?? 'Mount',
      caption: args =>
        typeof args.caption === 'string'
          ? args.caption
          : 'Make the DID a folder of local files (or a fileset)',
      icon: mountIcon,
      isEnabled: args => args.enabled !== false,
      execute: args => {
        const item = itemFrom(args);
        if (item) {
          void mountDid(
            item,
            instanceFrom(args),
            (args.mode as MountMode) ?? 'cache',
            typeof args.target === 'string' ? { target: args.target } : {}
          );
        }
      }
    });
    commands.addCommand(CommandIDs.mountTo, {
      label: args =>
        `Mount ${MODE_WORDS[(args.mode as MountMode) ?? 'cache']} to a Folder…`,
      caption: 'Choose where in the workspace the mount appears',
      isEnabled: args => args.enabled !== false,
      execute: async args => {
        const item = itemFrom(args);
        if (!item) {
          return;
        }
        const mode = (args.mode as MountMode) ?? 'cache';
        const result = await InputDialog.getText({
          title: `Mount ${item.did} as ${MODE_WORDS[mode]}`,
          label: 'Folder in your workspace (created; must not exist yet):',
          text: defaultTarget(item.did, mode, mounts.mounts),
          okLabel: 'Mount'
        });
        const target = result.value?.trim();
        if (result.button.accept && target) {
          await mountDid(item, instanceFrom(args), mode, { target });
        }
      }
    });
    commands.addCommand(CommandIDs.requestReplica, {
      label: 'Request a Replica…',
      caption:
        'Ask Rucio for a replication rule to an RSE mounted on this host; the mount fills in when the rule is done',
      execute: async args => {
        const item = itemFrom(args);
        if (!item) {
          return;
        }
        const result = await InputDialog.getNumber({
          title: `Request a replica of ${item.did}`,
          label:
            'Rucio copies the files to an RSE on this host and keeps them for (days):',
          value: 7,
          okLabel: 'Request'
        });
        const days = result.value;
        if (result.button.accept && days !== null && days > 0) {
          await mountDid(item, instanceFrom(args), 'replica', {
            request_rule: true,
            lifetime_days: days
          });
        }
      }
    });
    commands.addCommand(CommandIDs.showDid, {
      label: 'Show in Data',
      caption: 'Find the DID in the Data section',
      execute: async args => {
        const did = typeof args.did === 'string' ? args.did : '';
        if (!did.includes(':')) {
          return;
        }
        sidebar.activateSection(widget);
        const instance = instanceFrom(args);
        if (
          instance !== model.instance &&
          model.instances?.some(i => i.name === instance)
        ) {
          await model.selectInstance(instance);
        }
        await model.search(did, 'all');
      }
    });
    commands.addCommand(CommandIDs.insertCode, {
      label: 'Insert Code into Notebook',
      caption:
        'Insert Python that reads the mounted files (mounting first if needed); runs in any kernel',
      icon: notebookIcon,
      execute: args => {
        const item = itemFrom(args);
        if (!item) {
          return;
        }
        return insertCode(item, instanceFrom(args)).catch(reason => {
          Notification.error(describeError(reason));
        });
      }
    });
    commands.addCommand(CommandIDs.copyDid, {
      label: 'Copy DID',
      caption: 'Copy scope:name to the clipboard',
      icon: copyIcon,
      execute: args => {
        if (typeof args.did === 'string') {
          copy(args.did, args.did);
        }
      }
    });
    commands.addCommand(CommandIDs.copyPath, {
      label: 'Copy Mounted Path',
      caption: 'Copy the absolute path of the mounted folder (or fileset file)',
      icon: copyIcon,
      isVisible: args => !!mountOf(args),
      execute: args => {
        const mount = mountOf(args);
        if (mount) {
          const path = absolutePath(
            mount.mode === 'stream'
              ? (mount.fileset ?? mount.target)
              : mount.target,
            serverRoot()
          );
          copy(path, path);
        }
      }
    });
    commands.addCommand(CommandIDs.openMount, {
      label: 'Open Mounted Folder',
      caption: 'Show the mounted folder in the file browser',
      icon: folderIcon,
      isVisible: args => mountOf(args)?.state === 'ready',
      execute: args => {
        const mount = mountOf(args);
        if (mount) {
          openMount(mount);
        }
      }
    });
    commands.addCommand(CommandIDs.showMount, {
      label: 'Show in Mounts',
      caption: 'Show the mount with its progress in the Mounts section',
      isVisible: args => !!mountOf(args) && !!mountsService,
      execute: args => {
        const mount = mountOf(args);
        if (mount && mountsService) {
          mountsService.show(mount.id);
        }
      }
    });

    const openMenu = (
      item: IDIDItem,
      instance: string,
      x: number,
      y: number
    ) => {
      const menu = new Menu({ commands });
      menu.addClass('jp-AFLab-Data-menu');
      const args = { did: item.did, type: item.type, instance };
      const state = mountMenu(
        item.did,
        instance,
        mounts.mounts,
        replicasOf(item.did, instance)
      );
      for (const choice of state.choices) {
        menu.addItem({
          command: CommandIDs.mount,
          args: {
            ...args,
            mode: choice.mode,
            target: choice.target,
            enabled: choice.enabled,
            caption: choice.caption
          }
        });
      }
      if (state.choices.length > 0) {
        const first = state.choices[0];
        menu.addItem({
          command: CommandIDs.mountTo,
          args: { ...args, mode: first.mode, enabled: first.enabled }
        });
      }
      if (state.requestReplica) {
        menu.addItem({ command: CommandIDs.requestReplica, args });
      }
      menu.addItem({ type: 'separator' });
      menu.addItem({ command: CommandIDs.insertCode, args });
      menu.addItem({ command: CommandIDs.copyDid, args });
      menu.addItem({ command: CommandIDs.copyPath, args });
      menu.addItem({ command: CommandIDs.openMount, args });
      menu.addItem({ command: CommandIDs.showMount, args });
      menu.aboutToClose.connect(() => {
        window.setTimeout(() => menu.dispose(), 0);
      });
      menu.open(x, y);
    };

    const actions: IDataActions = {
      mount: (item, instance, mode) => void mountDid(item, instance, mode),
      requestReplica: (item, instance) =>
        void commands.execute(CommandIDs.requestReplica, {
          did: item.did,
          type: item.type,
          instance
        }),
      openMount,
      openMenu,
      startDrag
    };

    widget = new DataWidget(model, mounts, actions);
    sidebar.addSection(widget, { rank: SectionRank.Data, weight: 2 });
  }
};

export default plugin;
