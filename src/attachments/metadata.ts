import { MountMode } from '../mounts/types';
import { IAttachment } from './types';

/**
 * The notebook metadata key af-lab writes (`metadata.af_lab.attachments`).
 */
export const NOTEBOOK_METADATA_KEY = 'af_lab';

const MODES: readonly MountMode[] = ['cache', 'stream', 'replica'];

/**
 * The identity of an attachment: the same DID on another instance is
 * another attachment.
 */
export function attachmentKey(a: { did: string; instance?: string | null }) {
  return `${a.instance ?? ''}|${a.did}`;
}

/**
 * The attachments in a notebook's `af_lab` metadata section. Anything
 * malformed (a hand-edited or foreign notebook) is left out with a console
 * warning, never an error.
 */
export function readAttachments(section: unknown): IAttachment[] {
  if (section === undefined || section === null) {
    return [];
  }
  if (typeof section !== 'object' || Array.isArray(section)) {
    console.warn(
      'af-lab: notebook metadata "af_lab" is not an object; its attachments are ignored.'
    );
    return [];
  }
  const list = (section as Record<string, unknown>).attachments;
  if (list === undefined) {
    return [];
  }
  if (!Array.isArray(list)) {
    console.warn(
      'af-lab: notebook metadata "af_lab.attachments" is not a list; it is ignored.'
    );
    return [];
  }
  const out: IAttachment[] = [];
  const seen = new Set<string>();
  list.forEach((item, index) => {
    const a = parseAttachment(item);
    if (!a) {
      console.warn(
        `af-lab: notebook attachment ${index} is malformed and ignored:`,
        item
      );
      return;
    }
    if (!seen.has(attachmentKey(a))) {
      seen.add(attachmentKey(a));
      out.push(a);
    }
  });
  return out;
}

function parseAttachment(item: unknown): IAttachment | null {
  if (!item || typeof item !== 'object' || Array.isArray(item)) {
    return null;
  }
  const { did, mode, instance, added } = item as Record<string, unknown>;
  if (
    typeof did !== 'string' ||
    did.indexOf(':') < 1 ||
    did.length > 1024 ||
    (mode !== undefined && !MODES.includes(mode as MountMode)) ||
    (instance !== undefined &&
      instance !== null &&
      typeof instance !== 'string')
  ) {
    return null;
  }
  return {
    did,
    mode: (mode as MountMode) ?? 'cache',
    ...(typeof instance === 'string' && instance ? { instance } : {}),
    added: typeof added === 'string' ? added : ''
  };
}

/**
 * `current` with `additions` merged in: a new DID is appended, a known one
 * takes the newer mode (the last way it was mounted) and keeps its date.
 *
 * @returns the merged list, or null when nothing changed
 */
export function mergeAttachments(
  current: readonly IAttachment[],
  additions: readonly Omit<IAttachment, 'added'>[],
  now: Date = new Date()
): IAttachment[] | null {
  const out = current.map(a => ({ ...a }));
  let changed = false;
  for (const add of additions) {
    const key = attachmentKey(add);
    const known = out.find(a => attachmentKey(a) === key);
    if (known) {
      if (known.mode !== add.mode) {
        known.mode = add.mode;
        changed = true;
      }
      continue;
    }
    out.push({
      did: add.did,
      mode: add.mode,
      ...(add.instance ? { instance: add.instance } : {}),
      added: now.toISOString()
    });
    changed = true;
  }
  return changed ? out : null;
}

/**
 * The `af_lab` section with `attachments` replaced; other keys are kept.
 */
export function withAttachments(
  section: unknown,
  attachments: readonly IAttachment[]
): Record<string, unknown> {
  const base =
    section && typeof section === 'object' && !Array.isArray(section)
      ? (section as Record<string, unknown>)
      : {};
  return { ...base, attachments: attachments.map(a => ({ ...a })) };
}
