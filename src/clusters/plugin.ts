import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  ICommandPalette,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Menu } from '@lumino/widgets';

import { describeError } from '../request';
import { IAFLabEvents, IAFLabSidebar, SectionRank } from '../tokens';
import {
  COMMON_PLOTS,
  DaskDashboards,
  dragClusterOnMouseDown,
  insertClientCode
} from './lab';
import { ClustersModel } from './model';
import { ICluster, LIVE_STATES } from './types';
import { ClustersWidget } from './widget';
import { plural } from '../common/units';

/**
 * The command ids of the Clusters view.
 */
export const CommandIDs = {
  create: 'af-lab:create-cluster',
  scale: 'af-lab:scale-cluster',
  shutdown: 'af-lab:shutdown-cluster',
  injectClient: 'af-lab:inject-cluster-client',
  openDashboard: 'af-lab:open-cluster-dashboard'
} as const;

const CARD_SELECTOR = '.jp-AFLab-ClusterCard[data-cluster-id]';

/**
 * The "Clusters" section: Dask clusters from the site's profiles, with
 * scaling, HTCondor job states, client code and dask-labextension's
 * dashboard panes.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'af-lab:clusters',
  description:
    'Create, scale and shut down Dask clusters; see their batch jobs and dashboards.',
  autoStart: true,
  requires: [IAFLabSidebar],
  optional: [INotebookTracker, ICommandPalette, IAFLabEvents],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IAFLabSidebar,
    notebooks: INotebookTracker | null,
    palette: ICommandPalette | null,
    events: IAFLabEvents | null
  ): void => {
    const { commands } = app;
    // Kept current by the clusters/… events of the shared stream.
    const model = new ClustersModel({
      events: events?.stream,
      fallback: events?.fallback
    });
    const dashboards = new DaskDashboards(app);
    model.changed.connect(() => {
      const clusters = model.clusters;
      if (clusters) {
        void dashboards
          .forgetClosed(clusters.map(c => c.id))
          .catch(() => undefined); // the panes keep their URL: harmless
      }
    });

    /**
     * The cluster a command is about: `args.id`, else the card the context
     * menu was opened on, else the only live cluster.
     */
    const clusterFor = (args: ReadonlyPartialJSONObject): ICluster | null => {
      if (typeof args.id === 'string') {
        return model.find(args.id) ?? null;
      }
      const node = app.contextMenuHitTest(n => !!n.dataset.clusterId);
      if (node?.dataset.clusterId) {
        return model.find(node.dataset.clusterId) ?? null;
      }
      const live = (model.clusters ?? []).filter(c =>
        LIVE_STATES.includes(c.state)
      );
      return live.length === 1 ? live[0] : null;
    };

    const showSection = () => sidebar.activateSection(widget);

    const confirmShutdown = async (cluster: ICluster): Promise<boolean> => {
      if (!LIVE_STATES.includes(cluster.state)) {
        return true; // dismissing an ended cluster loses nothing
      }
      const jobs =
        cluster.backend !== 'local' ? ' and its batch jobs are removed' : '';
      const result = await showDialog({
        title: `Shut down ${cluster.name}?`,
        body:
          `Its ${plural(cluster.workers, 'worker')} stop${jobs}; ` +
          'computations still running on it are lost and notebooks connected to it lose their client.',
        buttons: [
          Dialog.cancelButton(),
          Dialog.warnButton({ label: 'Shut down' })
        ]
      });
      return result.button.accept;
    };

    const shutdown = async (cluster: ICluster, confirm = true) => {
      if (confirm && !(await confirmShutdown(cluster))) {
        return;
      }
      try {
        await model.shutdown(cluster.id);
      } catch {
        // shown on the card
      }
    };

    const inject = async (cluster: ICluster) => {
      try {
        const result = await insertClientCode(app, notebooks, cluster);
        if (result.inserted) {
          Notification.success(result.message, { autoClose: 4000 });
        } else {
          Notification.warning(result.message, { autoClose: 8000 });
        }
      } catch (error) {
        Notification.error(
          `The client code could not be inserted: ${describeError(error)}`
        );
      }
    };

    const openDashboardMenu = async (
      cluster: ICluster,
      anchor: HTMLElement
    ): Promise<void> => {
      const menu = new Menu({ commands });
      menu.addClass('jp-AFLab-DashboardMenu');
      const args = (extra: ReadonlyPartialJSONObject) => ({
        id: cluster.id,
        ...extra
      });
      if (dashboards.canShowPanes(cluster)) {
        const items = await dashboards.items(cluster);
        menu.addItem({
          command: CommandIDs.openDashboard,
          args: args({ layout: true })
        });
        menu.addItem({ type: 'separator' });
        const common = items.filter(i => COMMON_PLOTS.includes(i.label));
        const rest = items.filter(i => !COMMON_PLOTS.includes(i.label));
        for (const item of common) {
          menu.addItem({
            command: CommandIDs.openDashboard,
            args: args({ route: item.route, label: item.label })
          });
        }
        if (rest.length > 0) {
          const more = new Menu({ commands });
          more.title.label = 'More plots';
          for (const item of rest) {
            more.addItem({
              command: CommandIDs.openDashboard,
              args: args({ route: item.route, label: item.label })
            });
          }
          menu.addItem({ type: 'submenu', submenu: more });
        }
        menu.addItem({ type: 'separator' });
      }
      menu.addItem({
        command: CommandIDs.openDashboard,
        args: args({ browser: true })
      });
      menu.aboutToClose.connect(() => {
        window.requestAnimationFrame(() => menu.dispose());
      });
      const rect = anchor.getBoundingClientRect();
      menu.open(rect.left, rect.bottom + 2);
    };

    const widget = new ClustersWidget({
      model,
      shownDashboard: () => dashboards.shownCluster,
      actions: {
        shutdown: cluster => shutdown(cluster),
        insertClientCode: inject,
        copy: text => Clipboard.copyToSystem(text),
        openDashboard: openDashboardMenu,
        startDrag: dragClusterOnMouseDown
      }
    });
    sidebar.addSection(widget, {
      rank: SectionRank.Clusters,
      expanded: false
    });

    // ------------------------------------------------------------ commands

    commands.addCommand(CommandIDs.create, {
      label: args => (args.isPalette ? 'Create Dask Cluster…' : 'New Cluster…'),
      caption:
        'Create a Dask cluster from one of the site profiles (without options: open the form)',
      execute: async args => {
        const profile = typeof args.profile === 'string' ? args.profile : '';
        showSection();
        if (args.options && typeof args.options === 'object') {
          if (!model.profiles) {
            await model.loadProfiles();
          }
          return model.create(
            profile || model.profiles?.default || '',
            args.options as Record<string, unknown>,
            typeof args.name === 'string' ? args.name : ''
          );
        }
        model.requestUI({ kind: 'create', profile: profile || undefined });
        return undefined;
      }
    });

    commands.addCommand(CommandIDs.scale, {
      label: args =>
        typeof args.workers === 'number'
          ? `Scale Cluster to ${plural(args.workers, 'Worker')}`
          : 'Scale Cluster…',
      caption: 'Change the number of workers of a Dask cluster',
      isEnabled: args => clusterFor(args)?.state === 'running',
      execute: async args => {
        const cluster = clusterFor(args);
        if (!cluster) {
          return;
        }
        if (typeof args.workers === 'number') {
          return model.scale(cluster.id, args.workers);
        }
        if (args.adapt !== undefined) {
          return model.adapt(
            cluster.id,
            (args.adapt as { minimum: number; maximum: number } | null) ?? null
          );
        }
        showSection();
        model.requestUI({ kind: 'scale', id: cluster.id });
        return undefined;
      }
    });

    commands.addCommand(CommandIDs.shutdown, {
      label: 'Shut Down Cluster',
      caption:
        'Stop the workers, remove the batch jobs and stop the scheduler of a Dask cluster',
      isEnabled: args => {
        const cluster = clusterFor(args);
        return !!cluster && cluster.state !== 'stopping';
      },
      execute: async args => {
        const cluster = clusterFor(args);
        if (cluster) {
          await shutdown(cluster, args.confirm !== false);
        }
      }
    });

    commands.addCommand(CommandIDs.injectClient, {
      label: 'Insert Cluster Client Code',
      caption:
        'Insert code that connects the notebook to a Dask cluster (with its TLS certificate)',
      isEnabled: args => !!clusterFor(args)?.scheduler_address,
      execute: async args => {
        const cluster = clusterFor(args);
        if (cluster) {
          await inject(cluster);
        }
      }
    });

    commands.addCommand(CommandIDs.openDashboard, {
      label: args => {
        if (args.browser) {
          return 'Full Dashboard in a Browser Tab';
        }
        if (args.layout) {
          return 'Default Layout (Task Stream, Memory, Progress)';
        }
        if (typeof args.label === 'string') {
          return args.label;
        }
        return 'Open Cluster Dashboard';
      },
      caption: "Open a Dask cluster's dashboard in dask-labextension's panes",
      isEnabled: args => !!clusterFor(args)?.dashboard_url,
      execute: async args => {
        const cluster = clusterFor(args);
        if (!cluster) {
          return;
        }
        try {
          if (args.browser) {
            dashboards.openInBrowser(cluster);
          } else if (typeof args.route === 'string') {
            const label =
              typeof args.label === 'string' ? args.label : args.route;
            await dashboards.open(cluster, {
              route: args.route,
              label,
              key: label
            });
          } else {
            await dashboards.open(cluster);
          }
        } catch (error) {
          Notification.error(
            `The dashboard of ${cluster.name} could not be opened: ${describeError(error)}`
          );
        }
      }
    });

    app.contextMenu.addItem({
      command: CommandIDs.openDashboard,
      selector: CARD_SELECTOR,
      rank: 1
    });
    app.contextMenu.addItem({
      command: CommandIDs.scale,
      selector: CARD_SELECTOR,
      rank: 2
    });
    app.contextMenu.addItem({
      command: CommandIDs.injectClient,
      selector: CARD_SELECTOR,
      rank: 3
    });
    app.contextMenu.addItem({
      command: CommandIDs.shutdown,
      selector: CARD_SELECTOR,
      rank: 4
    });

    if (palette) {
      palette.addItem({
        command: CommandIDs.create,
        category: 'Analysis Facility',
        args: { isPalette: true }
      });
    }
  }
};

export default plugin;
