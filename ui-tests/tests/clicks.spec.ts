import { expect, galata, test } from '@jupyterlab/galata';
import type { APIRequestContext } from '@playwright/test';
import * as path from 'path';

/**
 * The clicks from a fresh JupyterLab to a notebook that reads a dataset
 * (issue 13: at most 3 clicks plus running the cell). Typing the DID is not
 * a click; every click goes through `click()` below and is counted.
 *
 * Screenshots: ui-tests/test-results/screenshots/clicks-*.png
 */

const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const DATASET = 'cms_opendata:Run2012B_DoubleMuParked';

test.use({
  autoGoto: false,
  viewport: { width: 1440, height: 900 },
  mockSettings: galata.DEFAULT_SETTINGS
});

async function unmount(request: APIRequestContext): Promise<void> {
  const listing = await request.get('/af-lab/mounts');
  if (!listing.ok()) {
    return;
  }
  const { mounts } = (await listing.json()) as {
    mounts: { id: string; did: string }[];
  };
  for (const m of mounts.filter(k => k.did === DATASET)) {
    await request.delete(`/af-lab/mounts/${m.id}`);
  }
}

test('first open to a notebook reading a dataset: 3 clicks and a run', async ({
  page,
  request
}) => {
  test.setTimeout(5 * 60_000);
  await unmount(request);
  let clicks = 0;
  const click = async (locator: ReturnType<typeof page.locator>) => {
    clicks += 1;
    await locator.click();
  };
  try {
    await page.goto();
    // 1: the Analysis Facility tab (Data is open, the login comes from Vault).
    await click(page.locator('.lm-TabBar-tab[data-id="af-lab-sidebar"]'));
    const panel = page.locator('#af-lab-data .jp-AFLab-DataPanel');
    await expect(panel).toHaveAttribute('data-login', 'logged_in', {
      timeout: 60_000
    });
    const box = panel.getByLabel('Search DIDs');
    await box.fill(DATASET);
    await box.press('Enter');
    const row = panel.locator(`[data-kind="did"][data-did="${DATASET}"]`);
    await expect(row).toBeVisible({ timeout: 60_000 });
    // 2: the row's menu; 3: Insert Code (mounts it, opens a notebook).
    await click(
      row.getByRole('button', { name: `More actions for ${DATASET}` })
    );
    await click(
      page.locator('.jp-AFLab-Data-menu .lm-Menu-item', {
        hasText: 'Insert Code into Notebook'
      })
    );
    const notebook = page.locator('.jp-NotebookPanel');
    await expect(notebook).toBeVisible({ timeout: 60_000 });
    const cell = notebook.locator('.jp-CodeCell').first();
    await expect(cell).toContainText('_files', { timeout: 30_000 });
    await page.notebook.runCell(0);
    await expect(cell.locator('.jp-OutputArea-output')).toContainText(
      `${DATASET}: 4 files in`,
      { timeout: 180_000 }
    );
    console.log(
      `clicks from first open to a notebook reading ${DATASET}: ${clicks}`
    );
    expect(clicks).toBeLessThanOrEqual(3);
  } finally {
    await page.screenshot({ path: path.join(SHOTS, 'clicks-notebook.png') });
    await unmount(request);
  }
});
