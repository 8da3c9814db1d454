import { expect, galata, test } from '@jupyterlab/galata';
import type { APIRequestContext, Locator, Page } from '@playwright/test';
import * as path from 'path';

/**
 * The "Data" and "Mounts" sections against the running af_lab server
 * extension and the demo facility (real Rucio, OpenBao, XRootD + XCache):
 *
 * 1. search `cms_opendata:*` for containers, expand the container → a
 *    dataset → its files, and see their replica badges and the dataset's
 *    availability per RSE;
 * 2. click Mount on a dataset, watch its progress bar complete (pushed over
 *    the server's event stream), open the mounted folder in the file
 *    browser, and run the inserted code in a plain kernel;
 * 3. drag a dataset into the notebook: the dropped cell mounts it and runs;
 * 4. a dataset too big for the cache shows the server's typed error.
 *
 * Screenshots: ui-tests/test-results/screenshots/data-*.png
 */

const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const SCOPE = 'cms_opendata';
const CONTAINER = `${SCOPE}:DAC21_CMS_opendata`;
const DATASET = `${SCOPE}:Run2012B_DoubleMuParked`;
const MOUNTED = `${SCOPE}:ZZTo4mu`;
const DROPPED = `${SCOPE}:SMHiggsToZZTo4L`;
const BIG = `${SCOPE}:SingleMu_50k`;

test.use({
  autoGoto: false,
  viewport: { width: 1400, height: 900 },
  mockSettings: galata.DEFAULT_SETTINGS
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `data-${name}.png`) });
}

/**
 * Unmount the DIDs this test mounts, so every run starts from scratch (the
 * facility keeps mounts across server restarts).
 */
async function unmount(
  request: APIRequestContext,
  dids: string[]
): Promise<void> {
  const listing = await request.get('/af-lab/mounts');
  if (!listing.ok()) {
    return;
  }
  const { mounts } = (await listing.json()) as {
    mounts: { id: string; did: string }[];
  };
  for (const m of mounts.filter(k => dids.includes(k.did))) {
    await request.delete(`/af-lab/mounts/${m.id}`);
  }
}

/**
 * Open the sidebar wide enough to read names, with only these sections
 * expanded.
 */
async function openSections(page: Page, names: string[]): Promise<Locator> {
  await page.sidebar.openTab('af-lab-sidebar');
  const sidebar = page.locator('#af-lab-sidebar');
  await expect(sidebar).toBeVisible();
  await page.sidebar.setWidth(400, 'left');
  const titles = sidebar.locator('.jp-AccordionPanel-title');
  await expect(
    sidebar.locator('.jp-AccordionPanel-title', { hasText: 'Data' })
  ).toBeVisible();
  const isExpanded = async (t: Locator) =>
    (await t.getAttribute('aria-expanded')) === 'true' ||
    /\blm-mod-expanded\b/.test((await t.getAttribute('class')) ?? '');
  // Collapse all, then expand the wanted ones in order: the accordion gives
  // the first one the room the others do not take.
  for (let i = 0; i < (await titles.count()); i++) {
    if (await isExpanded(titles.nth(i))) {
      await titles.nth(i).click();
    }
  }
  for (const name of names) {
    const t = sidebar.locator('.jp-AccordionPanel-title', { hasText: name });
    if (!(await isExpanded(t))) {
      await t.click();
    }
  }
  return sidebar;
}

/**
 * The Data panel, logged in (the facility seeded the demo password in Vault).
 */
async function dataPanel(page: Page): Promise<Locator> {
  const panel = page.locator('#af-lab-data .jp-AFLab-DataPanel');
  await expect(panel).toHaveAttribute('data-phase', 'ready', {
    timeout: 60_000
  });
  await expect(panel).toHaveAttribute('data-login', 'logged_in', {
    timeout: 60_000
  });
  return panel;
}

async function search(
  panel: Locator,
  pattern: string,
  type: string
): Promise<void> {
  await panel.getByLabel('DID type').selectOption(type);
  const box = panel.getByLabel('Search DIDs');
  await box.fill(pattern);
  await box.press('Enter');
}

function row(panel: Locator, did: string): Locator {
  return panel.locator(`[data-kind="did"][data-did="${did}"]`);
}

function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', message => {
    if (message.type() === 'error' && /af-lab|AFLab/i.test(message.text())) {
      errors.push(message.text());
    }
  });
  page.on('pageerror', error => {
    if (/af-lab|AFLab/i.test(`${error.message}\n${error.stack}`)) {
      errors.push(error.message);
    }
  });
  return errors;
}

test('search a container and expand it down to files with replicas', async ({
  page
}) => {
  test.setTimeout(3 * 60_000);
  const errors = collectErrors(page);
  await page.goto();
  try {
    // What a new user sees first: every section open, the default width.
    await page.sidebar.openTab('af-lab-sidebar');
    await expect(
      page.locator('#af-lab-data .jp-AFLab-DataPanel')
    ).toHaveAttribute('data-login', 'logged_in', { timeout: 60_000 });
    await shot(page, '0-first-open');

    await openSections(page, ['Data']);
    const panel = await dataPanel(page);

    // The type filter starts on collections, never on "everything".
    await expect(panel.getByLabel('DID type')).toHaveValue('collection');

    await search(panel, `${SCOPE}:*`, 'container');
    const container = row(panel, CONTAINER);
    await expect(container).toBeVisible({ timeout: 30_000 });
    await expect(panel.locator('.jp-AFLab-Data-results')).toContainText(
      '1 result'
    );
    // The full name is in the tooltip, whatever the width.
    await expect(container.locator('.jp-AFLab-Data-name')).toHaveAttribute(
      'title',
      CONTAINER
    );
    // Sizes the search did not carry come from the details, lazily.
    await expect(container.locator('.jp-AFLab-Data-meta')).toContainText(
      '8 files',
      { timeout: 30_000 }
    );
    await shot(page, '1-search');

    // Container → its datasets (not its files flattened).
    await container
      .getByRole('button', { name: `Expand ${CONTAINER}` })
      .click();
    const dataset = row(panel, DATASET);
    await expect(dataset).toBeVisible({ timeout: 30_000 });
    await expect(row(panel, MOUNTED)).toBeVisible();
    await expect(
      panel.locator(
        `[data-kind="availability"][data-did="${CONTAINER}"][data-state="complete"]`
      )
    ).toBeVisible({ timeout: 30_000 });

    // Dataset → its files, each with its replicas per RSE.
    await dataset.getByRole('button', { name: `Expand ${DATASET}` }).click();
    const files = panel.locator(
      `[data-kind="did"][data-type="file"][data-did^="${SCOPE}:Run2012B_DoubleMuParked_"]`
    );
    await expect(files).toHaveCount(4, { timeout: 30_000 });
    for (let i = 0; i < 4; i++) {
      const badges = files.nth(i).locator('.jp-AFLab-replica');
      await expect(badges.first()).toBeVisible();
      expect(await badges.count()).toBeGreaterThanOrEqual(1);
      await expect(
        files.nth(i).locator('.jp-AFLab-replica[data-state="AVAILABLE"]')
      ).not.toHaveCount(0);
    }
    const availability = panel.locator(
      `[data-kind="availability"][data-did="${DATASET}"]`
    );
    await expect(availability).toHaveAttribute('data-state', 'complete', {
      timeout: 30_000
    });
    await expect(availability).toContainText('All 4 files');
    await shot(page, '2-tree');

    // The row menu: every mount mode, code, copy; labelled in words.
    await dataset
      .getByRole('button', { name: `More actions for ${DATASET}` })
      .click();
    const menu = page.locator('.jp-AFLab-Data-menu');
    await expect(menu).toBeVisible();
    await expect(menu).toContainText('Mount as Stream Fileset');
    await expect(menu).toContainText('Insert Code into Notebook');
    await expect(menu).toContainText('Copy DID');
    await shot(page, '2b-menu');
    await page.keyboard.press('Escape');
    await expect(menu).toBeHidden();

    // A narrow sidebar: names are cut in the middle, the end stays readable.
    await page.sidebar.setWidth(280, 'left');
    await expect(
      files.first().locator('.jp-AFLab-middleEllipsis-tail')
    ).toHaveText('_000.root');
    await shot(page, '2c-narrow');
    expect(errors, 'af-lab errors in the browser console').toEqual([]);
  } finally {
    await shot(page, '2-tree-final');
  }
});

test('mount a dataset, follow its progress, open it and run its code', async ({
  page,
  request
}) => {
  test.setTimeout(6 * 60_000);
  const errors = collectErrors(page);
  await unmount(request, [MOUNTED, DROPPED, BIG]);
  await page.goto();
  try {
    const sidebar = await openSections(page, ['Data', 'Mounts']);
    // Give Mounts about half of the height: drag the split handle just
    // above its title.
    const mountsTitle = sidebar.locator('.jp-AccordionPanel-title', {
      hasText: 'Mounts'
    });
    const titleBox = await mountsTitle.boundingBox();
    const handles = sidebar.locator('.lm-SplitPanel-handle');
    for (let i = 0; titleBox && i < (await handles.count()); i++) {
      const h = await handles.nth(i).boundingBox();
      if (h && h.height > 0 && Math.abs(h.y + h.height - titleBox.y) < 6) {
        await page.mouse.move(h.x + h.width / 2, h.y + h.height / 2);
        await page.mouse.down();
        await page.mouse.move(h.x + h.width / 2, h.y - 260, { steps: 6 });
        await page.mouse.up();
        break;
      }
    }
    const panel = await dataPanel(page);
    await search(panel, `${SCOPE}:*`, 'dataset');
    const dataset = row(panel, MOUNTED);
    await expect(dataset).toBeVisible({ timeout: 30_000 });

    // One click: cache mode.
    await dataset.getByRole('button', { name: `Mount ${MOUNTED}` }).click();
    const mounts = page.locator('#af-lab-mounts .jp-AFLab-MountsPanel');
    const card = mounts.locator(`.jp-AFLab-mount[data-did="${MOUNTED}"]`);
    await expect(card).toBeVisible({ timeout: 30_000 });
    await expect(card.getByRole('progressbar')).toBeVisible();
    await shot(page, '3-mounting');
    await expect(card).toHaveAttribute('data-state', 'ready', {
      timeout: 180_000
    });
    await expect(card.getByRole('progressbar')).toHaveAttribute(
      'aria-valuenow',
      '100'
    );
    await expect(card).toContainText('2 of 2 files');
    // The row in Data follows the mount.
    await expect(dataset).toHaveAttribute('data-mount-state', 'ready');
    await expect(mounts).toHaveAttribute('data-connection', 'open');
    await shot(page, '4-mounted');

    // Open the mounted folder in the file browser.
    await card.getByRole('button', { name: 'Open folder' }).click();
    const listing = page.locator('#filebrowser .jp-DirListing-content');
    await expect(
      listing.locator('.jp-DirListing-item', { hasText: 'ZZTo4mu_000.root' })
    ).toBeVisible({ timeout: 30_000 });
    await expect(page.locator('#filebrowser .jp-BreadCrumbs')).toContainText(
      'ZZTo4mu'
    );
    await shot(page, '5-filebrowser');

    // The code runs in a plain kernel: no kernel extension, no config.
    await page.sidebar.openTab('af-lab-sidebar');
    await card.getByRole('button', { name: 'Insert code' }).click();
    const notebook = page.locator('.jp-NotebookPanel');
    await expect(notebook).toBeVisible({ timeout: 60_000 });
    const cell = notebook.locator('.jp-CodeCell').first();
    await expect(cell).toContainText('zzto4mu_files', { timeout: 30_000 });
    await page.notebook.runCell(0);
    await expect(cell.locator('.jp-OutputArea-output')).toContainText(
      `${MOUNTED}: 2 files in`,
      { timeout: 120_000 }
    );
    await shot(page, '6-notebook');

    // Drag a dataset that is not mounted yet into the notebook: the drop
    // inserts its code and mounts it; the cell waits for the mount.
    const dropped = row(panel, DROPPED);
    await expect(dropped).toBeVisible();
    // The grab point must be on screen, not under the Mounts section below.
    const grip = dropped.locator('.jp-AFLab-Data-meta');
    await grip.scrollIntoViewIfNeeded();
    const from = await grip.boundingBox();
    // Released over the lower part of the last cell (its output): the code
    // goes below it, as a user dropping "after" it expects.
    const to = await cell.boundingBox();
    expect(from && to).toBeTruthy();
    await page.mouse.move(from!.x + 20, from!.y + from!.height / 2);
    await page.mouse.down();
    await page.mouse.move(from!.x + 40, from!.y + 10, { steps: 4 });
    await page.mouse.move(to!.x + to!.width / 2, to!.y + to!.height - 6, {
      steps: 12
    });
    await page.mouse.up();
    const droppedCell = notebook.locator('.jp-CodeCell', {
      hasText: 'smhiggstozzto4l_files'
    });
    await expect(droppedCell).toBeVisible({ timeout: 30_000 });
    const codeCells = notebook.locator('.jp-CodeCell');
    await expect(codeCells.nth(0)).toContainText('zzto4mu_files');
    await expect(codeCells.nth(1)).toContainText('smhiggstozzto4l_files');
    await expect(
      mounts.locator(`.jp-AFLab-mount[data-did="${DROPPED}"]`)
    ).toBeVisible({ timeout: 30_000 });
    await droppedCell.click();
    await page.keyboard.press('Shift+Enter');
    await expect(droppedCell.locator('.jp-OutputArea-output')).toContainText(
      `${DROPPED}: 2 files in`,
      { timeout: 180_000 }
    );
    await shot(page, '7-dropped');

    // Too big for the cache: the server's typed error under the row.
    await page.sidebar.openTab('af-lab-sidebar');
    const big = row(panel, BIG);
    await big.scrollIntoViewIfNeeded();
    await big.getByRole('button', { name: `Mount ${BIG}` }).click();
    const notice = panel.locator('.jp-AFLab-Data-noticeRow');
    await expect(notice).toContainText('Not enough room in the cache', {
      timeout: 30_000
    });
    await expect(notice).toContainText('needs');
    await shot(page, '8-too-big');
    expect(errors, 'af-lab errors in the browser console').toEqual([]);
  } finally {
    await shot(page, '8-final');
    await unmount(request, [MOUNTED, DROPPED, BIG]);
  }
});
