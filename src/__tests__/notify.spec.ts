import { mountNotice, OwnActions, publishNotice } from '../common/notify';

const mount = (state: string) => ({
  id: 'm1',
  did: 'user.jdoe:ZZTo4mu',
  state,
  target: 'af-data/user.jdoe/ZZTo4mu',
  message: 'XCache unreachable'
});

describe('mount notifications', () => {
  it('none for mounts of other sessions, whatever happens to them', () => {
    expect(mountNotice(mount('ready'), 'fetching', false)).toBeNull();
    expect(mountNotice(mount('failed'), 'fetching', false)).toBeNull();
    expect(mountNotice(mount('ready'), undefined, false)).toBeNull();
  });

  it('a mount of this session that is ready at once offers folder and code', () => {
    const notice = mountNotice(mount('ready'), undefined, true)!;
    expect(notice.type).toBe('success');
    expect(notice.actions).toEqual(['open-folder', 'insert-code']);
    expect(notice.message).toContain('af-data/user.jdoe/ZZTo4mu');
  });

  it('ready after fetching: the same toast, once', () => {
    expect(mountNotice(mount('ready'), 'fetching', true)?.type).toBe('success');
    expect(mountNotice(mount('ready'), 'ready', true)).toBeNull();
  });

  it('a failure of this session stays and offers Retry, with the reason', () => {
    const notice = mountNotice(mount('failed'), 'fetching', true)!;
    expect(notice.type).toBe('error');
    expect(notice.autoClose).toBe(false);
    expect(notice.actions[0]).toBe('retry');
    expect(notice.message).toContain('XCache unreachable');
  });

  it('progress and cancellation give no toast', () => {
    expect(mountNotice(mount('fetching'), 'queued', true)).toBeNull();
    expect(mountNotice(mount('cancelled'), 'fetching', true)).toBeNull();
  });
});

describe('publish notifications', () => {
  const job = (state: string, did: string | null = 'user.jdoe:hists') => ({
    id: 'j1',
    state,
    did,
    message: 'RSE full'
  });

  it('none for jobs of other sessions', () => {
    expect(publishNotice(job('done'), 'hists', false)).toBeNull();
    expect(publishNotice(job('failed'), 'hists', false)).toBeNull();
  });

  it('done offers Show in Data when there is a DID', () => {
    expect(publishNotice(job('done'), 'hists', true)!.actions).toEqual([
      'show-in-data',
      'show'
    ]);
    expect(publishNotice(job('done', null), 'hists', true)!.actions).toEqual([
      'show'
    ]);
  });

  it('failed and interrupted stay and offer Retry', () => {
    for (const state of ['failed', 'interrupted']) {
      const notice = publishNotice(job(state), 'hists', true)!;
      expect(notice.autoClose).toBe(false);
      expect(notice.actions).toContain('retry');
      expect(notice.message).toContain('RSE full');
    }
  });
});

describe('OwnActions', () => {
  it('knows only what was added', () => {
    const own = new OwnActions();
    own.add('a');
    own.add(null);
    expect(own.has('a')).toBe(true);
    expect(own.has('b')).toBe(false);
  });
});
