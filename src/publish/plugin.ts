import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import {
  FileBrowser,
  FileDialog,
  IDefaultFileBrowser,
  IFileBrowserFactory
} from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Contents } from '@jupyterlab/services';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { EventStream } from '../common/eventStream';
import { publishNotice } from '../common/notify';
import { NoticeHandlers, showNotice } from '../common/toast';
import { describeError } from '../request';
import {
  IAFLabEvents,
  IAFLabSettings,
  IAFLabSidebar,
  SectionRank
} from '../tokens';
import { showPublishDialog } from './dialog';
import { jobTitle } from './format';
import { publishIcon } from './icons';
import { PublishJobsModel } from './model';
import { IFormValues, IPublishTarget, valuesFromJob } from './PublishForm';
import { PublishSection } from './widget';

/**
 * Open the Publish dialog. Arguments (all optional): `paths` (workspace
 * paths; default: the file-browser selection, else a file picker) and
 * `notebook` (provenance; default: the current notebook).
 */
export const PUBLISH_COMMAND = 'af-lab:publish';

/**
 * Publish: the "Publish to Rucio…" command (file-browser context menu,
 * palette, sidebar button), its dialog, and the sidebar section listing the
 * publish jobs with live progress.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'af-lab:publish',
  description:
    'Publish workspace files and folders to Rucio, with progress and provenance.',
  autoStart: true,
  requires: [IAFLabSidebar, IAFLabSettings],
  optional: [
    IDefaultFileBrowser,
    IFileBrowserFactory,
    INotebookTracker,
    ICommandPalette,
    IAFLabEvents
  ],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IAFLabSidebar,
    settings: IAFLabSettings,
    defaultBrowser: FileBrowser | null,
    factory: IFileBrowserFactory | null,
    notebooks: INotebookTracker | null,
    palette: ICommandPalette | null,
    events: IAFLabEvents | null
  ): void => {
    const stream = events?.stream ?? new EventStream({ topics: ['publish'] });
    const model = new PublishJobsModel({
      stream,
      fallback: events?.fallback
    });
    model.start();

    const section = new PublishSection({
      model,
      onPublish: () => void app.commands.execute(PUBLISH_COMMAND),
      onPublishAgain: job =>
        void app.commands.execute(PUBLISH_COMMAND, {
          paths: job.request?.paths ?? [],
          notebook: job.request?.notebook ?? null,
          initial: valuesFromJob(job) as ReadonlyPartialJSONObject
        }),
      showInData: did =>
        void app.commands.execute('af-lab:data-show-did', { did })
    });
    sidebar.addSection(section, {
      rank: SectionRank.Publish,
      expanded: false
    });

    const showJobs = () => sidebar.activateSection(section);
    model.jobEnded.connect((_, job) => {
      const notice = publishNotice(job, jobTitle(job), model.own.has(job.id));
      if (!notice) {
        return;
      }
      const run: NoticeHandlers = {
        retry: () => model.retry(job.id),
        show: showJobs,
        'show-in-data': () =>
          app.commands.execute('af-lab:data-show-did', {
            did: job.did ?? '',
            instance: job.request?.instance ?? ''
          })
      };
      showNotice(notice, run);
    });

    const browser = (): FileBrowser | null =>
      factory?.tracker.currentWidget ?? defaultBrowser;

    const localPath = (path: string): string =>
      app.serviceManager.contents.localPath(path);

    const selection = (): IPublishTarget[] => {
      const current = browser();
      if (!current) {
        return [];
      }
      return Array.from(current.selectedItems()).map(toTarget(localPath));
    };

    const pick = async (): Promise<IPublishTarget[]> => {
      const current = browser();
      if (!current) {
        return [];
      }
      const result = await FileDialog.getOpenFiles({
        manager: current.model.manager,
        title: 'Choose files or folders to publish to Rucio'
      });
      if (!result.button.accept || !result.value) {
        return [];
      }
      return result.value.map(toTarget(localPath));
    };

    const currentNotebook = (): string | null => {
      const path = notebooks?.currentWidget?.context.path;
      return path ? localPath(path) : null;
    };

    app.commands.addCommand(PUBLISH_COMMAND, {
      label: args =>
        args.isPalette
          ? 'Publish Selected Files to Rucio…'
          : 'Publish to Rucio…',
      caption:
        'Copy the selected files or folders to Rucio storage and register them, with provenance',
      icon: args => (args.isPalette ? undefined : publishIcon),
      execute: async args => {
        try {
          let targets: IPublishTarget[];
          if (Array.isArray(args.paths) && args.paths.length > 0) {
            targets = await statPaths(app, args.paths as string[]);
          } else {
            targets = selection();
            if (targets.length === 0) {
              targets = await pick();
            }
          }
          if (targets.length === 0) {
            return null;
          }
          const notebook =
            typeof args.notebook === 'string' || args.notebook === null
              ? (args.notebook as string | null)
              : currentNotebook();
          const initial =
            args.initial && typeof args.initial === 'object'
              ? (args.initial as Partial<IFormValues>)
              : undefined;
          const job = await showPublishDialog({
            targets,
            notebook,
            initial,
            defaultInstance: settings.defaultInstance
          });
          if (job) {
            model.own.add(job.id);
            model.upsert(job);
            showJobs();
          }
          return job;
        } catch (error) {
          Notification.error(`Publish to Rucio: ${describeError(error)}`, {
            autoClose: false
          });
          return null;
        }
      }
    });

    app.contextMenu.addItem({
      command: PUBLISH_COMMAND,
      selector: '.jp-DirListing-item[data-isdir]',
      rank: 60
    });
    palette?.addItem({
      command: PUBLISH_COMMAND,
      category: 'Analysis Facility'
    });
  }
};

export default plugin;

function toTarget(
  localPath: (path: string) => string
): (item: Contents.IModel) => IPublishTarget {
  return item => ({
    path: localPath(item.path),
    isDir: item.type === 'directory',
    size: typeof item.size === 'number' ? item.size : null
  });
}

async function statPaths(
  app: JupyterFrontEnd,
  paths: string[]
): Promise<IPublishTarget[]> {
  const contents = app.serviceManager.contents;
  return Promise.all(
    paths.map(async path => {
      let model: Contents.IModel;
      try {
        model = await contents.get(path, { content: false });
      } catch {
        throw new Error(
          `${path} is not in the workspace any more (moved or deleted?).`
        );
      }
      return {
        path: contents.localPath(model.path),
        isDir: model.type === 'directory',
        size: typeof model.size === 'number' ? model.size : null
      };
    })
  );
}
