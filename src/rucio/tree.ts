import { ISignal, Signal } from '@lumino/signaling';

import { IDIDItem, IPage } from './types';

/**
 * Where a listing's pages come from: a search, a container's content
 * (datasets and containers) or a dataset's files with their replicas.
 */
export type ListingKind = 'search' | 'content' | 'replicas';

/**
 * A paged list of DIDs (the search results, or the children of a node).
 */
export interface IListing {
  readonly key: string;
  readonly kind: ListingKind;
  /**
   * The node whose children these are (null: the search results).
   */
  readonly parent: ITreeNode | null;
  readonly depth: number;
  items: ITreeNode[];
  /**
   * The cursor of the next page; null once everything is loaded.
   */
  cursor: string | null;
  /**
   * The first page has arrived.
   */
  started: boolean;
  loading: boolean;
  error: unknown;
  /**
   * The number of items, once the server knows it.
   */
  total: number | null;
  /**
   * Increases on every reload: answers for an older generation are dropped.
   */
  generation: number;
  /**
   * Pages loaded out of order (a jump to the end, a dragged scrollbar), by
   * the offset of their first item; merged into `items` once the loaded
   * prefix reaches them.
   */
  jumps: Map<number, IJumpPage>;
  /**
   * Offsets of the jumps being fetched.
   */
  jumping: Set<number>;
}

/**
 * A page loaded at an offset past the loaded prefix.
 */
export interface IJumpPage {
  nodes: ITreeNode[];
  /**
   * The cursor after its last item (null: the listing's last page).
   */
  cursor: string | null;
}

export interface ITreeNode {
  readonly key: string;
  readonly item: IDIDItem;
  readonly depth: number;
  readonly parent: ITreeNode | null;
  expanded: boolean;
  children: IListing | null;
}

/**
 * A row of the flattened tree, as the virtual list shows it.
 */
export type TreeRow =
  | { kind: 'did'; key: string; node: ITreeNode; depth: number }
  | { kind: 'availability'; key: string; node: ITreeNode; depth: number }
  | { kind: 'loading'; key: string; listing: IListing; depth: number }
  | { kind: 'more'; key: string; listing: IListing; depth: number }
  | { kind: 'error'; key: string; listing: IListing; depth: number }
  | { kind: 'empty'; key: string; listing: IListing; depth: number }
  | {
      /**
       * Items not loaded yet, as tall as their rows will be: the list has
       * its full height, and a row that scrolls into view loads its page.
       */
      kind: 'pending';
      key: string;
      listing: IListing;
      depth: number;
      offset: number;
      count: number;
    };

/**
 * Fetches one page of a listing. `parent` is null for the search.
 */
export type PageFetcher = (
  kind: ListingKind,
  parent: ITreeNode | null,
  cursor: string | null,
  options: { limit: number; refresh: boolean; offset?: number }
) => Promise<IPage<IDIDItem>>;

/**
 * How many items a listing holds, as far as it is known: the server's count
 * once it has listed everything, else a collection's own length (Rucio says
 * it before the listing is complete). Null for a search still being listed.
 */
export function expectedTotal(listing: IListing): number | null {
  if (listing.total !== null) {
    return listing.total;
  }
  return listing.kind !== 'search'
    ? (listing.parent?.item.length ?? null)
    : null;
}

/**
 * How many items of a listing are loaded (the prefix and the jumps).
 */
export function loadedCount(listing: IListing): number {
  let n = listing.items.length;
  for (const jump of listing.jumps.values()) {
    n += jump.nodes.length;
  }
  return n;
}

/**
 * Whether a DID has children to show.
 */
export function isCollection(item: IDIDItem): boolean {
  return item.type === 'container' || item.type === 'dataset';
}

/**
 * The search results as a lazily loaded container → dataset → file tree.
 *
 * Children are fetched when a node is first expanded, one page at a time
 * (the server's cursor), and kept when it is collapsed. The tree is
 * flattened into rows for the virtual list: each expanded collection shows
 * its availability, its children, and a loading, error, "load more" or
 * "empty" row as its listing requires.
 */
export class DataTree {
  constructor(fetchPage: PageFetcher, options: DataTree.IOptions = {}) {
    this._fetchPage = fetchPage;
    this._pageSize = options.pageSize ?? (() => 200);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * The search results (null before the first search).
   */
  get root(): IListing | null {
    return this._root;
  }

  /**
   * Start a new search (the previous results are dropped).
   */
  search(refresh = false): Promise<void> {
    this._generation++;
    this._root = newListing('search', null, `search#${this._generation}`);
    this._emit();
    return this._load(this._root, refresh);
  }

  /**
   * Drop the results.
   */
  clear(): void {
    this._generation++;
    this._root = null;
    this._emit();
  }

  /**
   * The flattened rows (recomputed only after a change).
   */
  get rows(): TreeRow[] {
    if (this._rows === null) {
      this._rows = [];
      if (this._root) {
        this._flatten(this._root, this._rows);
      }
    }
    return this._rows;
  }

  toggle(node: ITreeNode): void {
    if (node.expanded) {
      this.collapse(node);
    } else {
      this.expand(node);
    }
  }

  expand(node: ITreeNode): void {
    if (!isCollection(node.item) || node.expanded) {
      return;
    }
    node.expanded = true;
    if (!node.children) {
      node.children = newListing(
        node.item.type === 'container' ? 'content' : 'replicas',
        node,
        `${node.key}/`
      );
      void this._load(node.children, false);
    }
    this._emit();
  }

  collapse(node: ITreeNode): void {
    if (!node.expanded) {
      return;
    }
    node.expanded = false;
    this._emit();
  }

  /**
   * Fetch the next page of a listing.
   */
  loadMore(listing: IListing): Promise<void> {
    if (listing.loading || (listing.started && listing.cursor === null)) {
      return Promise.resolve();
    }
    return this._load(listing, false);
  }

  /**
   * Load the `count` items from `offset` (a pending row that came into
   * view): the next page when it continues the loaded prefix, else a jump
   * to that page, fetched at its offset from the listing's cursor.
   */
  loadAt(listing: IListing, offset: number, count: number): Promise<void> {
    if (offset <= listing.items.length) {
      return this.loadMore(listing);
    }
    if (
      listing.jumping.has(offset) ||
      listing.jumps.has(offset) ||
      listing.error ||
      !listing.started ||
      listing.cursor === null
    ) {
      return Promise.resolve();
    }
    return this._jump(listing, offset, count);
  }

  /**
   * Load a listing again from its first page (after an error, or to ask
   * Rucio again with `refresh`).
   */
  reload(listing: IListing, refresh = false): Promise<void> {
    listing.generation++;
    listing.items = [];
    listing.cursor = null;
    listing.started = false;
    listing.loading = false;
    listing.error = null;
    listing.total = null;
    listing.jumps.clear();
    listing.jumping.clear();
    this._emit();
    return this._load(listing, refresh);
  }

  /**
   * Retry what failed: the next page, or the first one.
   */
  retry(listing: IListing): Promise<void> {
    listing.error = null;
    this._emit();
    return this._load(listing, false);
  }

  private async _load(listing: IListing, refresh: boolean): Promise<void> {
    if (listing.loading) {
      return;
    }
    const generation = listing.generation;
    const searchGeneration = this._generation;
    listing.loading = true;
    listing.error = null;
    this._emit();
    try {
      // Stop where a jump starts: the two join without overlapping.
      const next = nextJump(listing, listing.items.length);
      const limit = Math.max(
        1,
        Math.min(this._pageSize(), next - listing.items.length)
      );
      const page = await this._fetchPage(
        listing.kind,
        listing.parent,
        listing.started ? listing.cursor : null,
        { limit, refresh }
      );
      if (!this._current(listing, generation, searchGeneration)) {
        return;
      }
      const seen = this._seen(listing);
      listing.items.push(...this._nodes(listing, page.items, seen));
      listing.cursor = page.cursor ?? null;
      listing.started = true;
      this._joinJumps(listing, seen);
      this._setTotal(listing, page);
    } catch (error) {
      if (!this._current(listing, generation, searchGeneration)) {
        return;
      }
      listing.error = error;
    } finally {
      if (this._current(listing, generation, searchGeneration)) {
        listing.loading = false;
        this._emit();
      }
    }
  }

  private async _jump(
    listing: IListing,
    offset: number,
    count: number
  ): Promise<void> {
    const generation = listing.generation;
    const searchGeneration = this._generation;
    listing.jumping.add(offset);
    this._emit();
    try {
      const page = await this._fetchPage(
        listing.kind,
        listing.parent,
        listing.cursor,
        { limit: Math.max(1, count), refresh: false, offset }
      );
      if (!this._current(listing, generation, searchGeneration)) {
        return;
      }
      const seen = this._seen(listing);
      listing.jumps.set(offset, {
        nodes: this._nodes(listing, page.items, seen),
        cursor: page.cursor ?? null
      });
      this._joinJumps(listing, seen);
      this._setTotal(listing, page);
    } catch (error) {
      if (this._current(listing, generation, searchGeneration)) {
        listing.error = error;
      }
    } finally {
      if (this._current(listing, generation, searchGeneration)) {
        listing.jumping.delete(offset);
        this._emit();
      }
    }
  }

  private _nodes(
    listing: IListing,
    items: IDIDItem[],
    seen: Set<string>
  ): ITreeNode[] {
    const nodes: ITreeNode[] = [];
    for (const item of items) {
      const key = `${listing.key}${item.did}`;
      if (seen.has(key)) {
        continue;
      }
      seen.add(key);
      nodes.push({
        key,
        item,
        depth: listing.depth,
        parent: listing.parent,
        expanded: false,
        children: null
      });
    }
    return nodes;
  }

  /**
   * Append the jumps the loaded prefix has reached (their cursor goes on).
   */
  private _joinJumps(listing: IListing, seen: Set<string>): void {
    let jump = listing.jumps.get(listing.items.length);
    while (jump && listing.cursor !== null) {
      listing.jumps.delete(listing.items.length);
      listing.items.push(...jump.nodes);
      listing.cursor = jump.cursor;
      if (jump.nodes.length === 0) {
        break;
      }
      jump = listing.jumps.get(listing.items.length);
    }
    if (listing.cursor === null) {
      listing.jumps.clear(); // everything is in the prefix now
    }
    this._keys.set(listing, seen);
  }

  private _setTotal(listing: IListing, page: IPage<IDIDItem>): void {
    listing.total =
      typeof page.total === 'number'
        ? page.total
        : listing.cursor === null
          ? listing.items.length
          : null;
  }

  private _current(
    listing: IListing,
    generation: number,
    searchGeneration: number
  ): boolean {
    return (
      listing.generation === generation && this._generation === searchGeneration
    );
  }

  private _seen(listing: IListing): Set<string> {
    let seen = this._keys.get(listing);
    if (!seen || seen.size > loadedCount(listing)) {
      seen = new Set(listing.items.map(n => n.key));
      for (const jump of listing.jumps.values()) {
        jump.nodes.forEach(n => seen!.add(n.key));
      }
      this._keys.set(listing, seen);
    }
    return seen;
  }

  private _flatten(listing: IListing, out: TreeRow[]): void {
    const depth = listing.depth;
    this._flattenNodes(listing.items, out);
    const total = expectedTotal(listing);
    if (
      !listing.error &&
      listing.started &&
      listing.cursor !== null &&
      total !== null &&
      total > listing.items.length
    ) {
      this._flattenRest(listing, total, out);
      return;
    }
    if (listing.error) {
      out.push({ kind: 'error', key: `${listing.key}#error`, listing, depth });
    } else if (listing.loading) {
      out.push({
        kind: 'loading',
        key: `${listing.key}#loading`,
        listing,
        depth
      });
    } else if (listing.started && listing.cursor !== null) {
      out.push({ kind: 'more', key: `${listing.key}#more`, listing, depth });
    } else if (listing.started && listing.items.length === 0) {
      out.push({ kind: 'empty', key: `${listing.key}#empty`, listing, depth });
    }
  }

  private _flattenNodes(nodes: ITreeNode[], out: TreeRow[]): void {
    for (const node of nodes) {
      out.push({ kind: 'did', key: node.key, node, depth: node.depth });
      if (node.expanded && node.children) {
        out.push({
          kind: 'availability',
          key: `${node.key}#availability`,
          node,
          depth: node.depth + 1
        });
        this._flatten(node.children, out);
      }
    }
  }

  /**
   * What follows the loaded prefix of a listing of known length: its jumps
   * and, between them, pending rows of at most a page each (aligned on
   * pages, so a row is one request).
   */
  private _flattenRest(listing: IListing, total: number, out: TreeRow[]) {
    const size = Math.max(1, this._pageSize());
    let offset = listing.items.length;
    while (offset < total) {
      const jump = listing.jumps.get(offset);
      if (jump) {
        this._flattenNodes(jump.nodes, out);
        if (jump.nodes.length === 0 || jump.cursor === null) {
          return; // the listing ends here, whatever its length said
        }
        offset += jump.nodes.length;
        continue;
      }
      const end = Math.min(
        total,
        (Math.floor(offset / size) + 1) * size,
        nextJump(listing, offset)
      );
      out.push({
        kind: 'pending',
        key: `${listing.key}#pending${offset}`,
        listing,
        depth: listing.depth,
        offset,
        count: end - offset
      });
      offset = end;
    }
  }

  private _emit(): void {
    this._rows = null;
    this._changed.emit();
  }

  private _fetchPage: PageFetcher;
  private _pageSize: () => number;
  private _root: IListing | null = null;
  private _rows: TreeRow[] | null = null;
  private _generation = 0;
  private _keys = new WeakMap<IListing, Set<string>>();
  private _changed = new Signal<this, void>(this);
}

export namespace DataTree {
  export interface IOptions {
    /**
     * The page size (read at every request, so settings apply at once).
     */
    pageSize?: () => number;
  }
}

function newListing(
  kind: ListingKind,
  parent: ITreeNode | null,
  key: string
): IListing {
  return {
    key,
    kind,
    parent,
    depth: parent ? parent.depth + 1 : 0,
    items: [],
    cursor: null,
    started: false,
    loading: false,
    error: null,
    total: null,
    generation: 0,
    jumps: new Map(),
    jumping: new Set()
  };
}

/**
 * The offset of the first jump after `offset` (Infinity: none).
 */
function nextJump(listing: IListing, offset: number): number {
  let next = Infinity;
  for (const start of listing.jumps.keys()) {
    if (start > offset && start < next) {
      next = start;
    }
  }
  return next;
}
