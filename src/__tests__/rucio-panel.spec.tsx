import { Signal } from '@lumino/signaling';
import {
  act,
  fireEvent,
  render,
  screen,
  waitFor,
  within
} from '@testing-library/react';
import React from 'react';

import { IServerEvent, IStreamStatus } from '../common/eventStream';
import { IMountEventSource, MountsApi, MountsModel } from '../mounts/model';
import { IMount } from '../mounts/types';
import { AFLabRequestError } from '../request';
import { DataPanel, IDataActions } from '../rucio/DataPanel';
import { DataModel, RucioApi } from '../rucio/model';
import {
  ICredentialStatus,
  IDIDDetails,
  IDIDItem,
  IPage,
  IRucioInstance
} from '../rucio/types';

const SECRET = 's3cr3t-Pa55word';

const INSTANCES: IRucioInstance[] = [
  {
    name: 'demo',
    display_name: 'Demo facility',
    auth_type: 'userpass',
    account: 'jdoe',
    rucio_host: 'http://127.0.0.1:1',
    webui_url: null,
    default: true
  }
];

function status(loggedIn: boolean, extra: Partial<ICredentialStatus> = {}) {
  return {
    instance: 'demo',
    display_name: 'Demo facility',
    auth_type: 'userpass',
    account: 'jdoe',
    logged_in: loggedIn,
    expires_at: loggedIn ? 2e9 : null,
    vault_reachable: true,
    message: loggedIn
      ? 'logged in as jdoe (userpass)'
      : 'No credentials stored for Rucio instance demo.',
    ...extra
  } as ICredentialStatus;
}

function item(name: string, type: string, extra: Partial<IDIDItem> = {}) {
  return {
    scope: 'cms_opendata',
    name,
    did: `cms_opendata:${name}`,
    type,
    bytes: 1536,
    length: type === 'file' ? 1 : 4,
    ...extra
  } as IDIDItem;
}

function page(items: IDIDItem[], cursor: string | null = null) {
  return {
    items,
    cursor,
    complete: cursor === null,
    count: items.length,
    total: cursor === null ? items.length : null,
    cached_at: 0,
    expires_at: 0
  } as IPage<IDIDItem>;
}

function details(name: string, type: string, extra: Partial<IDIDDetails> = {}) {
  return {
    did: `cms_opendata:${name}`,
    scope: 'cms_opendata',
    name,
    type,
    bytes: 1047325,
    length: 4,
    availability: {
      complete: true,
      computed: true,
      files_scanned: 4,
      rses: [
        {
          rse: 'SITE1_USERDISK',
          files: 4,
          bytes: 1,
          files_available: 4,
          bytes_available: 1
        },
        {
          rse: 'SITE2_USERDISK',
          files: 4,
          bytes: 1,
          files_available: 2,
          bytes_available: 1
        }
      ]
    },
    ...extra
  } as IDIDDetails;
}

function fakeApi(loggedIn = true): jest.Mocked<RucioApi> {
  return {
    listInstances: jest.fn(async () => INSTANCES),
    listScopes: jest.fn(async () => ['cms_opendata', 'user.jdoe']),
    searchDIDs: jest.fn(async () =>
      page([
        item('DAC21_CMS_opendata', 'container', { bytes: null, length: null })
      ])
    ),
    getDID: jest.fn(async (_: string, did: string) =>
      details(
        did.split(':')[1],
        did.includes('DAC21') ? 'container' : 'dataset'
      )
    ),
    listContent: jest.fn(async () =>
      page([
        item('Run2012B_DoubleMuParked', 'dataset'),
        item('ZZTo4mu', 'dataset')
      ])
    ),
    listReplicas: jest.fn(async () =>
      page([
        item('Run2012B_DoubleMuParked_000.root', 'file', {
          replicas: [
            { rse: 'SITE1_USERDISK', state: 'AVAILABLE' },
            { rse: 'SITE2_USERDISK', state: 'COPYING' }
          ]
        })
      ])
    ),
    credentialStatus: jest.fn(async () => ({
      vault: null,
      instances: [status(loggedIn)]
    })),
    putCredentials: jest.fn(async () => status(true))
  } as any;
}

class NoEvents implements IMountEventSource {
  received = new Signal<any, IServerEvent<unknown>>(this);
  opened = new Signal<any, void>(this);
  statusChanged = new Signal<any, IStreamStatus>(this);
  status: IStreamStatus = {
    state: 'open',
    failures: 0,
    retryAt: null,
    error: null
  };
  isDisposed = false;
  start() {}
  stop() {}
  reconnectNow() {}
  dispose() {}
}

function mounts(list: IMount[] = []): MountsModel {
  const api = {
    listMounts: jest.fn(async () => ({ mounts: list, cache: null })),
    createMount: jest.fn(),
    cancelMount: jest.fn(),
    retryMount: jest.fn(),
    removeMount: jest.fn(),
    cacheUsage: jest.fn()
  } as unknown as MountsApi;
  return new MountsModel({ api, events: new NoEvents() });
}

function actions(): jest.Mocked<IDataActions> {
  return {
    mount: jest.fn(),
    openMount: jest.fn(),
    openMenu: jest.fn(),
    requestReplica: jest.fn(),
    startDrag: jest.fn()
  };
}

function setup(
  api = fakeApi(),
  options: { mountList?: IMount[]; preferred?: string } = {}
) {
  const model = new DataModel({
    api,
    defaultInstance: () => options.preferred ?? '',
    details: { delayMs: 0, minPollIntervalMs: 0 }
  });
  const a = actions();
  const m = mounts(options.mountList);
  const view = render(<DataPanel model={model} mounts={m} actions={a} />);
  const panel = () =>
    view.container.querySelector('.jp-AFLab-DataPanel') as HTMLElement;
  return { api, model, actions: a, mounts: m, panel, ...view };
}

function rowOf(container: HTMLElement, did: string): HTMLElement {
  return container.querySelector(
    `[data-kind="did"][data-did="${did}"]`
  ) as HTMLElement;
}

async function search(text: string) {
  const box = screen.getByLabelText(/Search DIDs/);
  fireEvent.change(box, { target: { value: text } });
  fireEvent.submit(box.closest('form')!);
}

describe('DataPanel', () => {
  it('loads the instances, checks the login and offers collections first', async () => {
    const { panel, api } = setup();
    expect(panel().dataset.phase).toBe('loading');
    expect(screen.getByText('Loading the Rucio instances…')).toBeTruthy();
    await waitFor(() => expect(panel().dataset.login).toBe('logged_in'));
    expect(panel().dataset.instance).toBe('demo');
    expect(screen.getByText('Demo facility')).toBeTruthy();
    expect(screen.getByText(/Logged in as jdoe \(userpass\)/)).toBeTruthy();
    // Not "Everything": containers and datasets.
    expect((screen.getByLabelText('DID type') as HTMLSelectElement).value).toBe(
      'collection'
    );
    await waitFor(() =>
      expect(api.listScopes).toHaveBeenCalledWith('demo', false)
    );
    await screen.findByText('Pick one of 2…');
  });

  it('says so when no instance is configured, and shows a failing list', async () => {
    const api = fakeApi();
    api.listInstances.mockResolvedValueOnce([]);
    const first = setup(api);
    await screen.findByText(/No Rucio instance is configured/);
    first.unmount();

    const failing = fakeApi();
    failing.listInstances.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 500,
        type: 'internal',
        message: 'config broken'
      })
    );
    setup(failing);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('config broken');
    expect(alert.textContent).toContain('HTTP 500');
  });

  it('asks for credentials when logged out; the secret is write-only', async () => {
    const api = fakeApi(false);
    const { panel, container } = setup(api);
    const form = await screen.findByRole('form', { name: /Log in to Rucio/ });
    expect(panel().dataset.login).toBe('logged_out');
    expect(form.textContent).toContain('No credentials stored');
    const password = within(form).getByLabelText(
      'Password'
    ) as HTMLInputElement;
    expect(password.type).toBe('password');
    expect(
      (within(form).getByLabelText('Username') as HTMLInputElement).value
    ).toBe('jdoe');
    // Searching waits for the login.
    expect(
      (screen.getByLabelText(/Search DIDs/) as HTMLInputElement).disabled
    ).toBe(true);

    // Rucio refuses: the server's message, and the password is gone.
    api.putCredentials.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 401,
        type: 'credentials',
        message: "Rucio instance 'demo' refused the username or password."
      })
    );
    fireEvent.change(password, { target: { value: SECRET } });
    fireEvent.submit(form);
    await within(form).findByText(/refused the username or password/);
    expect(password.value).toBe('');

    fireEvent.change(password, { target: { value: SECRET } });
    fireEvent.submit(form);
    await waitFor(() => expect(panel().dataset.login).toBe('logged_in'));
    expect(api.putCredentials).toHaveBeenLastCalledWith('demo', {
      auth_type: 'userpass',
      username: 'jdoe',
      password: SECRET
    });
    expect(screen.queryByRole('form', { name: /Log in/ })).toBeNull();
    expect(container.innerHTML).not.toContain(SECRET);
    await waitFor(() => expect(api.listScopes).toHaveBeenCalled());
  });

  it('asks for an OIDC token for an oidc instance', async () => {
    const api = fakeApi(false);
    api.credentialStatus.mockResolvedValue({
      vault: null,
      instances: [status(false, { auth_type: 'oidc' })]
    });
    setup(api);
    const form = await screen.findByRole('form', { name: /Log in to Rucio/ });
    const token = within(form).getByLabelText(
      'Access token (JWT)'
    ) as HTMLInputElement;
    expect(token.type).toBe('password');
    expect(within(form).queryByLabelText('Password')).toBeNull();
    fireEvent.change(token, { target: { value: ' eyJ.token ' } });
    fireEvent.submit(form);
    await waitFor(() =>
      expect(api.putCredentials).toHaveBeenCalledWith('demo', {
        auth_type: 'oidc',
        token: 'eyJ.token'
      })
    );
  });

  it('searches, then expands container → datasets → files with replicas and availability', async () => {
    const api = fakeApi();
    const { container, panel } = setup(api);
    await waitFor(() => expect(panel().dataset.login).toBe('logged_in'));
    await waitFor(() => expect(api.listScopes).toHaveBeenCalled());
    await search('cms_opendata');
    await waitFor(() =>
      expect(rowOf(container, 'cms_opendata:DAC21_CMS_opendata')).toBeTruthy()
    );
    // A bare scope is a search of the whole scope.
    expect(api.searchDIDs).toHaveBeenCalledWith(
      'demo',
      'cms_opendata:*',
      'collection',
      {
        cursor: null,
        limit: 200,
        refresh: false
      }
    );
    expect(screen.getByText('1 result for cms_opendata:*')).toBeTruthy();

    const containerRow = rowOf(container, 'cms_opendata:DAC21_CMS_opendata');
    // Full DID in the tooltip; the scope is not repeated in the label.
    const name = containerRow.querySelector(
      '.jp-AFLab-Data-name'
    ) as HTMLElement;
    expect(name.title).toBe('cms_opendata:DAC21_CMS_opendata');
    expect(name.querySelector('.jp-AFLab-srOnly')?.textContent).toBe(
      'DAC21_CMS_opendata'
    );
    // The size the search did not carry comes from the details.
    await waitFor(() =>
      expect(containerRow.textContent).toContain('4 files · 1023 KiB')
    );
    expect(api.getDID).toHaveBeenCalledWith(
      'demo',
      'cms_opendata:DAC21_CMS_opendata',
      {
        availability: 'skip',
        wait: 0
      }
    );

    fireEvent.click(
      within(containerRow).getByRole('button', {
        name: /Expand cms_opendata:DAC21/
      })
    );
    await waitFor(() =>
      expect(
        rowOf(container, 'cms_opendata:Run2012B_DoubleMuParked')
      ).toBeTruthy()
    );
    expect(api.listContent).toHaveBeenCalledWith(
      'demo',
      'cms_opendata:DAC21_CMS_opendata',
      {
        cursor: null,
        limit: 200,
        refresh: false
      }
    );
    const availability = () =>
      container.querySelector(
        '[data-kind="availability"][data-did="cms_opendata:DAC21_CMS_opendata"]'
      ) as HTMLElement;
    await waitFor(() => expect(availability().dataset.state).toBe('complete'));
    expect(availability().textContent).toContain('All 4 files on 1 RSE');
    expect(availability().textContent).toContain('SITE2_USERDISK2/4');

    const dataset = rowOf(container, 'cms_opendata:Run2012B_DoubleMuParked');
    fireEvent.click(
      within(dataset).getByRole('button', {
        name: /Expand cms_opendata:Run2012B/
      })
    );
    const file = await waitFor(() => {
      const r = rowOf(
        container,
        'cms_opendata:Run2012B_DoubleMuParked_000.root'
      );
      expect(r).toBeTruthy();
      return r;
    });
    expect(api.listReplicas).toHaveBeenCalled();
    const badges = file.querySelectorAll('.jp-AFLab-replica');
    expect(badges).toHaveLength(2);
    expect((badges[0] as HTMLElement).dataset.state).toBe('AVAILABLE');
    expect(badges[0].textContent).toBe('SITE1_USERDISK✓');
    expect(badges[1].textContent).toBe('SITE2_USERDISKcopying');
    expect(file.textContent).toContain('1.5 KiB');
    // The file name is cut in the middle, its end stays readable.
    expect(
      file.querySelector('.jp-AFLab-middleEllipsis-tail')?.textContent
    ).toBe('_000.root');
  });

  it("shows the server's message when a search fails, and the login form on 401", async () => {
    const api = fakeApi();
    api.searchDIDs.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 400,
        type: 'bad_request',
        message:
          "'nope' is not a valid search: expected scope:name with * wildcards in the name, e.g. cms_opendata:*Mu*."
      })
    );
    const { panel } = setup(api);
    await waitFor(() => expect(panel().dataset.login).toBe('logged_in'));
    // A bare name is never sent (Rucio needs a scope): a suggestion instead.
    const calls = api.searchDIDs.mock.calls.length;
    await search('nope');
    expect(
      (await screen.findByText(/Rucio searches need a scope/)).textContent
    ).toContain('Did you mean');
    expect(api.searchDIDs.mock.calls.length).toBe(calls);
    await search('cms_opendata:nope[');
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('is not a valid search');
    expect(alert.textContent).toContain('HTTP 400 · bad_request');

    api.searchDIDs.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 401,
        type: 'credentials',
        message: 'Your Rucio token expired: log in again.'
      })
    );
    await search('cms_opendata:*');
    await waitFor(() => expect(panel().dataset.login).toBe('logged_out'));
    const form = await screen.findByRole('form', { name: /Log in to Rucio/ });
    expect(form.textContent).toContain('Your Rucio token expired');
  });

  it('mounts with one click, opens the menu, and shows mount errors under the row', async () => {
    const { container, panel, actions: a, model } = setup();
    await waitFor(() => expect(panel().dataset.login).toBe('logged_in'));
    await search('cms_opendata:*');
    const did = 'cms_opendata:DAC21_CMS_opendata';
    await waitFor(() => expect(rowOf(container, did)).toBeTruthy());
    fireEvent.click(
      within(rowOf(container, did)).getByRole('button', {
        name: `Mount ${did}`
      })
    );
    expect(a.mount).toHaveBeenCalledWith(
      expect.objectContaining({ did }),
      'demo',
      'cache'
    );
    fireEvent.click(
      within(rowOf(container, did)).getByRole('button', {
        name: `More actions for ${did}`
      })
    );
    expect(a.openMenu).toHaveBeenCalled();
    fireEvent.contextMenu(rowOf(container, did));
    expect(a.openMenu).toHaveBeenCalledTimes(2);

    act(() =>
      model.setMountNotice(
        'demo',
        did,
        new AFLabRequestError({
          status: 507,
          type: 'insufficient_storage',
          message: 'needs 790.2 GiB more in the cache',
          details: { needed_bytes: 848426773773, available_bytes: 57957061017 }
        })
      )
    );
    const notice = container.querySelector(
      '.jp-AFLab-Data-noticeRow'
    ) as HTMLElement;
    expect(notice.textContent).toContain(
      'Not enough room in the cache: needs 790 GiB, 54 GiB free'
    );
    expect(notice.textContent).toContain('needs 790.2 GiB more in the cache');
    fireEvent.click(within(notice).getByRole('button', { name: 'Dismiss' }));
    expect(container.querySelector('.jp-AFLab-Data-noticeRow')).toBeNull();
  });

  it('shows the mount state of a mounted DID and opens it', async () => {
    const mounted: IMount = {
      id: 'm1',
      did: 'cms_opendata:DAC21_CMS_opendata',
      did_type: 'container',
      instance: 'demo',
      mode: 'cache',
      source: 'auto',
      state: 'ready',
      message: '',
      target: 'af-data/cms_opendata/DAC21_CMS_opendata',
      created: 1,
      updated: 2,
      finished: 3,
      files: { total: 8, done: 8, failed: 0, active: 0 },
      bytes: { total: 8, done: 8, failed: 0 },
      rate_bytes_per_s: 0,
      eta_s: null,
      active: [],
      problems: []
    };
    const {
      container,
      panel,
      actions: a,
      mounts: m
    } = setup(fakeApi(), {
      mountList: [mounted]
    });
    await waitFor(() => expect(panel().dataset.login).toBe('logged_in'));
    await waitFor(() => expect(m.loaded).toBe(true));
    await search('cms_opendata:*');
    const did = 'cms_opendata:DAC21_CMS_opendata';
    await waitFor(() => expect(rowOf(container, did)).toBeTruthy());
    const row = rowOf(container, did);
    expect(row.dataset.mountState).toBe('ready');
    expect(row.textContent).toContain('Mounted');
    fireEvent.click(within(row).getByRole('button', { name: `Open ${did}` }));
    expect(a.openMount).toHaveBeenCalledWith(mounted);
  });

  it('offers to count a big collection and long-polls the count', async () => {
    const api = fakeApi();
    api.searchDIDs.mockResolvedValue(
      page([item('SingleMu_50k', 'dataset', { length: 50000 })])
    );
    api.listReplicas.mockResolvedValue(page([], null));
    let counted = 0;
    api.getDID.mockImplementation(async (_i, _d, options) => {
      if (options?.availability !== 'full') {
        return details('SingleMu_50k', 'dataset', {
          length: 50000,
          availability: {
            complete: false,
            computed: false,
            files_scanned: 0,
            rses: [],
            message: 'ask with availability=full'
          }
        });
      }
      counted++;
      return details('SingleMu_50k', 'dataset', {
        length: 50000,
        availability: {
          complete: counted >= 2,
          computed: true,
          files_scanned: counted >= 2 ? 50000 : 500,
          rses: [
            {
              rse: 'SITE1_USERDISK',
              files: 500,
              bytes: 1,
              files_available: counted >= 2 ? 50000 : 500,
              bytes_available: 1
            }
          ]
        }
      });
    });
    const { container, panel } = setup(api);
    await waitFor(() => expect(panel().dataset.login).toBe('logged_in'));
    await search('cms_opendata:*');
    const did = 'cms_opendata:SingleMu_50k';
    await waitFor(() => expect(rowOf(container, did)).toBeTruthy());
    fireEvent.click(
      within(rowOf(container, did)).getByRole('button', {
        name: `Expand ${did}`
      })
    );
    const availability = () =>
      container.querySelector(
        `[data-kind="availability"][data-did="${did}"]`
      ) as HTMLElement;
    await waitFor(() =>
      expect(availability().dataset.state).toBe('not_counted')
    );
    expect(availability().textContent).toContain(
      '50,000 files: replicas not counted'
    );
    await screen.findByText('This dataset has no files.');
    fireEvent.click(
      within(availability()).getByRole('button', { name: 'Count now' })
    );
    await waitFor(() => expect(availability().dataset.state).toBe('complete'));
    expect(availability().textContent).toContain('All 50,000 files on 1 RSE');
    const fullCalls = api.getDID.mock.calls.filter(
      c => c[2]?.availability === 'full'
    );
    expect(fullCalls.map(c => c[2]?.wait)).toEqual([1.5, 10]);
  });

  it('renders only the rows near the viewport of 10,000 results, and loads more as they come into view', async () => {
    const api = fakeApi();
    const many = Array.from({ length: 10000 }, (_, i) =>
      item(`f_${String(i).padStart(5, '0')}.root`, 'file', {
        replicas: [{ rse: 'SITE1_USERDISK', state: 'AVAILABLE' }]
      })
    );
    api.searchDIDs
      .mockResolvedValueOnce(page(many, 'next'))
      .mockResolvedValueOnce(
        page([item('last.root', 'file', { replicas: [] })], null)
      );
    const { container, panel } = setup(api);
    await waitFor(() => expect(panel().dataset.login).toBe('logged_in'));
    fireEvent.change(screen.getByLabelText('DID type'), {
      target: { value: 'file' }
    });
    await search('cms_opendata:*');
    const list = await waitFor(() => {
      const l = container.querySelector('.jp-AFLab-VirtualList') as HTMLElement;
      expect(l.dataset.rows).toBe('10001');
      return l;
    });
    expect(Number(list.dataset.rendered)).toBeLessThan(60);
    expect(container.querySelectorAll('[data-kind="did"]').length).toBeLessThan(
      60
    );
    expect(
      screen.getByText('10,000 of more results for cms_opendata:*')
    ).toBeTruthy();

    // Scroll to the end: the "more" row appears and loads the next page.
    list.scrollTop = 46 * 10000;
    fireEvent.scroll(list);
    await waitFor(
      () => expect(rowOf(container, 'cms_opendata:last.root')).toBeTruthy(),
      {
        timeout: 3000
      }
    );
    expect(api.searchDIDs).toHaveBeenLastCalledWith(
      'demo',
      'cms_opendata:*',
      'file',
      {
        cursor: 'next',
        limit: 200,
        refresh: false
      }
    );
    expect(rowOf(container, 'cms_opendata:last.root').textContent).toContain(
      'no replica'
    );
  });

  it('navigates the tree with the keyboard', async () => {
    const { container, panel } = setup();
    await waitFor(() => expect(panel().dataset.login).toBe('logged_in'));
    await search('cms_opendata:*');
    const did = 'cms_opendata:DAC21_CMS_opendata';
    await waitFor(() => expect(rowOf(container, did)).toBeTruthy());
    const row = rowOf(container, did);
    row.focus();
    fireEvent.keyDown(row, { key: 'ArrowRight' });
    await waitFor(() =>
      expect(rowOf(container, did).getAttribute('aria-expanded')).toBe('true')
    );
    await waitFor(() =>
      expect(rowOf(container, 'cms_opendata:ZZTo4mu')).toBeTruthy()
    );
    fireEvent.keyDown(rowOf(container, did), { key: 'ArrowLeft' });
    await waitFor(() =>
      expect(rowOf(container, did).getAttribute('aria-expanded')).toBe('false')
    );
  });
});
