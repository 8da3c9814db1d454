/**
 * What the Clusters view does with the rest of JupyterLab: dask-labextension's
 * dashboard panes, client code in notebooks, dragging a cluster into a cell.
 *
 * ## Dashboards: reuse dask-labextension's panes
 *
 * af-lab clusters are dask-labextension clusters too (the server bridge in
 * `af_lab/clusters/labextension.py`; ids are UUIDs, dask-labextension's route
 * pattern), so its proxy `<baseUrl>dask/dashboard/<id>/...` serves their
 * dashboards and its frontend can show them. dask-labextension 7's frontend
 * keeps ONE dashboard URL (the box at the top of its sidebar) and opens
 * panes for the plots listed by that dashboard's `individual-plots.json`.
 * It exports no token, but it registers commands, which is what we call:
 *
 * 1. `dask:populate-dashboard-url {url}` sets its URL to
 *    `dask/dashboard/<id>` — exactly what its own cluster list sets when a
 *    cluster is clicked (`_setActiveById`);
 * 2. `dask:launch-dashboard {item: {route, label}}` opens (or re-activates)
 *    a pane, `dask:launch-layout` opens the user's default layout (Task
 *    Stream, Workers Memory, Progress by default; its `defaultLayout`
 *    setting).
 *
 * Consequence of its one-URL design: opening the dashboard of another cluster
 * points the open Dask panes at that cluster (the same happens in
 * dask-labextension's own list). Without dask-labextension in the page we
 * open the proxied (or direct) dashboard in a browser tab.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Clipboard } from '@jupyterlab/apputils';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { MimeData } from '@lumino/coreutils';
import { Drag } from '@lumino/dragdrop';

import { fetchDashboardPlots, proxiedDashboardBase } from './api';
import { ICluster } from './types';

/**
 * dask-labextension's command ids (v6/v7).
 */
export const DaskCommandIDs = {
  launchPanel: 'dask:launch-dashboard',
  launchLayout: 'dask:launch-layout',
  populateUrl: 'dask:populate-dashboard-url'
} as const;

/**
 * One dashboard plot, as dask-labextension's `IDashboardItem`.
 */
export interface IDashboardItem {
  route: string;
  label: string;
  key: string;
}

/**
 * The plots most people want, in this order, shown first.
 */
export const COMMON_PLOTS = [
  'Task Stream',
  'Progress',
  'Workers Memory',
  'Cluster Memory',
  'Workers',
  'Graph',
  'Cpu',
  'Occupancy',
  'Profile'
];

const GPU_PLOT = /\b(gpu|rmm)\b/i;

/**
 * Turn `individual-plots.json` into dashboard items, as dask-labextension
 * does ("Individual Task Stream" → "Task Stream"). GPU plots are left out for
 * clusters without GPUs (they only show errors there).
 */
export function dashboardItems(
  plots: Record<string, string>,
  withGpu: boolean
): IDashboardItem[] {
  const items: IDashboardItem[] = [];
  for (const [name, route] of Object.entries(plots)) {
    const label = name.replace(/^Individual /, '');
    if (!withGpu && GPU_PLOT.test(label)) {
      continue;
    }
    items.push({ route, label, key: label });
  }
  const rank = (label: string) => {
    const i = COMMON_PLOTS.indexOf(label);
    return i === -1 ? COMMON_PLOTS.length : i;
  };
  return items.sort(
    (a, b) => rank(a.label) - rank(b.label) || a.label.localeCompare(b.label)
  );
}

/**
 * The URL dask-labextension's dashboard box gets for a cluster:
 * `dask/dashboard/<id>` (relative to the base URL, as its own list sets it).
 */
export function daskDashboardUrl(cluster: ICluster): string {
  return `dask/dashboard/${cluster.id}`;
}

/**
 * Opens the dashboards of af-lab clusters in dask-labextension's panes.
 */
export class DaskDashboards {
  constructor(
    app: JupyterFrontEnd,
    settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {
    this._app = app;
    this._settings = settings;
  }

  /**
   * Whether dask-labextension's frontend is in this page.
   */
  get available(): boolean {
    const { commands } = this._app;
    return (
      commands.hasCommand(DaskCommandIDs.launchPanel) &&
      commands.hasCommand(DaskCommandIDs.populateUrl)
    );
  }

  /**
   * Whether the cluster's dashboard can be shown in panes here (proxied by
   * this server and dask-labextension present).
   */
  canShowPanes(cluster: ICluster): boolean {
    return (
      this.available &&
      proxiedDashboardBase(cluster.dashboard_url, this._settings) !== null
    );
  }

  /**
   * The cluster whose dashboard the Dask panes show (set by this view).
   */
  get shownCluster(): string {
    return this._shown;
  }

  /**
   * The clusters that exist now: if the Dask panes show the dashboard of one
   * that is gone (closed here, in dask-labextension's list, or elsewhere),
   * point them nowhere, so they stop asking a dead dashboard (404s) and say
   * "not connected" truthfully.
   */
  async forgetClosed(alive: readonly string[]): Promise<void> {
    if (!this._shown || alive.includes(this._shown)) {
      return;
    }
    this._shown = '';
    this._plots.clear();
    if (this.available) {
      await this._app.commands.execute(DaskCommandIDs.populateUrl, { url: '' });
    }
  }

  /**
   * The cluster's plots (fetched once per cluster).
   */
  async items(cluster: ICluster): Promise<IDashboardItem[]> {
    let plots = this._plots.get(cluster.id);
    if (!plots) {
      plots = fetchDashboardPlots(cluster.dashboard_url, this._settings);
      this._plots.set(cluster.id, plots);
      plots.catch(() => this._plots.delete(cluster.id));
    }
    return dashboardItems(await plots, (cluster.options?.gpus ?? 0) > 0);
  }

  /**
   * Open one plot of the cluster in a dask-labextension pane, or its default
   * layout (`item` undefined).
   */
  async open(cluster: ICluster, item?: IDashboardItem): Promise<void> {
    if (!this.canShowPanes(cluster)) {
      this.openInBrowser(cluster);
      return;
    }
    const { commands } = this._app;
    // Checks that the dashboard answers, and gives dask-labextension's own
    // check of the same URL (started just before) time to finish.
    const check = this.items(cluster);
    await commands.execute(DaskCommandIDs.populateUrl, {
      url: daskDashboardUrl(cluster)
    });
    this._shown = cluster.id;
    await check;
    if (item) {
      await commands.execute(DaskCommandIDs.launchPanel, {
        item: { route: item.route, label: item.label, key: item.key }
      });
      return;
    }
    // The layout needs dask-labextension's list of plots for this URL.
    if (commands.hasCommand(DaskCommandIDs.launchLayout)) {
      await waitFor(() => commands.isEnabled(DaskCommandIDs.launchLayout));
      if (commands.isEnabled(DaskCommandIDs.launchLayout)) {
        await commands.execute(DaskCommandIDs.launchLayout);
        return;
      }
    }
    const items = await this.items(cluster);
    const first = items.find(i => i.label === 'Task Stream') ?? items[0];
    if (first) {
      await commands.execute(DaskCommandIDs.launchPanel, {
        item: { route: first.route, label: first.label, key: first.key }
      });
    }
  }

  /**
   * The full dashboard in a new browser tab (proxied when possible).
   */
  openInBrowser(cluster: ICluster): void {
    const base = proxiedDashboardBase(cluster.dashboard_url, this._settings);
    const url = base
      ? `${base.replace(/\/$/, '')}/status`
      : cluster.dashboard_url;
    window.open(url, '_blank', 'noopener');
  }

  private _app: JupyterFrontEnd;
  private _settings: ServerConnection.ISettings;
  private _plots = new Map<string, Promise<Record<string, string>>>();
  private _shown = '';
}

async function waitFor(
  condition: () => boolean,
  timeoutMs = 8000,
  stepMs = 100
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition() && Date.now() < end) {
    await new Promise(resolve => setTimeout(resolve, stepMs));
  }
}

// ------------------------------------------------------------ client code

/**
 * The code that connects a notebook to the cluster. Every cluster speaks TLS,
 * so the kernel fetches the cluster's client certificate from af-lab itself
 * (the same text as the server's `snippet`); no key ever reaches the browser.
 */
export function clientCode(cluster: Pick<ICluster, 'id'>): string {
  const id = cluster.id.replace(/["\\]/g, '');
  return [
    'from af_lab.kernel import FacilityClient',
    '',
    `client = FacilityClient.discover().dask_client("${id}")`,
    'client'
  ].join('\n');
}

/**
 * The outcome of {@link insertClientCode}, written for the user.
 */
export interface IInsertResult {
  inserted: boolean;
  message: string;
}

/**
 * Put the client code into the active notebook: into the active cell when it
 * is an empty code cell, else into a new code cell below it. Without a
 * notebook the code is copied to the clipboard.
 */
export async function insertClientCode(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  cluster: ICluster
): Promise<IInsertResult> {
  const code = clientCode(cluster);
  const current = app.shell.currentWidget;
  const panel: NotebookPanel | null =
    tracker && current && tracker.has(current)
      ? (current as NotebookPanel)
      : (tracker?.currentWidget ?? null);
  if (!panel) {
    Clipboard.copyToSystem(code);
    return {
      inserted: false,
      message:
        'No notebook is open, so the client code was copied to the clipboard. ' +
        'Open a notebook and paste it into a cell.'
    };
  }
  await panel.context.ready;
  const notebook = panel.content;
  const active = notebook.activeCell;
  const reuse =
    active !== null &&
    active.model.type === 'code' &&
    active.model.sharedModel.getSource().trim() === '';
  if (!reuse) {
    if (notebook.widgets.length > 0) {
      NotebookActions.insertBelow(notebook);
    } else {
      notebook.model?.sharedModel.insertCell(0, {
        cell_type: 'code',
        source: ''
      });
      notebook.activeCellIndex = 0;
    }
    if (notebook.activeCell && notebook.activeCell.model.type !== 'code') {
      NotebookActions.changeCellType(notebook, 'code');
    }
  }
  notebook.activeCell?.model.sharedModel.setSource(code);
  app.shell.activateById(panel.id);
  return {
    inserted: true,
    message: `Client code for ${cluster.name} inserted into ${panel.title.label}: run the cell to connect.`
  };
}

// ------------------------------------------------------------ drag and drop

const DRAG_THRESHOLD = 5;

/**
 * Let the user drag a cluster card into a notebook, as dask-labextension
 * does: the drop inserts a code cell with the client code (the notebook
 * accepts `application/vnd.jupyter.cells`; editors take `text/plain`).
 *
 * Call on `mousedown` of the card; ignores presses on buttons and inputs.
 */
export function dragClusterOnMouseDown(
  event: MouseEvent,
  card: HTMLElement,
  cluster: ICluster
): void {
  if (event.button !== 0 || !cluster.scheduler_address) {
    return;
  }
  const target = event.target as HTMLElement | null;
  if (
    target?.closest(
      'button, input, select, textarea, a, summary, pre, .jp-AFLab-ClusterCard-address'
    )
  ) {
    return;
  }
  const startX = event.clientX;
  const startY = event.clientY;
  let drag: Drag | null = null;

  const cleanup = () => {
    document.removeEventListener('mousemove', onMove, true);
    document.removeEventListener('mouseup', onUp, true);
  };
  const onUp = () => cleanup();
  const onMove = (move: MouseEvent) => {
    if (drag) {
      return;
    }
    const dx = Math.abs(move.clientX - startX);
    const dy = Math.abs(move.clientY - startY);
    if (dx < DRAG_THRESHOLD && dy < DRAG_THRESHOLD) {
      return;
    }
    move.preventDefault();
    move.stopPropagation();
    cleanup();
    window.getSelection()?.removeAllRanges(); // the press may have started one
    const code = clientCode(cluster);
    const image = document.createElement('div');
    image.className = 'jp-AFLab-ClusterDragImage';
    image.textContent = `${cluster.name}: client code`;
    const mimeData = new MimeData();
    mimeData.setData('text/plain', code);
    mimeData.setData('application/vnd.jupyter.cells', [
      {
        cell_type: 'code',
        source: code,
        outputs: [],
        execution_count: null,
        metadata: {}
      }
    ]);
    drag = new Drag({
      mimeData,
      dragImage: image,
      supportedActions: 'copy',
      proposedAction: 'copy',
      source: card
    });
    card.classList.add('jp-mod-dragging');
    void drag.start(move.clientX, move.clientY).then(() => {
      card.classList.remove('jp-mod-dragging');
      drag = null;
    });
  };
  document.addEventListener('mousemove', onMove, true);
  document.addEventListener('mouseup', onUp, true);
}
