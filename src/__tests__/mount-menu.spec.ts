import { defaultTarget, mountMenu, replicaState } from '../rucio/mountMenu';
import { IAvailability } from '../rucio/types';

const DID = 'user.jdoe:ZZTo4mu';

function mount(mode: string, target: string, did = DID) {
  return { did, instance: 'main', mode, target };
}

function availability(
  filesAvailable: number[],
  complete = true
): IAvailability {
  return {
    complete,
    computed: true,
    files_scanned: 2,
    rses: filesAvailable.map((n, i) => ({
      rse: `RSE${i}`,
      files: 2,
      bytes: 20,
      files_available: n,
      bytes_available: n * 10
    }))
  };
}

describe('mount menu', () => {
  it('offers every mode at its default target when nothing is mounted', () => {
    const menu = mountMenu(DID, 'main', [], 'complete');
    expect(menu.choices.map(c => [c.mode, c.target, c.enabled])).toEqual([
      ['cache', 'af-data/user.jdoe/ZZTo4mu', true],
      ['stream', 'af-data/user.jdoe/ZZTo4mu.fileset.json', true],
      ['replica', 'af-data/user.jdoe/ZZTo4mu', true]
    ]);
    expect(menu.mounted).toEqual([]);
    expect(menu.requestReplica).toBe(false);
  });

  it('after a cache mount, offers replica mode at a path that does not collide', () => {
    const mounts = [mount('cache', 'af-data/user.jdoe/ZZTo4mu')];
    const menu = mountMenu(DID, 'main', mounts, 'complete');
    expect(menu.mounted).toEqual(['cache']);
    expect(menu.choices.map(c => c.mode)).toEqual(['stream', 'replica']);
    const replica = menu.choices.find(c => c.mode === 'replica')!;
    expect(replica.target).toBe('af-data/user.jdoe/ZZTo4mu-replica');
    expect(replica.target).not.toBe(mounts[0].target);
    expect(replica.enabled).toBe(true);
  });

  it('keeps the mount root learnt from existing mounts', () => {
    const mounts = [
      mount('cache', 'data/rucio/user.jdoe/other', 'user.jdoe:other')
    ];
    expect(defaultTarget(DID, 'cache', mounts)).toBe(
      'data/rucio/user.jdoe/ZZTo4mu'
    );
  });

  it('a mount of the same DID on another instance does not count as mounted', () => {
    const mounts = [
      { ...mount('cache', 'af-data/user.jdoe/ZZTo4mu'), instance: 'other' }
    ];
    const menu = mountMenu(DID, 'main', mounts, 'complete');
    expect(menu.mounted).toEqual([]);
    expect(menu.choices.find(c => c.mode === 'cache')!.target).toBe(
      'af-data/user.jdoe/ZZTo4mu-cache'
    );
  });

  it('with no replica anywhere, disables mounting and offers a request', () => {
    const menu = mountMenu(DID, 'main', [], 'none');
    expect(menu.choices.every(c => !c.enabled)).toBe(true);
    expect(menu.choices[0].caption).toMatch(/request one/);
    expect(menu.requestReplica).toBe(true);
  });

  it('partly available: mounting stays possible, a request is offered too', () => {
    const menu = mountMenu(DID, 'main', [], 'partial');
    expect(menu.choices.every(c => c.enabled)).toBe(true);
    expect(menu.requestReplica).toBe(true);
  });

  it('no request once a replica-mode mount (with its rule) exists', () => {
    const mounts = [mount('replica', 'af-data/user.jdoe/ZZTo4mu')];
    expect(mountMenu(DID, 'main', mounts, 'none').requestReplica).toBe(false);
  });

  it('all modes mounted: nothing left to offer', () => {
    const mounts = [
      mount('cache', 'af-data/user.jdoe/ZZTo4mu'),
      mount('stream', 'af-data/user.jdoe/ZZTo4mu.fileset.json'),
      mount('replica', 'af-data/user.jdoe/ZZTo4mu-replica')
    ];
    const menu = mountMenu(DID, 'main', mounts, 'complete');
    expect(menu.choices).toEqual([]);
    expect(menu.mounted).toEqual(['cache', 'stream', 'replica']);
  });
});

describe('replica state', () => {
  it('unknown until counted', () => {
    expect(replicaState(undefined, 2)).toBe('unknown');
    expect(replicaState({ ...availability([2]), computed: false }, 2)).toBe(
      'unknown'
    );
    expect(replicaState(availability([0], false), 2)).toBe('unknown');
  });

  it('none, partial, complete', () => {
    expect(replicaState(availability([]), 1)).toBe('none');
    expect(replicaState(availability([0, 0]), 2)).toBe('none');
    expect(replicaState(availability([1, 0]), 2)).toBe('partial');
    expect(replicaState(availability([1, 2]), 2)).toBe('complete');
  });
});
