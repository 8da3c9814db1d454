import { JupyterFrontEnd } from '@jupyterlab/application';
import { PageConfig, PathExt } from '@jupyterlab/coreutils';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { MimeData } from '@lumino/coreutils';
import { Drag } from '@lumino/dragdrop';

import { identifier, mountRoot, snippetForMount } from './snippet';
import { IMount } from './types';

/**
 * The mime type notebooks accept cells from (JupyterLab's own cell drag).
 */
export const JUPYTER_CELL_MIME = 'application/vnd.jupyter.cells';

/**
 * The cell metadata key af-lab puts on the cells it writes: which DID the
 * code reads and, while its mount is being made, a marker to find the cell
 * again.
 */
export const CELL_METADATA_KEY = 'af_lab';

/**
 * A code cell (nbformat JSON) with the given source.
 */
export function codeCell(
  source: string,
  metadata: Record<string, unknown> = {}
): Record<string, any> {
  return {
    cell_type: 'code',
    source,
    metadata,
    outputs: [],
    execution_count: null
  };
}

/**
 * Where a new notebook may be created: the file browser's folder, unless it
 * is a mount or inside one (mounts are read-only views of the shared cache,
 * never a place for the user's files); then the workspace root.
 */
export function notebookFolder(
  browserPath: string | null | undefined,
  mountTargets: readonly string[],
  mountRoot: string
): string {
  const cwd = (browserPath ?? '').replace(/^\/+|\/+$/g, '');
  const inside = (dir: string) =>
    !!dir && (cwd === dir || cwd.startsWith(`${dir}/`));
  if (inside(mountRoot) || mountTargets.some(t => inside(t))) {
    return '';
  }
  return cwd;
}

/**
 * Put code into a notebook: below the active cell of the current notebook
 * (or into it, if it is an empty code cell); with no notebook open, a new one
 * is created. The notebook is brought to the front with the cell active.
 */
export async function insertIntoNotebook(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  source: string,
  metadata: Record<string, unknown> = {},
  options: { cwd?: string } = {}
): Promise<NotebookPanel> {
  let panel = tracker?.currentWidget ?? null;
  if (!panel) {
    // With the default kernel named, no "Select Kernel" dialog interrupts.
    const specs = app.serviceManager.kernelspecs;
    await specs.ready;
    const kernelName = specs.specs?.default;
    if (options.cwd !== undefined) {
      // Not `notebook:create-new`: it reads '' (the root) as "the file
      // browser's folder", which may be a mount.
      const model = (await app.commands.execute('docmanager:new-untitled', {
        path: options.cwd,
        type: 'notebook'
      })) as { path: string } | undefined;
      if (!model) {
        throw new Error('Could not create a notebook.');
      }
      panel = (await app.commands.execute('docmanager:open', {
        path: model.path,
        factory: 'Notebook',
        ...(kernelName ? { kernel: { name: kernelName } } : {})
      })) as NotebookPanel;
    } else {
      panel = (await app.commands.execute(
        'notebook:create-new',
        kernelName ? { kernelName } : {}
      )) as NotebookPanel;
    }
  }
  await panel.context.ready;
  const notebook = panel.content;
  const model = notebook.model;
  if (!model) {
    throw new Error('The notebook has no model.');
  }
  const active = notebook.activeCell;
  let index: number;
  if (
    active &&
    active.model.type === 'code' &&
    active.model.sharedModel.getSource().trim() === ''
  ) {
    index = notebook.activeCellIndex;
    active.model.sharedModel.setSource(source);
    for (const [key, value] of Object.entries(metadata)) {
      active.model.sharedModel.setMetadata(key, value as any);
    }
  } else {
    index = active ? notebook.activeCellIndex + 1 : model.cells.length;
    model.sharedModel.insertCell(index, codeCell(source, metadata) as any);
  }
  notebook.activeCellIndex = index;
  notebook.deselectAll();
  app.shell.activateById(panel.id);
  notebook.activeCell?.node.scrollIntoView({ block: 'nearest' });
  return panel;
}

/**
 * Insert the code that reads `mount` into the current notebook, its paths
 * relative to that notebook; with none open, into a new notebook in the file
 * browser's folder unless that is a mount. `cell` is the cell's af-lab
 * metadata.
 */
export async function insertMountCode(options: {
  app: JupyterFrontEnd;
  tracker: INotebookTracker | null;
  browserPath: string | null | undefined;
  mount: IMount;
  mounts: readonly IMount[];
  cell: Record<string, unknown>;
}): Promise<void> {
  const { app, tracker, mount, mounts } = options;
  const current = tracker?.currentWidget;
  const notebookDir = current ? PathExt.dirname(current.context.path) : '';
  const cells = current?.content.model?.cells;
  const sources: string[] = [];
  for (let i = 0; i < (cells?.length ?? 0); i++) {
    sources.push(cells!.get(i).sharedModel.getSource());
  }
  await insertIntoNotebook(
    app,
    tracker,
    withFreshNames(
      snippetForMount(mount, PageConfig.getOption('serverRoot'), notebookDir),
      identifier(mount.did),
      sources
    ),
    { [CELL_METADATA_KEY]: options.cell },
    {
      cwd: notebookFolder(
        options.browserPath,
        mounts.map(m => m.target),
        mountRoot(mounts)
      )
    }
  );
}

/**
 * The snippet with its variables (`<prefix>_files`, `<prefix>_path`, ...)
 * renamed `<prefix>2_…`, `<prefix>3_…` when the notebook already assigns
 * them in another cell with other code, so a second insert (another mode,
 * another mount of the same name) never overwrites the first one's data.
 */
export function withFreshNames(
  snippet: string,
  prefix: string,
  cellSources: readonly string[]
): string {
  const assigns = (p: string) =>
    new RegExp(`^${p}_(files|path|fileset|fileset_file)\\s*=`, 'm');
  const taken = (p: string) =>
    cellSources.some(source => source !== snippet && assigns(p).test(source));
  if (!taken(prefix)) {
    return snippet;
  }
  let n = 2;
  while (taken(`${prefix}${n}`)) {
    n++;
  }
  return snippet.replace(new RegExp(`\\b${prefix}_`, 'g'), `${prefix}${n}_`);
}

/**
 * Replace the source of the cells that carry `marker` in their af-lab
 * metadata (cells dropped before their mount's real path was known).
 *
 * @returns how many cells were updated
 */
export function updateMarkedCells(
  tracker: INotebookTracker | null,
  marker: string,
  source: string | null
): number {
  let updated = 0;
  tracker?.forEach(panel => {
    const cells = panel.content.model?.cells;
    if (!cells) {
      return;
    }
    for (let i = 0; i < cells.length; i++) {
      const cell = cells.get(i);
      const meta = cell.sharedModel.getMetadata(CELL_METADATA_KEY) as
        Record<string, unknown> | undefined;
      if (meta && meta.marker === marker) {
        if (source !== null && cell.sharedModel.getSource() !== source) {
          cell.sharedModel.setSource(source);
        }
        const rest = { ...meta };
        delete rest.marker;
        cell.sharedModel.setMetadata(CELL_METADATA_KEY, rest as any);
        updated++;
      }
    }
  });
  return updated;
}

/**
 * Start dragging a code cell, the way dask-labextension does: notebooks take
 * `application/vnd.jupyter.cells`, other targets `text/plain`.
 *
 * @returns the drop action (`'none'` when the drag was cancelled)
 */
export async function startCellDrag(options: {
  source: string;
  metadata: Record<string, unknown>;
  label: string;
  clientX: number;
  clientY: number;
  /**
   * The notebooks a drop may land in (to put the cell below the one it was
   * dropped on the lower half of).
   */
  tracker?: INotebookTracker | null;
}): Promise<Drag.DropAction> {
  const image = document.createElement('div');
  image.className = 'jp-AFLab-dragImage';
  image.textContent = options.label;
  const drag = new Drag({
    mimeData: new MimeData(),
    dragImage: image,
    supportedActions: 'copy',
    proposedAction: 'copy'
  });
  drag.mimeData.setData(JUPYTER_CELL_MIME, [
    codeCell(options.source, options.metadata)
  ]);
  drag.mimeData.setData('text/plain', options.source);
  // Where the pointer was released, read before the notebook handles the
  // drop (a capture listener added before the drag's own).
  let spot: IDropSpot | null = null;
  const onRelease = (event: PointerEvent) => {
    spot = dropSpot(event.clientX, event.clientY);
  };
  document.addEventListener('pointerup', onRelease, true);
  try {
    const action = await drag.start(options.clientX, options.clientY);
    if (action !== 'none' && spot) {
      placeBelow(options.tracker ?? null, spot, options.source);
    }
    return action;
  } finally {
    document.removeEventListener('pointerup', onRelease, true);
  }
}

/**
 * The notebook cell under a drop point, and whether the point was on its
 * lower half.
 */
export interface IDropSpot {
  cell: HTMLElement;
  below: boolean;
}

export function dropSpot(x: number, y: number): IDropSpot | null {
  // All elements at the point: during a drag, Lumino's cursor backdrop
  // covers the page and would be the only one `elementFromPoint` finds.
  const cell = document
    .elementsFromPoint(x, y)
    .map(el => el.closest<HTMLElement>('.jp-Notebook .jp-Cell'))
    .find(found => !!found);
  if (!cell) {
    return null;
  }
  const rect = cell.getBoundingClientRect();
  return { cell, below: y > rect.top + rect.height / 2 };
}

/**
 * JupyterLab inserts dropped cells above the cell under the pointer; a drop
 * on a cell's lower half (the last cell's output, say) means "after it", so
 * the inserted cell moves below that cell.
 */
export function placeBelow(
  tracker: INotebookTracker | null,
  spot: IDropSpot,
  source: string
): boolean {
  if (!spot.below || !tracker) {
    return false;
  }
  const panel = tracker.find(p => p.content.node.contains(spot.cell));
  if (!panel) {
    return false;
  }
  const notebook = panel.content;
  const target = notebook.widgets.findIndex(w => w.node === spot.cell);
  // The dropped cell is right above the one it was dropped on.
  const dropped = notebook.widgets[target - 1];
  if (target < 1 || dropped?.model.sharedModel.getSource() !== source) {
    return false;
  }
  notebook.deselectAll();
  notebook.activeCellIndex = target - 1;
  NotebookActions.moveDown(notebook);
  return true;
}
