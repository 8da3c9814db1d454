/**
 * What the mount menu of a DID offers in its current state: the modes not
 * yet mounted, each at a target that does not collide with an existing
 * mount (so a second mode "just works"), disabled with the reason when no
 * replica can be read, and "Request a Replica" when none is there.
 */
import { predictTarget } from '../mounts/snippet';
import { MountMode } from '../mounts/types';
import { IAvailability } from './types';

export const MOUNT_MODES: readonly MountMode[] = ['cache', 'stream', 'replica'];

/**
 * Where the replicas of a DID stand, as far as the sidebar knows.
 * `none`: counted, and no RSE holds a single file.
 */
export type ReplicaState = 'unknown' | 'none' | 'partial' | 'complete';

export interface IMountChoice {
  mode: MountMode;
  /**
   * The target the server is asked for (workspace-relative).
   */
  target: string;
  enabled: boolean;
  /**
   * Why it is disabled, or where it mounts.
   */
  caption: string;
}

export interface IMountMenu {
  choices: IMountChoice[];
  /**
   * Offer "Request a Replica…" (a Rucio rule, then a replica-mode mount).
   */
  requestReplica: boolean;
  /**
   * Modes already mounted (their Open/Show/Copy entries apply instead).
   */
  mounted: MountMode[];
}

interface IMountLike {
  did: string;
  instance: string;
  mode: string;
  target: string;
}

/**
 * The replica state of a DID from its availability (undefined: not counted).
 */
export function replicaState(
  availability: IAvailability | undefined,
  files: number | null
): ReplicaState {
  if (!availability || availability.computed === false) {
    return 'unknown';
  }
  const best = Math.max(0, ...availability.rses.map(r => r.files_available));
  if (best === 0) {
    return availability.complete ? 'none' : 'unknown';
  }
  const total = files ?? availability.files_scanned;
  return availability.complete && best >= total ? 'complete' : 'partial';
}

/**
 * The default target of a mode: `<root>/<scope>/<name>` (a fileset file
 * beside it for stream), with `-<mode>` added when another mount holds it.
 */
export function defaultTarget(
  did: string,
  mode: MountMode,
  mounts: readonly IMountLike[]
): string {
  const base = predictTarget(did, mounts);
  const taken = new Set(mounts.map(m => m.target));
  if (mode === 'stream') {
    const fileset = `${base}.fileset.json`;
    return taken.has(fileset) ? `${base}-stream.fileset.json` : fileset;
  }
  return taken.has(base) ? `${base}-${mode}` : base;
}

export function mountMenu(
  did: string,
  instance: string,
  mounts: readonly IMountLike[],
  replicas: ReplicaState
): IMountMenu {
  const mounted = MOUNT_MODES.filter(mode =>
    mounts.some(
      m => m.did === did && m.instance === instance && m.mode === mode
    )
  );
  const choices = MOUNT_MODES.filter(mode => !mounted.includes(mode)).map(
    mode => {
      const target = defaultTarget(did, mode, mounts);
      const enabled = replicas !== 'none';
      return {
        mode,
        target,
        enabled,
        caption: enabled
          ? `Mounts at ${target}`
          : 'No RSE holds a replica to read: request one first.'
      };
    }
  );
  return {
    choices,
    mounted,
    requestReplica:
      (replicas === 'none' || replicas === 'partial') &&
      !mounted.includes('replica')
  };
}
