import { Signal } from '@lumino/signaling';
import { act, fireEvent, render, screen, within } from '@testing-library/react';
import React from 'react';

import { AttachmentsPanel } from '../attachments/AttachmentsPanel';
import {
  mergeAttachments,
  readAttachments,
  withAttachments
} from '../attachments/metadata';
import {
  AttachmentsApi,
  AttachmentsModel,
  IMountOps,
  INotebookHandle,
  recordAttachments,
  remountBlocked
} from '../attachments/model';
import { IAttachment, IResolvedAttachment } from '../attachments/types';
import { IMount, IMountRequest, IUnmountResult } from '../mounts/types';
import { AFLabRequestError } from '../request';

/**
 * A notebook's `af_lab` metadata section held in memory (the lab's is a
 * NotebookModel; the model only reads and writes the section).
 */
class MemoryNotebook implements INotebookHandle {
  constructor(
    public path: string,
    public section: unknown = undefined
  ) {}
  sectionChanged = new Signal<any, unknown>(this);
  getSection(): unknown {
    return this.section;
  }
  setSection(value: Record<string, unknown>): void {
    this.section = JSON.parse(JSON.stringify(value)); // as JSON metadata stores it
    this.sectionChanged.emit(undefined);
  }
}

const A: IAttachment = {
  did: 'user.jdoe:skim',
  mode: 'stream',
  instance: 'demo',
  added: '2026-01-01T00:00:00.000Z'
};
const B: IAttachment = {
  did: 'user.jdoe:deleted',
  mode: 'cache',
  instance: 'demo',
  added: '2026-01-02T00:00:00.000Z'
};

function answer(
  a: IAttachment,
  state: IResolvedAttachment['state'],
  mount: Partial<NonNullable<IResolvedAttachment['mount']>> | null = null,
  message = ''
): IResolvedAttachment {
  return {
    did: a.did,
    mode: a.mode,
    instance: a.instance ?? null,
    state,
    message,
    mount: mount
      ? {
          id: 'm1',
          mode: a.mode,
          state: 'ready',
          message: '',
          target: 'af-data/user.jdoe/skim',
          files: 2,
          bytes: 10,
          ...mount
        }
      : null,
    rucio: state === 'gone' ? null : { type: 'dataset', files: 2, bytes: 10 }
  };
}

function fakeApi(
  states: (list: readonly IAttachment[]) => IResolvedAttachment[]
): jest.Mocked<AttachmentsApi> {
  return {
    resolveAttachments: jest.fn(async (list: readonly IAttachment[]) =>
      states(list)
    )
  };
}

function fakeMounts(): jest.Mocked<IMountOps> {
  return {
    create: jest.fn(async (_request: IMountRequest) => ({}) as IMount),
    retry: jest.fn(async (_id: string) => ({}) as IMount),
    remove: jest.fn(async (_id: string) => ({}) as IUnmountResult)
  };
}

describe('notebook metadata', () => {
  let warn: jest.SpyInstance;
  beforeEach(() => {
    warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => warn.mockRestore());

  it('reads the attachments, defaulting the mode and dropping duplicates', () => {
    const list = readAttachments({
      attachments: [A, { did: 'user.jdoe:x' }, { ...A, mode: 'cache' }]
    });
    expect(list).toEqual([A, { did: 'user.jdoe:x', mode: 'cache', added: '' }]);
    expect(warn).not.toHaveBeenCalled();
  });

  it('ignores malformed metadata with a console warning, never throws', () => {
    for (const section of ['text', 42, [A], { attachments: 'user.jdoe:x' }]) {
      expect(readAttachments(section)).toEqual([]);
    }
    expect(warn).toHaveBeenCalledTimes(4);
    warn.mockClear();
    const list = readAttachments({
      attachments: [
        null,
        'user.jdoe:x',
        { did: 'no-colon' },
        { did: 'a:b', mode: 'teleport' },
        { did: 7 },
        { did: 'a:b', instance: 5 },
        B
      ]
    });
    expect(list).toEqual([B]);
    expect(warn).toHaveBeenCalledTimes(6);
    expect(readAttachments(undefined)).toEqual([]);
    expect(readAttachments({ other: 1 })).toEqual([]);
  });

  it('merges additions: new DIDs appended, a known one takes the newer mode', () => {
    const now = new Date('2026-02-03T04:05:06Z');
    expect(
      mergeAttachments([A], [{ did: A.did, mode: 'stream', instance: 'demo' }])
    ).toBeNull();
    expect(
      mergeAttachments(
        [A],
        [{ did: A.did, mode: 'cache', instance: 'demo' }],
        now
      )
    ).toEqual([{ ...A, mode: 'cache' }]);
    expect(
      mergeAttachments([A], [{ did: 'x:y', mode: 'replica' }], now)
    ).toEqual([A, { did: 'x:y', mode: 'replica', added: now.toISOString() }]);
    // The same DID on another instance is another attachment.
    expect(
      mergeAttachments(
        [A],
        [{ did: A.did, mode: 'stream', instance: 'other' }],
        now
      )
    ).toHaveLength(2);
  });

  it('records into the af_lab section, keeping its other keys', () => {
    const nb = new MemoryNotebook('a.ipynb', { inputs: ['k:v'] });
    expect(
      recordAttachments(nb, [{ did: A.did, mode: 'stream', instance: 'demo' }])
    ).toBe(true);
    expect(
      recordAttachments(nb, [{ did: A.did, mode: 'stream', instance: 'demo' }])
    ).toBe(false);
    expect(nb.section).toEqual({
      inputs: ['k:v'],
      attachments: [
        expect.objectContaining({
          did: A.did,
          mode: 'stream',
          instance: 'demo'
        })
      ]
    });
    // A malformed section is replaced by a clean one, not kept broken.
    expect(withAttachments('junk', [B])).toEqual({ attachments: [B] });
  });
});

describe('AttachmentsModel', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  async function settle(): Promise<void> {
    await act(async () => {
      jest.runOnlyPendingTimers();
      await Promise.resolve();
      await Promise.resolve();
    });
  }

  it('resolves the notebook’s attachments once, and again when its metadata changes', async () => {
    const api = fakeApi(list =>
      list.map(a =>
        a.did === B.did
          ? answer(a, 'gone', null, `${a.did} no longer exists in Rucio`)
          : answer(a, 'mounted', {})
      )
    );
    const model = new AttachmentsModel({ api, mounts: fakeMounts() });
    const nb = new MemoryNotebook('ana/z.ipynb', { attachments: [A, B] });
    model.setNotebook(nb);
    expect(model.attachments).toEqual([A, B]);
    await settle();
    expect(api.resolveAttachments).toHaveBeenCalledTimes(1);
    expect(model.resolved(A)?.state).toBe('mounted');
    expect(model.resolved(B)?.state).toBe('gone');
    expect(remountBlocked(model.resolved(B))).toMatch(/Deleted from Rucio/);
    expect(remountBlocked(model.resolved(A))).toMatch(/Already mounted/);

    recordAttachments(nb, [
      { did: 'user.jdoe:new', mode: 'cache', instance: 'demo' }
    ]);
    expect(model.attachments.map(a => a.did)).toEqual([
      A.did,
      B.did,
      'user.jdoe:new'
    ]);
    await settle();
    expect(api.resolveAttachments).toHaveBeenCalledTimes(2);
    model.dispose();
  });

  it('re-mounts with the recorded mode: a new mount, a retry, or a fresh one in place', async () => {
    const states: Record<string, IResolvedAttachment> = {};
    const api = fakeApi(list => list.map(a => states[a.did]));
    const mounts = fakeMounts();
    const model = new AttachmentsModel({ api, mounts });
    const failed = { ...A, did: 'user.jdoe:failed' };
    const changed = { ...A, did: 'user.jdoe:changed', mode: 'cache' as const };
    states[A.did] = answer(A, 'not_mounted');
    states[failed.did] = answer(failed, 'stale', { id: 'f1', state: 'failed' });
    states[changed.did] = answer(changed, 'stale', {
      id: 'c1',
      target: 'af-data/c'
    });
    states[B.did] = answer(B, 'gone');
    model.setNotebook(
      new MemoryNotebook('n.ipynb', { attachments: [A, failed, changed, B] })
    );
    await settle();

    await act(() => model.remount(A));
    expect(mounts.create).toHaveBeenCalledWith({
      did: A.did,
      mode: 'stream',
      instance: 'demo'
    });
    await act(() => model.remount(failed));
    expect(mounts.retry).toHaveBeenCalledWith('f1');
    await act(() => model.remount(changed));
    expect(mounts.remove).toHaveBeenCalledWith('c1');
    expect(mounts.create).toHaveBeenLastCalledWith({
      did: changed.did,
      mode: 'cache',
      instance: 'demo',
      target: 'af-data/c',
      refresh: true
    });
    // Gone from Rucio: nothing is asked of the mounts.
    mounts.create.mockClear();
    await act(() => model.remount(B));
    expect(mounts.create).not.toHaveBeenCalled();
    model.dispose();
  });

  it('shows a failed re-mount and a failed resolve as messages', async () => {
    const api = fakeApi(list => list.map(a => answer(a, 'not_mounted')));
    const mounts = fakeMounts();
    mounts.create.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 507,
        type: 'insufficient_storage',
        message: 'cache full'
      })
    );
    const model = new AttachmentsModel({ api, mounts });
    model.setNotebook(new MemoryNotebook('n.ipynb', { attachments: [A] }));
    await settle();
    await act(() => model.remount(A));
    expect(model.actionError(A)).toBe('cache full');
    api.resolveAttachments.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 0,
        type: 'network',
        message: 'The server did not answer.'
      })
    );
    await act(() => model.refresh());
    expect(model.error).toBe('The server did not answer.');
    model.dispose();
  });

  it('removes from the list (and remembers it was removed), keeping the rest', async () => {
    const api = fakeApi(list => list.map(a => answer(a, 'mounted', {})));
    const model = new AttachmentsModel({ api });
    const nb = new MemoryNotebook('n.ipynb', {
      attachments: [A, B],
      other: true
    });
    model.setNotebook(nb);
    model.remove(A);
    expect(model.attachments).toEqual([B]);
    expect(nb.section).toEqual({ attachments: [B], other: true });
    expect(model.dismissed(nb, A)).toBe(true);
    expect(model.dismissed(nb, B)).toBe(false);
    model.dispose();
  });

  it('keeps the newest answer when resolves overlap (another notebook took over)', async () => {
    let release!: () => void;
    const api: jest.Mocked<AttachmentsApi> = {
      resolveAttachments: jest.fn()
    };
    api.resolveAttachments
      .mockImplementationOnce(
        list =>
          new Promise(res => {
            release = () => res(list.map(a => answer(a, 'gone')));
          })
      )
      .mockImplementation(async list =>
        list.map(a => answer(a, 'mounted', {}))
      );
    const model = new AttachmentsModel({ api });
    model.setNotebook(new MemoryNotebook('one.ipynb', { attachments: [A] }));
    const first = model.refresh();
    model.setNotebook(new MemoryNotebook('two.ipynb', { attachments: [A] }));
    await act(() => model.refresh());
    release();
    await act(() => first);
    expect(model.resolved(A)?.state).toBe('mounted');
    model.dispose();
  });
});

describe('AttachmentsPanel', () => {
  it('lists each DID with its state; a deleted one says why it cannot be mounted', async () => {
    const api = fakeApi(list =>
      list.map(a =>
        a.did === B.did
          ? answer(a, 'gone', null, `${a.did} no longer exists in Rucio (demo)`)
          : answer(a, 'mounted', {}, 'Mounted (stream) at af-data/x')
      )
    );
    const model = new AttachmentsModel({ api, mounts: fakeMounts() });
    model.setNotebook(
      new MemoryNotebook('ana/z.ipynb', { attachments: [A, B] })
    );
    render(<AttachmentsPanel model={model} />);
    await act(() => model.refresh());
    const list = screen.getByRole('list', {
      name: 'Data used by this notebook'
    });
    const gone = within(list).getByRole('listitem', {
      name: `${B.did}: Gone from Rucio`
    });
    expect(within(gone).getByText(/no longer exists in Rucio/)).toBeTruthy();
    expect(
      within(gone).getByText(/Cannot mount: Deleted from Rucio/)
    ).toBeTruthy();
    expect(
      (within(gone).getByRole('button', { name: /Mount/ }) as HTMLButtonElement)
        .disabled
    ).toBe(true);
    const mounted = within(list).getByRole('listitem', {
      name: `${A.did}: Mounted`
    });
    fireEvent.click(
      within(mounted).getByRole('button', { name: /Remove from list/ })
    );
    expect(
      screen.queryByRole('listitem', { name: `${A.did}: Mounted` })
    ).toBeNull();
    model.dispose();
  });

  it('says what to do when there is no notebook or no data', () => {
    const warn = jest
      .spyOn(console, 'warn')
      .mockImplementation(() => undefined);
    const model = new AttachmentsModel({ api: fakeApi(() => []) });
    const { rerender } = render(<AttachmentsPanel model={model} />);
    expect(screen.getByText(/Open a notebook/)).toBeTruthy();
    act(() =>
      model.setNotebook(new MemoryNotebook('x.ipynb', { attachments: 'junk' }))
    );
    rerender(<AttachmentsPanel model={model} />);
    expect(
      screen.getByText(/No data recorded for this notebook yet/)
    ).toBeTruthy();
    expect(warn).toHaveBeenCalled();
    warn.mockRestore();
    model.dispose();
  });
});
