import {
  act,
  fireEvent,
  render,
  screen,
  waitFor
} from '@testing-library/react';
import React from 'react';

import * as api from '../publish/api';
import { PublishDialog, PublishFormWidget } from '../publish/dialog';
import {
  checkDid,
  checkLifetime,
  checkName,
  sanitizeName
} from '../publish/naming';
import {
  buildRequest,
  initialValues,
  IPublishFormHandle,
  IPublishTarget,
  PublishForm,
  valuesFromJob
} from '../publish/PublishForm';
import { IPublishOptions, IPublishPlan } from '../publish/types';
import { AFLabRequestError } from '../request';

jest.mock('../publish/api');

const mockedApi = api as jest.Mocked<typeof api>;

const OPTIONS: IPublishOptions = {
  instance: 'demo',
  instances: [{ name: 'demo', display_name: 'Demo facility' }],
  account: 'jdoe',
  scopes: [
    {
      scope: 'cms_embargoed',
      embargoed: true,
      group: '/cms/embargo',
      allowed: false,
      reason: 'requires membership of /cms/embargo'
    },
    { scope: 'user.jdoe', embargoed: false, allowed: true }
  ],
  rses: [
    {
      rse: 'SITE1_USERDISK',
      default: true,
      quota_bytes: 10 * 1024 ** 3,
      used_bytes: 1024 ** 3,
      free_bytes: 9 * 1024 ** 3
    },
    {
      rse: 'SITE2_USERDISK',
      default: false,
      quota_bytes: null,
      used_bytes: 0,
      free_bytes: null
    }
  ],
  defaults: {
    scope: 'user.jdoe',
    rse: 'SITE1_USERDISK',
    lifetime_days: 30,
    allow_no_lifetime: false
  },
  naming: {
    pattern: '^[/A-Za-z0-9][/A-Za-z0-9\\.\\-_]*$',
    max_length: 250,
    scope_pattern: '^[a-zA-Z_\\-.0-9]+$',
    scope_max_length: 25
  }
};

function planFor(overrides: Partial<IPublishPlan> = {}): IPublishPlan {
  return {
    instance: 'demo',
    account: 'jdoe',
    scope: 'user.jdoe',
    rse: 'SITE1_USERDISK',
    lifetime_days: 30,
    dataset: null,
    container: null,
    files_total: 1,
    bytes_total: 1536,
    files_already_named: 0,
    names: ['hist.root'],
    skipped: [],
    quota: {
      needed_bytes: 1536,
      used_bytes: 1024 ** 3,
      limit_bytes: 10 * 1024 ** 3,
      admin: false
    },
    warnings: [],
    ...overrides
  };
}

const FILE: IPublishTarget[] = [
  { path: 'results/hist.root', isDir: false, size: 1536 }
];
const FOLDER: IPublishTarget[] = [{ path: 'results/plots', isDir: true }];

function form(container: HTMLElement): HTMLElement {
  return container.querySelector('.jp-AFLab-PublishForm') as HTMLElement;
}

function field(container: HTMLElement, name: string): HTMLInputElement {
  return container.querySelector(
    `#jp-AFLab-publish-${name}`
  ) as HTMLInputElement;
}

function help(container: HTMLElement, name: string): HTMLElement {
  return container.querySelector(
    `#jp-AFLab-publish-${name}-help`
  ) as HTMLElement;
}

async function renderReady(
  targets: IPublishTarget[] = FILE,
  props: Partial<React.ComponentProps<typeof PublishForm>> = {}
) {
  const onReadyChange = jest.fn();
  const handleRef: React.MutableRefObject<IPublishFormHandle | null> = {
    current: null
  };
  const result = render(
    <PublishForm
      targets={targets}
      validateDelayMs={0}
      onReadyChange={onReadyChange}
      handleRef={handleRef}
      {...props}
    />
  );
  await waitFor(() =>
    expect(form(result.container).dataset.phase).not.toBe('loading')
  );
  return { ...result, onReadyChange, handleRef };
}

beforeEach(() => {
  jest.resetAllMocks();
  mockedApi.fetchOptions.mockResolvedValue(OPTIONS);
  mockedApi.validatePublish.mockResolvedValue(planFor());
});

describe('naming rules (client side)', () => {
  it('accepts Rucio names and explains bad ones', () => {
    expect(checkName('hist.root')).toBeNull();
    expect(checkName('v2/sub/x_1-a.root')).toBeNull();
    expect(checkName('')).toMatch(/required/);
    expect(checkName('-x')).toMatch(/start with a letter or digit/);
    expect(checkName('bad name!.txt')).toMatch(/only letters, digits/);
    expect(checkName('a'.repeat(251))).toMatch(/at most 250/);
  });

  it('checks scope:name and bare names', () => {
    expect(checkDid('my_dataset', 'user.jdoe')).toBeNull();
    expect(checkDid('user.jdoe:my_dataset', 'x')).toBeNull();
    expect(checkDid('bad scope!:ds', 'x')).toMatch(/not a valid Rucio scope/);
    expect(checkDid('user.jdoe:', 'x')).toMatch(/required/);
  });

  it('suggests the closest valid name like the server does', () => {
    expect(sanitizeName('bad name!.txt')).toBe('bad_name_.txt');
    expect(sanitizeName('-x')).toBe('x');
    expect(sanitizeName('___')).toBe('output');
  });

  it('checks the lifetime against the policy', () => {
    expect(checkLifetime('30', false, false)).toBeNull();
    expect(checkLifetime('0.5', false, false)).toBeNull();
    expect(checkLifetime('', false, false)).toMatch(/Give a lifetime/);
    expect(checkLifetime('-1', false, false)).toMatch(/positive/);
    expect(checkLifetime('abc', false, false)).toMatch(/positive/);
    expect(checkLifetime('40000', false, false)).toMatch(/at most 36500/);
    expect(checkLifetime('', true, false)).toMatch(/requires a lifetime/);
    expect(checkLifetime('', true, true)).toBeNull();
  });
});

describe('buildRequest', () => {
  it('names a single file after it and sends no dataset by default', () => {
    const values = {
      ...initialValues(FILE, 'ana/zmumu.ipynb'),
      scope: 'user.jdoe',
      rse: 'SITE1_USERDISK',
      lifetime: '30'
    };
    expect(buildRequest(values, FILE)).toEqual({
      paths: ['results/hist.root'],
      scope: 'user.jdoe',
      rse: 'SITE1_USERDISK',
      lifetime_days: 30,
      dataset: null,
      name: 'hist.root',
      notebook: 'ana/zmumu.ipynb'
    });
  });

  it('puts a folder into a dataset named after it, with a name prefix', () => {
    const values = {
      ...initialValues(FOLDER),
      lifetime: '7',
      namePrefix: 'v2.'
    };
    expect(buildRequest(values, FOLDER)).toEqual({
      paths: ['results/plots'],
      lifetime_days: 7,
      dataset: 'plots',
      name_prefix: 'v2.'
    });
  });
});

describe('valuesFromJob', () => {
  it("reuses a failed job's choices with the name the server suggested", () => {
    const values = valuesFromJob({
      id: 'j',
      state: 'failed',
      phase: 'ended',
      message: '',
      created: 0,
      updated: 0,
      request: {
        instance: 'demo',
        paths: ['results/hist.root'],
        scope: 'user.jdoe',
        rse: 'SITE2_USERDISK',
        lifetime_days: 7,
        dataset: 'user.jdoe:zmumu',
        container: null,
        name: 'hist.root',
        notebook: 'ana/zmumu.ipynb'
      },
      dataset: null,
      container: null,
      did: null,
      files_total: 1,
      bytes_total: 1,
      progress: {
        files_done: 0,
        bytes_done: 0,
        files_skipped: 0,
        bytes_hashed: 0
      },
      error: {
        type: 'conflict',
        message: 'exists',
        field: 'name',
        suggestion: 'hist_v2.root'
      }
    });
    expect(values).toEqual({
      instance: 'demo',
      scope: 'user.jdoe',
      rse: 'SITE2_USERDISK',
      lifetime: '7',
      noLifetime: false,
      dataset: 'user.jdoe:zmumu',
      name: 'hist_v2.root',
      notebook: 'ana/zmumu.ipynb'
    });
  });
});

describe('PublishForm', () => {
  it('starts from given values rather than the defaults', async () => {
    const { container } = await renderReady(FILE, {
      initial: {
        rse: 'SITE2_USERDISK',
        lifetime: '7',
        name: 'hist_v2.root',
        dataset: 'zmumu'
      }
    });
    expect(field(container, 'rse').value).toBe('SITE2_USERDISK');
    expect(field(container, 'lifetime').value).toBe('7');
    expect(field(container, 'name').value).toBe('hist_v2.root');
    await waitFor(() =>
      expect(mockedApi.validatePublish).toHaveBeenLastCalledWith(
        expect.objectContaining({
          rse: 'SITE2_USERDISK',
          lifetime_days: 7,
          name: 'hist_v2.root',
          dataset: 'zmumu',
          scope: 'user.jdoe'
        })
      )
    );
  });

  it('offers the user scopes (embargoed marked and disabled), RSEs with quota and the defaults', async () => {
    const { container, onReadyChange } = await renderReady();

    const scope = field(container, 'scope') as unknown as HTMLSelectElement;
    expect(scope.value).toBe('user.jdoe');
    const embargoed = Array.from(scope.options).find(
      o => o.value === 'cms_embargoed'
    ) as HTMLOptionElement;
    expect(embargoed.disabled).toBe(true);
    expect(embargoed.textContent).toContain(
      'embargoed, requires membership of /cms/embargo'
    );
    expect(help(container, 'scope').textContent).toContain(
      'cms_embargoed is embargoed: requires membership of /cms/embargo.'
    );

    const rse = field(container, 'rse') as unknown as HTMLSelectElement;
    expect(rse.value).toBe('SITE1_USERDISK');
    expect(rse.options[0].textContent).toBe(
      'SITE1_USERDISK (default) — 9 GiB free of 10 GiB'
    );
    expect(rse.options[1].textContent).toBe('SITE2_USERDISK — no quota limit');

    expect(field(container, 'lifetime').value).toBe('30');
    // No "No expiry" choice when the facility requires a lifetime.
    expect(screen.queryByLabelText('No expiry')).toBeNull();
    expect(field(container, 'name').value).toBe('hist.root');
    expect(help(container, 'name').textContent).toContain(
      'user.jdoe:hist.root'
    );

    // The dry run answered: the summary shows what will happen.
    await waitFor(() => expect(form(container).dataset.phase).toBe('ready'));
    expect(mockedApi.validatePublish).toHaveBeenLastCalledWith({
      paths: ['results/hist.root'],
      instance: 'demo',
      scope: 'user.jdoe',
      rse: 'SITE1_USERDISK',
      lifetime_days: 30,
      dataset: null,
      name: 'hist.root'
    });
    const plan = screen.getByTestId('publish-plan');
    expect(plan.textContent).toContain(
      'Ready: 1 file (1.5 KiB) to SITE1_USERDISK.'
    );
    expect(plan.textContent).toContain('user.jdoe:hist.root');
    expect(plan.textContent).toContain('1 copy on SITE1_USERDISK, 30 days');
    expect(plan.textContent).toContain('needs 1.5 KiB; 9 GiB free of 10 GiB');
    expect(onReadyChange).toHaveBeenLastCalledWith(true);
  });

  it('validates the DID name as the user types and offers a fix', async () => {
    const { container, onReadyChange } = await renderReady();
    await waitFor(() => expect(form(container).dataset.phase).toBe('ready'));
    const calls = mockedApi.validatePublish.mock.calls.length;

    fireEvent.change(field(container, 'name'), {
      target: { value: 'my hist!.root' }
    });
    expect(form(container).dataset.phase).toBe('invalid');
    expect(field(container, 'name').getAttribute('aria-invalid')).toBe('true');
    expect(help(container, 'name').textContent).toContain(
      'Not a valid Rucio name'
    );
    expect(onReadyChange).toHaveBeenLastCalledWith(false);
    // Nothing invalid goes to the server.
    expect(mockedApi.validatePublish.mock.calls.length).toBe(calls);

    fireEvent.click(screen.getByRole('button', { name: /Use my_hist_.root/ }));
    expect(field(container, 'name').value).toBe('my_hist_.root');
    await waitFor(() => expect(form(container).dataset.phase).toBe('ready'));
    expect(mockedApi.validatePublish).toHaveBeenLastCalledWith(
      expect.objectContaining({ name: 'my_hist_.root' })
    );
  });

  it("shows the server's refusal at the field it names, with its suggestion", async () => {
    mockedApi.validatePublish.mockRejectedValue(
      new AFLabRequestError({
        status: 409,
        type: 'conflict',
        message:
          'user.jdoe:hist.root already exists in Rucio with different content. Rucio DIDs are immutable: publish under a new name, for example hist_v2.root.',
        details: { field: 'name', suggestion: 'hist_v2.root' }
      })
    );
    const { container, onReadyChange } = await renderReady();
    await waitFor(() => expect(form(container).dataset.phase).toBe('refused'));
    expect(help(container, 'name').textContent).toContain(
      'already exists in Rucio with different content'
    );
    expect(onReadyChange).not.toHaveBeenCalledWith(true);

    mockedApi.validatePublish.mockResolvedValue(
      planFor({ names: ['hist_v2.root'] })
    );
    fireEvent.click(screen.getByRole('button', { name: /Use hist_v2.root/ }));
    expect(field(container, 'name').value).toBe('hist_v2.root');
    await waitFor(() => expect(form(container).dataset.phase).toBe('ready'));
  });

  it('refuses an embargoed scope with the reason before asking the server', async () => {
    const { container } = await renderReady();
    fireEvent.change(field(container, 'scope'), {
      target: { value: 'cms_embargoed' }
    });
    expect(form(container).dataset.phase).toBe('invalid');
    expect(help(container, 'scope').textContent).toBe(
      'cms_embargoed is embargoed: requires membership of /cms/embargo.'
    );
  });

  it('requires a lifetime unless the facility allows none', async () => {
    const { container } = await renderReady();
    fireEvent.change(field(container, 'lifetime'), { target: { value: '' } });
    expect(help(container, 'lifetime').textContent).toBe(
      'Give a lifetime in days.'
    );
    expect(form(container).dataset.phase).toBe('invalid');
  });

  it('offers "No expiry" where allowed and then sends a null lifetime', async () => {
    mockedApi.fetchOptions.mockResolvedValue({
      ...OPTIONS,
      defaults: { ...OPTIONS.defaults, allow_no_lifetime: true }
    });
    const { container } = await renderReady();
    const none = screen.getByLabelText('No expiry') as HTMLInputElement;
    fireEvent.click(none);
    expect(field(container, 'lifetime').disabled).toBe(true);
    await waitFor(() =>
      expect(mockedApi.validatePublish).toHaveBeenLastCalledWith(
        expect.objectContaining({ lifetime_days: null })
      )
    );
  });

  it('needs a dataset for a container', async () => {
    const { container } = await renderReady();
    fireEvent.change(field(container, 'container'), {
      target: { value: 'my_container' }
    });
    expect(help(container, 'container').textContent).toContain(
      'give a dataset as well'
    );
    fireEvent.change(field(container, 'dataset'), {
      target: { value: 'user.jdoe:my_dataset' }
    });
    mockedApi.validatePublish.mockResolvedValue(
      planFor({
        dataset: { did: 'user.jdoe:my_dataset', new: false },
        container: { did: 'user.jdoe:my_container', new: true }
      })
    );
    await waitFor(() => expect(form(container).dataset.phase).toBe('ready'));
    await waitFor(() =>
      expect(help(container, 'dataset').textContent).toBe(
        'Existing dataset user.jdoe:my_dataset: the files will be added to it.'
      )
    );
    expect(help(container, 'container').textContent).toContain(
      'New container user.jdoe:my_container'
    );
  });

  it('defaults a folder to a dataset named after it and previews the names', async () => {
    mockedApi.validatePublish.mockResolvedValue(
      planFor({
        dataset: { did: 'user.jdoe:plots', new: true },
        files_total: 7,
        bytes_total: 7000,
        names: ['a.png', 'b.png', 'c.png', 'd.png', 'e.png', 'f.png', 'g.png'],
        skipped: ['.ipynb_checkpoints/x.png'],
        warnings: ['Notebook x.ipynb was not found; it is recorded as given.']
      })
    );
    const { container } = await renderReady(FOLDER);
    expect(field(container, 'dataset').value).toBe('plots');
    expect(field(container, 'name')).toBeNull();
    expect(field(container, 'namePrefix')).not.toBeNull();
    await waitFor(() => expect(form(container).dataset.phase).toBe('ready'));
    const plan = screen.getByTestId('publish-plan');
    expect(plan.textContent).toContain(
      'Ready: 7 files (6.8 KiB) to SITE1_USERDISK into the new dataset user.jdoe:plots.'
    );
    expect(
      plan.querySelectorAll('.jp-AFLab-PublishPlan-names li')
    ).toHaveLength(5);
    fireEvent.click(screen.getByRole('button', { name: 'Show 2 more names' }));
    expect(
      plan.querySelectorAll('.jp-AFLab-PublishPlan-names li')
    ).toHaveLength(7);
    expect(plan.textContent).toContain('.ipynb_checkpoints/x.png');
    expect(plan.textContent).toContain('Notebook x.ipynb was not found');
  });

  it('lets the user publish empty files after the server refused them', async () => {
    mockedApi.validatePublish.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 400,
        type: 'bad_request',
        message: '1 file(s) are empty (0 bytes): results/hist.root.',
        details: { field: 'paths', empty: ['results/hist.root'] }
      })
    );
    const { container } = await renderReady();
    await waitFor(() => expect(form(container).dataset.phase).toBe('refused'));
    expect(help(container, 'paths').textContent).toContain('are empty');
    fireEvent.click(screen.getByLabelText('Publish the empty files anyway'));
    await waitFor(() => expect(form(container).dataset.phase).toBe('ready'));
    expect(mockedApi.validatePublish).toHaveBeenLastCalledWith(
      expect.objectContaining({ allow_empty: true })
    );
  });

  it('shows why the options could not be loaded, and tries again', async () => {
    mockedApi.fetchOptions.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 503,
        type: 'unavailable',
        message: 'Rucio at http://127.0.0.1:1 is not reachable.'
      })
    );
    const { container } = await renderReady();
    expect(form(container).dataset.phase).toBe('options-error');
    expect(screen.getByRole('alert').textContent).toContain(
      'Rucio at http://127.0.0.1:1 is not reachable.'
    );
    fireEvent.click(screen.getByRole('button', { name: /Try again/ }));
    await waitFor(() => expect(form(container).dataset.phase).toBe('ready'));
    expect(mockedApi.fetchOptions).toHaveBeenCalledTimes(2);
  });

  it('prefills the notebook as provenance', async () => {
    const { container } = await renderReady(FILE, {
      notebook: 'ana/zmumu.ipynb'
    });
    expect(field(container, 'notebook').value).toBe('ana/zmumu.ipynb');
    await waitFor(() =>
      expect(mockedApi.validatePublish).toHaveBeenLastCalledWith(
        expect.objectContaining({ notebook: 'ana/zmumu.ipynb' })
      )
    );
  });

  it('submits only when ready, and stays open with the message when the server refuses', async () => {
    const { container, handleRef } = await renderReady();
    await waitFor(() => expect(form(container).dataset.phase).toBe('ready'));

    mockedApi.submitPublish.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 409,
        type: 'conflict',
        message:
          'user.jdoe:hist.root is being published by another job (abc); wait for it to finish.',
        details: { job: 'abc' }
      })
    );
    let job: unknown;
    await act(async () => {
      job = await handleRef.current!.submit();
    });
    expect(job).toBeNull();
    expect(form(container).dataset.phase).toBe('refused');
    expect(screen.getByRole('alert').textContent).toContain(
      'is being published by another job'
    );

    // Any change clears the refusal; the next submit goes through.
    fireEvent.change(field(container, 'lifetime'), { target: { value: '31' } });
    await waitFor(() => expect(form(container).dataset.phase).toBe('ready'));
    mockedApi.submitPublish.mockResolvedValueOnce({ id: 'j1' } as any);
    await act(async () => {
      job = await handleRef.current!.submit();
    });
    expect(job).toEqual({ id: 'j1' });
    expect(mockedApi.submitPublish).toHaveBeenLastCalledWith(
      expect.objectContaining({ lifetime_days: 31, name: 'hist.root' })
    );
  });

  it('does not submit while invalid', async () => {
    const { container, handleRef } = await renderReady();
    fireEvent.change(field(container, 'name'), { target: { value: '' } });
    let job: unknown;
    await act(async () => {
      job = await handleRef.current!.submit();
    });
    expect(job).toBeNull();
    expect(mockedApi.submitPublish).not.toHaveBeenCalled();
  });
});

describe('PublishDialog', () => {
  afterEach(() => {
    document.body.innerHTML = '';
  });

  function acceptButton(): HTMLButtonElement {
    return document.querySelector(
      '.jp-AFLab-PublishDialog .jp-Dialog-button.jp-mod-accept'
    ) as HTMLButtonElement;
  }

  it('enables Publish once checked, stays open when refused, and resolves with the job', async () => {
    const body = new PublishFormWidget({ targets: FILE });
    const dialog = new PublishDialog(body);
    const result = dialog.launch();
    await waitFor(() => expect(acceptButton()).not.toBeNull());
    expect(acceptButton().disabled).toBe(true);
    expect(acceptButton().textContent).toBe('Publish');
    await waitFor(() => expect(acceptButton().disabled).toBe(false), {
      timeout: 3000
    });

    mockedApi.submitPublish.mockRejectedValueOnce(
      new AFLabRequestError({
        status: 503,
        type: 'unavailable',
        message: 'Rucio is not reachable.'
      })
    );
    await act(async () => {
      fireEvent.click(acceptButton());
    });
    await waitFor(() =>
      expect(
        document
          .querySelector('.jp-AFLab-PublishForm')
          ?.getAttribute('data-phase')
      ).toBe('refused')
    );
    expect(dialog.isDisposed).toBe(false);
    expect(acceptButton().disabled).toBe(true);
    expect(document.body.textContent).toContain('Rucio is not reachable.');

    // Any change clears the refusal and checks again.
    fireEvent.change(
      document.querySelector('#jp-AFLab-publish-lifetime') as HTMLElement,
      { target: { value: '10' } }
    );
    await waitFor(() => expect(acceptButton().disabled).toBe(false), {
      timeout: 3000
    });
    mockedApi.submitPublish.mockResolvedValueOnce({ id: 'j9' } as any);
    let answer!: Awaited<typeof result>;
    await act(async () => {
      fireEvent.click(acceptButton());
      answer = await result;
    });
    expect(answer.button.accept).toBe(true);
    expect(answer.value).toEqual({ id: 'j9' });
    expect(dialog.isDisposed).toBe(true);
  });

  it('resolves with no job when cancelled', async () => {
    const body = new PublishFormWidget({ targets: FILE });
    const dialog = new PublishDialog(body);
    const result = dialog.launch();
    await waitFor(() => expect(acceptButton()).not.toBeNull());
    let answer!: Awaited<typeof result>;
    await act(async () => {
      dialog.reject();
      answer = await result;
    });
    expect(answer.button.accept).toBe(false);
    expect(mockedApi.submitPublish).not.toHaveBeenCalled();
  });
});
