import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton } from '@jupyterlab/apputils';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { Signal } from '@lumino/signaling';

import { CELL_METADATA_KEY } from '../mounts/notebook';
import { IAFLabMounts } from '../mounts/tokens';
import { MountMode } from '../mounts/types';
import { IAFLabSidebar, SectionRank } from '../tokens';
import { sessionDids } from './api';
import { NOTEBOOK_METADATA_KEY } from './metadata';
import { AttachmentsModel, INotebookHandle, recordAttachments } from './model';
import { AttachmentsWidget } from './widget';

export const CommandIDs = {
  show: 'af-lab:attachments-show'
} as const;

/**
 * "Data used by this notebook": the DIDs a notebook mounted are recorded in
 * its metadata (`metadata.af_lab.attachments`) when code for them enters it
 * (Insert code, drag and drop: cells carrying af-lab cell metadata) and when
 * its kernel mounts them (`%rucio mount`: the server's record of that
 * kernel's session, read after each execution); a sidebar section shows
 * what became of each.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'af-lab:attachments',
  description:
    'Record the DIDs a notebook mounts in its metadata and show whether each is still mounted and still in Rucio.',
  autoStart: true,
  requires: [IAFLabSidebar],
  optional: [INotebookTracker, IAFLabMounts, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IAFLabSidebar,
    tracker: INotebookTracker | null,
    mountsService: IAFLabMounts | null,
    palette: ICommandPalette | null
  ): void => {
    const mounts = mountsService?.model ?? null;
    const model = new AttachmentsModel({ mounts: mounts ?? undefined });
    const widget = new AttachmentsWidget(model);
    sidebar.addSection(widget, {
      rank: SectionRank.Mounts + 50,
      expanded: false
    });

    app.commands.addCommand(CommandIDs.show, {
      label: 'Data Used by This Notebook',
      caption:
        'The DIDs this notebook mounted: mounted, stale or gone from Rucio',
      execute: () => sidebar.activateSection(widget)
    });
    palette?.addItem({
      command: CommandIDs.show,
      category: 'Analysis Facility'
    });

    if (!tracker) {
      return;
    }
    const handles = new WeakMap<NotebookPanel, INotebookHandle>();
    const handleOf = (panel: NotebookPanel): INotebookHandle => {
      let handle = handles.get(panel);
      if (!handle) {
        const changed = new Signal<NotebookPanel, unknown>(panel);
        panel.context.ready.then(() => {
          changed.emit(undefined);
          panel.model?.metadataChanged.connect(() => changed.emit(undefined));
        });
        handle = {
          get path() {
            return panel.context.path;
          },
          getSection: () => panel.model?.getMetadata(NOTEBOOK_METADATA_KEY),
          setSection: value =>
            panel.model?.setMetadata(NOTEBOOK_METADATA_KEY, value),
          sectionChanged: changed
        };
        handles.set(panel, handle);
      }
      return handle;
    };

    const follow = () => {
      const panel = tracker.currentWidget;
      model.setNotebook(panel ? handleOf(panel) : null);
    };
    tracker.currentChanged.connect(follow);
    follow();

    // Code for a DID entering a notebook (Insert code, drag and drop, paste)
    // carries af-lab cell metadata: record that DID.
    const modeOf = (meta: Record<string, unknown>, did: string) => {
      const byId =
        typeof meta.mount === 'string' ? mounts?.get(meta.mount) : undefined;
      const instance =
        typeof meta.instance === 'string' ? meta.instance : byId?.instance;
      const mount = byId ?? mounts?.forDid(did, instance)[0];
      return {
        mode: (mount?.mode ?? 'cache') as MountMode,
        instance: instance ?? mount?.instance
      };
    };
    const onCells = (
      panel: NotebookPanel,
      type: string,
      cells: readonly { getMetadata(key: string): any }[]
    ) => {
      if (type !== 'add' && type !== 'set') {
        return;
      }
      const additions = [];
      for (const cell of cells) {
        const meta = cell.getMetadata(CELL_METADATA_KEY);
        if (
          meta &&
          typeof meta === 'object' &&
          typeof meta.did === 'string' &&
          meta.did.includes(':')
        ) {
          const { mode, instance } = modeOf(meta, meta.did);
          additions.push({
            did: meta.did,
            mode,
            ...(instance ? { instance } : {})
          });
        }
      }
      if (additions.length) {
        recordAttachments(handleOf(panel), additions);
      }
    };
    tracker.widgetAdded.connect((_, panel) => {
      // After loading: the cells a notebook opens with are not new.
      void panel.context.ready.then(() => {
        panel.model?.cells.changed.connect((_cells, change) =>
          onCells(panel, change.type, change.newValues)
        );
      });
    });

    // What the kernel mounted (%rucio mount, FacilityClient.mount): the
    // kernel reports it to the server after each cell; read it once the
    // execution is over (one request for a burst of cells).
    const timers = new Map<NotebookPanel, number>();
    const readSession = async (panel: NotebookPanel) => {
      const handle = handleOf(panel);
      try {
        const dids = await sessionDids(
          handle.path,
          panel.sessionContext.session?.kernel?.id
        );
        const fresh = dids
          .filter(d => !model.dismissed(handle, d))
          .map(d => ({
            did: d.did,
            mode: d.mode ?? ('cache' as MountMode),
            ...(d.instance ? { instance: d.instance } : {})
          }));
        if (fresh.length) {
          recordAttachments(handle, fresh);
        }
      } catch (reason) {
        console.warn('af-lab: could not read what the kernel mounted', reason);
      }
    };
    NotebookActions.executed.connect((_, { notebook }) => {
      const panel = tracker.find(p => p.content === notebook);
      if (!panel) {
        return;
      }
      window.clearTimeout(timers.get(panel));
      timers.set(
        panel,
        window.setTimeout(() => {
          timers.delete(panel);
          void readSession(panel);
        }, 500)
      );
    });

    // A mount of an attached DID changed state (ready, failed, removed): the
    // states shown are resolved again.
    let lastSeen = '';
    mounts?.changed.connect(() => {
      const dids = new Set(model.attachments.map(a => a.did));
      const seen = mounts.mounts
        .filter(m => dids.has(m.did))
        .map(m => `${m.id}:${m.state}`)
        .sort()
        .join(',');
      if (seen !== lastSeen) {
        lastSeen = seen;
        model.scheduleRefresh();
      }
    });

    // A toolbar button on every notebook opens the section.
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (panel: NotebookPanel) => {
        const button = new ToolbarButton({
          className: 'jp-AFLab-attachmentsButton',
          label: 'Inputs',
          tooltip: 'Data used by this notebook (af-lab)',
          onClick: () => {
            app.shell.activateById(panel.id);
            sidebar.activateSection(widget);
          }
        });
        panel.toolbar.insertItem(10, 'af-lab-attachments', button);
        return button;
      }
    });
  }
};

export default plugin;
