import { expect, galata, test } from '@jupyterlab/galata';
import type { Locator, Page } from '@playwright/test';
import * as path from 'path';

/**
 * Publish, against the running af_lab server extension and the facility's
 * real Rucio (AF_LAB_UI_EXTRA_CONFIG):
 *
 * 1. make a small file in the workspace, right-click it in the file browser
 *    → "Publish to Rucio…", check the live validation, publish it into a new
 *    dataset with a notebook as provenance, watch the job go through its
 *    phases to done, read the published DIDs and the provenance, and find the
 *    DID in the Data view's search (when the Data view is there);
 * 2. the job list's states (running, interrupted, failed, done) with the
 *    server's answers replaced, to check how each one reads.
 *
 * Without a Rucio instance the first test is skipped, unless
 * AF_LAB_EXPECT_CONNECTED=1 (CI), where it fails.
 *
 * Screenshots: ui-tests/test-results/screenshots/publish-*.png
 */

const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const EXPECT_CONNECTED = process.env.AF_LAB_EXPECT_CONNECTED === '1';
const STAMP = Date.now().toString(36);

test.use({
  viewport: { width: 1400, height: 900 },
  // Galata keeps user settings in memory; start from the defaults.
  mockSettings: galata.DEFAULT_SETTINGS
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `publish-${name}.png`) });
}

/**
 * Open the Analysis Facility sidebar with the Publish section expanded and
 * the other sections collapsed.
 */
async function openPublishSection(page: Page): Promise<Locator> {
  await page.sidebar.openTab('af-lab-sidebar');
  const sidebar = page.locator('#af-lab-sidebar');
  await expect(sidebar).toBeVisible();
  await page.sidebar.setWidth(440, 'left');
  await expandOnly(sidebar, 'Publish');
  return sidebar.locator('.jp-AFLab-PublishPanel');
}

async function expandOnly(sidebar: Locator, label: string): Promise<void> {
  const titles = sidebar.locator('.jp-AccordionPanel-title');
  await expect(titles.filter({ hasText: label })).toBeVisible();
  for (let i = 0; i < (await titles.count()); i++) {
    const t = titles.nth(i);
    // textContent: innerText is upper-cased by the theme's CSS.
    const isTarget = ((await t.textContent()) ?? '').trim() === label;
    const expanded = (await t.getAttribute('aria-expanded')) === 'true';
    if (isTarget !== expanded) {
      await t.click();
    }
  }
}

const NOTEBOOK = JSON.stringify({
  cells: [
    {
      cell_type: 'code',
      execution_count: null,
      metadata: {},
      outputs: [],
      source: ["open('result.txt', 'w').write('hello')"]
    }
  ],
  metadata: {},
  nbformat: 4,
  nbformat_minor: 5
});

test('right-click a file, publish it to Rucio, watch it finish', async ({
  page,
  request,
  tmpPath
}) => {
  test.setTimeout(240_000);
  const options = await request.get('/af-lab/publish/options');
  if (!options.ok()) {
    const body = await options.text();
    if (EXPECT_CONNECTED) {
      throw new Error(`GET /af-lab/publish/options failed: ${body}`);
    }
    test.skip(true, `No Rucio to publish to: ${body}`);
  }
  const { account, scopes } = (await options.json()) as {
    account: string;
    scopes: { scope: string; allowed: boolean; embargoed: boolean }[];
  };
  const scope = `user.${account}`;

  const fileName = `ui_publish_${STAMP}.txt`;
  const notebook = `${tmpPath}/make_${STAMP}.ipynb`;
  const dataset = `ui_publish_ds_${STAMP}`;
  expect(
    await page.contents.uploadContent(
      `published by the af-lab Galata test ${STAMP}\n`,
      'text',
      `${tmpPath}/${fileName}`
    )
  ).toBe(true);
  expect(await page.contents.uploadContent(NOTEBOOK, 'text', notebook)).toBe(
    true
  );
  await page.filebrowser.refresh();

  const panel = await openPublishSection(page);
  await expect(panel).toHaveAttribute('data-phase', 'ready', {
    timeout: 30_000
  });
  // The file browser shares the left area with the facility sidebar.
  await page.sidebar.openTab('filebrowser');

  // Record every state/phase a job card of ours shows, to prove the
  // progress was rendered (a small file may finish in well under a second).
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as any).__afPublishSeen = seen;
    const record = () => {
      document
        .querySelectorAll<HTMLElement>('.jp-AFLab-PublishJob')
        .forEach(el => {
          const entry = `${el.dataset.jobId}|${el.dataset.state}|${el.dataset.phase}`;
          if (!seen.includes(entry)) {
            seen.push(entry);
          }
        });
    };
    new MutationObserver(record).observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ['data-state', 'data-phase']
    });
  });

  // Right-click the file → "Publish to Rucio…".
  const item = page.locator('.jp-DirListing-item', { hasText: fileName });
  await expect(item).toBeVisible();
  await item.click({ button: 'right' });
  const menuItem = page.locator('.lm-Menu-item', {
    hasText: 'Publish to Rucio…'
  });
  await expect(menuItem).toBeVisible();
  await menuItem.click();

  const dialog = page.locator('.jp-AFLab-PublishDialog');
  await expect(dialog).toBeVisible();
  const form = dialog.locator('.jp-AFLab-PublishForm');
  const publish = dialog.locator('.jp-Dialog-button.jp-mod-accept');
  await expect(form).toHaveAttribute('data-phase', 'ready', {
    timeout: 60_000
  });
  await expect(publish).toBeEnabled();

  // The defaults: the file's name, the user's scope, an RSE and a lifetime.
  const name = dialog.locator('#jp-AFLab-publish-name');
  await expect(name).toHaveValue(fileName);
  await expect(dialog.locator('#jp-AFLab-publish-scope')).toHaveValue(scope);
  await expect(dialog.locator('#jp-AFLab-publish-rse')).not.toHaveValue('');
  await expect(dialog.locator('#jp-AFLab-publish-lifetime')).not.toHaveValue(
    ''
  );
  await expect(dialog.locator('.jp-AFLab-PublishPlan')).toContainText(
    `${scope}:${fileName}`
  );
  // Embargoed scopes the user may not use are offered disabled, with why.
  for (const s of scopes.filter(x => x.embargoed && !x.allowed)) {
    const option = dialog.locator(
      `#jp-AFLab-publish-scope option[value="${s.scope}"]`
    );
    await expect(option).toBeDisabled();
    await expect(option).toContainText('embargoed');
  }

  // An invalid name is refused as it is typed, with a fix on offer.
  await name.fill('my result!.txt');
  await expect(form).toHaveAttribute('data-phase', 'invalid');
  await expect(publish).toBeDisabled();
  await expect(dialog.locator('#jp-AFLab-publish-name-help')).toContainText(
    'Not a valid Rucio name'
  );
  await shot(page, 'dialog-invalid');
  await dialog.getByRole('button', { name: /Use my_result_.txt/ }).click();
  await expect(name).toHaveValue('my_result_.txt');
  await expect(form).toHaveAttribute('data-phase', 'ready', {
    timeout: 30_000
  });

  // Back to the file's own name, into a new dataset, with the notebook as
  // provenance.
  await name.fill(fileName);
  await dialog.locator('#jp-AFLab-publish-dataset').fill(dataset);
  await dialog.locator('#jp-AFLab-publish-notebook').fill(notebook);
  await expect(form).toHaveAttribute('data-phase', 'ready', {
    timeout: 30_000
  });
  await expect(dialog.locator('#jp-AFLab-publish-dataset-help')).toContainText(
    `New dataset ${scope}:${dataset}`
  );
  const plan = dialog.locator('.jp-AFLab-PublishPlan');
  await expect(plan).toContainText('Ready: 1 file');
  await expect(plan).toContainText(`into the new dataset ${scope}:${dataset}`);
  await shot(page, 'dialog');

  await publish.click();
  await expect(dialog).toBeHidden({ timeout: 30_000 });

  // The job appears in the sidebar at once, then runs to done.
  const card = panel.locator('.jp-AFLab-PublishJob', {
    hasText: `${scope}:${dataset}`
  });
  await expect(card).toBeVisible();
  await shot(page, 'progress');
  await expect(card).toHaveAttribute('data-state', 'done', {
    timeout: 120_000
  });
  const jobId = await card.getAttribute('data-job-id');
  const seen: string[] = await page.evaluate(
    () => (window as any).__afPublishSeen
  );
  const ours = seen.filter(entry => entry.startsWith(`${jobId}|`));
  console.log(`job ${jobId} was shown as: ${ours.join(' → ')}`);
  expect(
    ours.some(e => /\|(queued|running)\|/.test(e)),
    'the job was shown before it was done'
  ).toBe(true);
  expect(ours[ours.length - 1]).toBe(`${jobId}|done|ended`);

  // Its DIDs, copyable: the dataset and the file.
  await expect(card.locator('.jp-AFLab-badge')).toHaveText('Done');
  await expect(card).toContainText('Published 1 file');
  await expect(card.locator(`[data-did="${scope}:${dataset}"]`)).toBeVisible();
  const fileDid = card.locator(`[data-did="${scope}:${fileName}"]`);
  await expect(fileDid).toBeVisible();
  await expect(fileDid.getByRole('button', { name: /Copy/ })).toBeVisible();

  // Its provenance names the notebook.
  await card.locator('summary', { hasText: 'Provenance' }).click();
  const provenance = card.locator('.jp-AFLab-Provenance-list');
  await expect(provenance).toContainText(notebook, { timeout: 30_000 });
  await expect(provenance).toContainText('af-lab version');
  await card.scrollIntoViewIfNeeded();
  await shot(page, 'done');

  // The server agrees.
  const prov = await request.get(
    `/af-lab/publish/provenance?did=${encodeURIComponent(`${scope}:${fileName}`)}`
  );
  expect(prov.ok()).toBe(true);
  expect((await prov.json()).provenance.notebook).toBe(notebook);

  // The DID is found by the Data view's search, when there is one.
  const sidebar = page.locator('#af-lab-sidebar');
  const dataTitle = sidebar.locator('.jp-AccordionPanel-title', {
    hasText: /^Data$/
  });
  if ((await dataTitle.count()) === 0) {
    console.log('no Data view in this build: DID search not checked');
    return;
  }
  await expandOnly(sidebar, 'Data');
  const search = sidebar.getByLabel('Search DIDs (scope:name, * as wildcard)');
  await expect(search).toBeEnabled({ timeout: 60_000 });
  await search.fill(`${scope}:ui_publish_*${STAMP}*`);
  await search.press('Enter');
  await expect(
    sidebar.locator(`.jp-AFLab-DataPanel [data-did="${scope}:${dataset}"]`)
  ).toBeVisible({ timeout: 60_000 });
  await shot(page, 'data-view');
});

test('the sidebar Publish button publishes the selected folder as a dataset', async ({
  page,
  request,
  tmpPath
}) => {
  test.setTimeout(180_000);
  const options = await request.get('/af-lab/publish/options');
  if (!options.ok()) {
    if (EXPECT_CONNECTED) {
      throw new Error(
        `GET /af-lab/publish/options failed: ${await options.text()}`
      );
    }
    test.skip(true, 'No Rucio to publish to');
  }
  const { account } = (await options.json()) as { account: string };
  const scope = `user.${account}`;
  const folder = `plots_${STAMP}`;
  let bytes = 0;
  for (const n of ['a', 'b']) {
    const text = `${n} ${STAMP}\n`;
    bytes += text.length;
    expect(
      await page.contents.uploadContent(
        text,
        'text',
        `${tmpPath}/${folder}/${n}_${STAMP}.txt`
      )
    ).toBe(true);
  }
  await page.filebrowser.refresh();
  await page.locator('.jp-DirListing-item', { hasText: folder }).click();

  const panel = await openPublishSection(page);
  await panel.getByRole('button', { name: /Publish…/ }).click();
  const dialog = page.locator('.jp-AFLab-PublishDialog');
  const form = dialog.locator('.jp-AFLab-PublishForm');
  await expect(form).toHaveAttribute('data-phase', 'ready', {
    timeout: 60_000
  });
  await expect(dialog.locator('.jp-AFLab-PublishForm-targets')).toContainText(
    `Folder${tmpPath}/${folder}`
  );
  // A folder goes into a dataset named after it; files keep their names.
  await expect(dialog.locator('#jp-AFLab-publish-dataset')).toHaveValue(folder);
  await expect(dialog.locator('#jp-AFLab-publish-name')).toHaveCount(0);
  const plan = dialog.locator('.jp-AFLab-PublishPlan');
  await expect(plan).toContainText(
    `Ready: 2 files (${bytes} B) to SITE1_USERDISK into the new dataset ${scope}:${folder}.`
  );
  await shot(page, 'folder-dialog');
  await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
  await expect(dialog).toBeHidden({ timeout: 30_000 });

  const card = panel.locator('.jp-AFLab-PublishJob', {
    hasText: `${scope}:${folder}`
  });
  await expect(card).toHaveAttribute('data-state', 'done', {
    timeout: 120_000
  });
  for (const n of ['a', 'b']) {
    await expect(
      card.locator(`[data-did="${scope}:${n}_${STAMP}.txt"]`)
    ).toBeVisible();
  }
  await shot(page, 'folder-done');
});

test('the job list reads well in every state', async ({ page }) => {
  const now = Date.now() / 1000;
  const base = {
    account: 'jdoe',
    user: 'jdoe',
    request: {
      instance: 'demo',
      paths: ['results/plots'],
      scope: 'user.jdoe',
      rse: 'SITE1_USERDISK',
      lifetime_days: 30
    },
    container: null,
    files_total: 120,
    bytes_total: 3.5 * 1024 ** 3,
    rule_ids: [],
    expires_at: null,
    provenance: { notebook: 'ana/zmumu.ipynb' },
    warnings: [],
    error: null,
    resumable: false,
    noop: false
  };
  const jobs = [
    {
      ...base,
      id: 'running1',
      state: 'running',
      phase: 'copying',
      message: 'Copying 120 file(s) to SITE1_USERDISK.',
      created: now - 60,
      updated: now,
      dataset: { did: 'user.jdoe:plots_v3', new: true },
      did: 'user.jdoe:plots_v3',
      progress: {
        files_done: 47,
        bytes_done: 1.4 * 1024 ** 3,
        files_skipped: 2,
        bytes_hashed: 3.5 * 1024 ** 3
      }
    },
    {
      ...base,
      id: 'interrupted1',
      state: 'interrupted',
      phase: 'registering',
      message: 'Interrupted while registering.',
      created: now - 600,
      updated: now - 500,
      dataset: { did: 'user.jdoe:zmumu_hists', new: true },
      did: 'user.jdoe:zmumu_hists',
      progress: {
        files_done: 120,
        bytes_done: 3.5 * 1024 ** 3,
        files_skipped: 0,
        bytes_hashed: 3.5 * 1024 ** 3
      },
      error: {
        type: 'unavailable',
        message:
          'Rucio at https://rucio.example:443 did not answer while registering the replicas.',
        suggestion: 'Resume once Rucio answers again; nothing is lost.'
      },
      resumable: true
    },
    {
      ...base,
      id: 'failed1',
      state: 'failed',
      phase: 'ended',
      message:
        'Nothing was registered in Rucio; the copies were removed. Your local files are untouched.',
      created: now - 3600,
      updated: now - 3500,
      dataset: null,
      did: 'user.jdoe:hist.root',
      files_total: 1,
      bytes_total: 52_000,
      request: { ...base.request, paths: ['results/hist.root'] },
      progress: {
        files_done: 0,
        bytes_done: 0,
        files_skipped: 0,
        bytes_hashed: 52_000
      },
      error: {
        type: 'conflict',
        message:
          'user.jdoe:hist.root already exists in Rucio with different content. Rucio DIDs are immutable: publish under a new name, for example hist_v2.root.',
        suggestion: 'hist_v2.root'
      }
    },
    {
      ...base,
      id: 'done1',
      state: 'done',
      phase: 'ended',
      message:
        'Published 2 file(s), 19 B, as user.jdoe:selection on SITE1_USERDISK; the rule expires 2026-12-23.',
      created: now - 7200,
      updated: now - 7100,
      dataset: { did: 'user.jdoe:selection', new: true },
      container: { did: 'user.jdoe:zmumu_2026', new: false },
      did: 'user.jdoe:selection',
      files_total: 2,
      bytes_total: 19,
      progress: {
        files_done: 2,
        bytes_done: 19,
        files_skipped: 0,
        bytes_hashed: 19
      },
      expires_at: '2026-12-23T00:04:45+00:00',
      rule_state: 'OK'
    }
  ];
  await page.route(/\/af-lab\/publish\/jobs(\?.*)?$/, route =>
    route.fulfill({ json: { jobs } })
  );
  await page.route(/\/af-lab\/publish\/jobs\/done1(\?.*)?$/, route =>
    route.fulfill({
      json: {
        job: jobs[3],
        offset: 0,
        files: ['a', 'b'].map(n => ({
          path: `sel/${n}.txt`,
          did: `user.jdoe:${n}.txt`,
          bytes: 9,
          adler32: '0b510287',
          state: 'registered',
          error: null
        }))
      }
    })
  );
  // No live stream: the section says so and keeps polling.
  await page.route(/\/af-lab\/events/, route => route.abort());
  await page.goto();

  const panel = await openPublishSection(page);
  await expect(panel.locator('.jp-AFLab-PublishJob')).toHaveCount(4);
  await expect(panel.locator('.jp-AFLab-PublishPanel-live')).toContainText(
    /Reconnecting|Connecting/
  );

  const running = panel.locator('[data-job-id="running1"]');
  await expect(running).toContainText('Copying to storage');
  await expect(running).toContainText('step 2 of 5');
  await expect(running).toContainText(
    '47 of 120 files · 1.4 GiB of 3.5 GiB (2 already in Rucio)'
  );
  await expect(running.getByRole('progressbar')).toHaveAttribute(
    'aria-valuenow',
    '40'
  );
  await expect(running.getByRole('button', { name: /Cancel/ })).toBeEnabled();

  const interrupted = panel.locator('[data-job-id="interrupted1"]');
  await expect(interrupted).toContainText('did not answer');
  await expect(
    interrupted.getByRole('button', { name: /Resume/ })
  ).toBeVisible();
  // Registration had begun: too late to cancel.
  await expect(
    interrupted.getByRole('button', { name: /Cancel/ })
  ).toBeDisabled();

  const failed = panel.locator('[data-job-id="failed1"]');
  await expect(failed.getByRole('alert')).toContainText(
    'Suggestion: hist_v2.root'
  );
  await expect(failed.getByRole('button', { name: /Retry/ })).toBeVisible();
  await expect(failed.getByRole('button', { name: /Dismiss/ })).toBeVisible();

  const done = panel.locator('[data-job-id="done1"]');
  await expect(done.locator('[data-did="user.jdoe:zmumu_2026"]')).toBeVisible();
  await expect(done.locator('[data-did="user.jdoe:selection"]')).toBeVisible();
  await expect(done.locator('[data-did="user.jdoe:b.txt"]')).toBeVisible();
  await shot(page, 'states');
  await done.scrollIntoViewIfNeeded();
  await shot(page, 'states-done');
});
