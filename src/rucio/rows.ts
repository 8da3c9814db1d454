/**
 * What the Data view's rows share: the host's actions, the row kinds and
 * their heights, and the props every row gets.
 */
import React from 'react';
import { IExplainedError } from '../mounts/errors';
import { MountsModel } from '../mounts/model';
import { IMount, MountMode } from '../mounts/types';
import { DataModel } from './model';
import { TreeRow } from './tree';
import { IDIDItem } from './types';

/**
 * What the Data view asks its host (the plugin) to do.
 */
export interface IDataActions {
  /**
   * Mount a DID. Errors are reported by the host (see
   * `DataModel.setMountNotice`), never thrown.
   */
  mount(item: IDIDItem, instance: string, mode: MountMode): void;
  /**
   * Ask Rucio for a replica (a rule to an RSE on this host) and mount it.
   */
  requestReplica(item: IDIDItem, instance: string): void;
  /**
   * The primary action of a mounted DID: open its folder when ready, else
   * show its progress.
   */
  openMount(mount: IMount): void;
  /**
   * Open the actions menu of a DID at a screen position.
   */
  openMenu(item: IDIDItem, instance: string, x: number, y: number): void;
  /**
   * Start dragging a DID (into a notebook).
   */
  startDrag(item: IDIDItem, instance: string, x: number, y: number): void;
}

/**
 * Row heights of the virtual list (px): every row of a kind is as tall.
 */
export const ROW_HEIGHTS: Record<ViewRow['kind'], number> = {
  did: 46,
  availability: 44,
  loading: 30,
  more: 34,
  error: 64,
  empty: 28,
  notice: 64,
  pending: 46 // per item: as tall as the DID rows it stands for
};

/**
 * The height of a row: a pending row is as tall as the rows it stands for.
 */
export function rowHeight(row: ViewRow): number {
  if (row.kind === 'pending') {
    return row.count * ROW_HEIGHTS.did;
  }
  return ROW_HEIGHTS[row.kind] ?? 30;
}

/**
 * A row of the view: a tree row, or a mount error under a DID.
 */
export type ViewRow =
  | TreeRow
  | {
      kind: 'notice';
      key: string;
      item: IDIDItem;
      depth: number;
      notice: IExplainedError;
    };

export const INDENT = 14;

export interface IRowProps {
  row: ViewRow;
  index: number;
  style: React.CSSProperties;
  focused: boolean;
  model: DataModel;
  mounts: MountsModel;
  actions: IDataActions;
  onFocus: () => void;
}
