import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';

import { mountNotice } from '../common/notify';
import { NoticeHandlers, showNotice } from '../common/toast';
import { IAFLabEvents, IAFLabSidebar, SectionRank } from '../tokens';
import { allMountFiles, mountFileset } from './api';
import { isActive, MountsModel } from './model';
import { IMountActions } from './MountsPanel';
import { insertMountCode } from './notebook';
import { IAFLabMounts } from './tokens';
import { IMount } from './types';
import { MountsWidget } from './widget';

/**
 * The "Mounts" section: the user's mounts with live progress (pushed over
 * the server's event stream), and the shared {@link IAFLabMounts}.
 */
const plugin: JupyterFrontEndPlugin<IAFLabMounts> = {
  id: 'af-lab:mounts',
  description:
    'Mounts of Rucio DIDs as folders of cached files, with live progress.',
  autoStart: true,
  provides: IAFLabMounts,
  requires: [IAFLabSidebar],
  optional: [INotebookTracker, IDefaultFileBrowser, IAFLabEvents],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IAFLabSidebar,
    tracker: INotebookTracker | null,
    fileBrowser: IDefaultFileBrowser | null,
    events: IAFLabEvents | null
  ): IAFLabMounts => {
    const model = new MountsModel({
      events: events?.stream,
      fallback: events?.fallback
    });

    const openInFileBrowser = async (mount: IMount): Promise<void> => {
      const path =
        mount.mode === 'stream'
          ? (mount.fileset ?? mount.target)
          : mount.target;
      if (app.commands.hasCommand('filebrowser:go-to-path')) {
        await app.commands.execute('filebrowser:go-to-path', { path });
        return;
      }
      if (fileBrowser) {
        await fileBrowser.model.cd(
          mount.mode === 'stream' || mount.did_type === 'file'
            ? PathExt.dirname(path)
            : path
        );
        return;
      }
      throw new Error('No file browser is available in this JupyterLab.');
    };

    const insertCode = (mount: IMount): Promise<void> =>
      insertMountCode({
        app,
        tracker,
        browserPath: fileBrowser?.model.path,
        mount,
        mounts: model.mounts,
        cell: { did: mount.did, mount: mount.id }
      });

    const copy = async (text: string, what: string): Promise<void> => {
      Clipboard.copyToSystem(text);
      Notification.success(`Copied ${what}.`, { autoClose: 2500 });
    };

    const actions: IMountActions = {
      openFolder: openInFileBrowser,
      insertCode,
      copy,
      paths: async mount => {
        const files = await allMountFiles(mount.id, 'done');
        return files
          .map(f => f.location)
          .filter((l): l is string => !!l)
          .join('\n');
      },
      fileset: mount => mountFileset(mount.id, 'json'),
      confirmUnmount: async mount => {
        const result = await showDialog({
          title: `Unmount ${mount.did}?`,
          body:
            `This removes ${mount.target} from your workspace` +
            (isActive(mount) ? ' and stops its transfer' : '') +
            '. Cached copies stay in the shared cache until space is needed; ' +
            'files of your own in that folder are never deleted.',
          buttons: [
            Dialog.cancelButton(),
            Dialog.warnButton({ label: 'Unmount' })
          ]
        });
        return result.button.accept;
      }
    };

    const widget = new MountsWidget(model, actions);
    sidebar.addSection(widget, {
      rank: SectionRank.Mounts,
      expanded: false
    });

    // Toasts only for this session's mounts, each with its next step.
    const states = new Map<string, string>();
    model.changed.connect(() => {
      for (const mount of model.mounts) {
        const before = states.get(mount.id);
        states.set(mount.id, mount.state);
        const notice = mountNotice(mount, before, model.own.has(mount.id));
        if (!notice) {
          continue;
        }
        const run: NoticeHandlers = {
          'open-folder': () => openInFileBrowser(mount),
          'insert-code': () => insertCode(mount),
          retry: () => model.retry(mount.id),
          show: () => {
            sidebar.activateSection(widget);
            widget.highlight(mount.id);
          }
        };
        showNotice(notice, run);
      }
    });

    return {
      model,
      show: (mountId?: string) => {
        sidebar.activateSection(widget);
        widget.highlight(mountId ?? null);
      },
      openInFileBrowser
    };
  }
};

export default plugin;
