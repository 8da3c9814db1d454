import { MountMode } from '../mounts/types';

/**
 * One DID a notebook used, as kept in the notebook's metadata
 * (`metadata.af_lab.attachments`), so it travels with the .ipynb.
 */
export interface IAttachment {
  /**
   * `scope:name`.
   */
  did: string;
  /**
   * The mode it was mounted in (re-mounted in the same mode).
   */
  mode: MountMode;
  /**
   * The Rucio instance; absent means the server's default one.
   */
  instance?: string;
  /**
   * When it was first recorded (ISO 8601).
   */
  added: string;
}

/**
 * What the server says became of an attachment (`POST attachments/resolve`).
 */
export type AttachmentState =
  | 'mounted'
  | 'mounting'
  | 'stale'
  | 'not_mounted'
  | 'gone'
  | 'invalid'
  | 'unknown';

export interface IResolvedAttachment {
  did: string;
  mode: MountMode;
  instance: string | null;
  state: AttachmentState;
  message: string;
  mount: {
    id: string;
    mode: MountMode;
    state: string;
    message: string;
    target: string;
    fileset?: string | null;
    files: number;
    bytes: number;
  } | null;
  rucio: { type: string; files: number; bytes: number } | null;
}

/**
 * A DID the kernel running a notebook mounted (`GET attachments/session`).
 */
export interface ISessionDid {
  did: string;
  mode?: MountMode;
  instance?: string;
}
