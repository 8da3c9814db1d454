import { Token } from '@lumino/coreutils';

import { MountsModel } from './model';
import { IMount } from './types';

/**
 * The user's mounts, shared by the Mounts section and the Data section
 * (Mount buttons, mounted badges, code for a notebook).
 */
export interface IAFLabMounts {
  /**
   * The live list of mounts.
   */
  readonly model: MountsModel;

  /**
   * Open the sidebar on the Mounts section and point at a mount.
   */
  show(mountId?: string): void;

  /**
   * Show a mount's folder (or fileset file) in the file browser.
   */
  openInFileBrowser(mount: IMount): Promise<void>;
}

export const IAFLabMounts = new Token<IAFLabMounts>(
  'af-lab:IAFLabMounts',
  'The af-lab mounts (Rucio DIDs as cache-backed paths), kept live by the server event stream.'
);
