import { expect, galata, test } from '@jupyterlab/galata';
import type { Page } from '@playwright/test';
import * as path from 'path';

/**
 * Dropping a Data row into a notebook puts its code where the pointer says:
 * on the lower half of a cell (the last one, say) below that cell, on the
 * upper half above it (JupyterLab's own rule for dropped cells).
 *
 * Screenshots: ui-tests/test-results/screenshots/drop-*.png
 */

const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const DATASET = 'cms_opendata:ZZTo4mu';

test.use({
  viewport: { width: 1400, height: 900 },
  mockSettings: galata.DEFAULT_SETTINGS
});

async function dragRowOnto(page: Page, fraction: number): Promise<void> {
  const panel = page.locator('#af-lab-data .jp-AFLab-DataPanel');
  const row = panel.locator(`[data-kind="did"][data-did="${DATASET}"]`);
  const from = (await row.locator('.jp-AFLab-Data-meta').boundingBox())!;
  const last = page.locator('.jp-NotebookPanel .jp-CodeCell').last();
  const to = (await last.boundingBox())!;
  await page.mouse.move(from.x + 20, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(from.x + 40, from.y + 10, { steps: 4 });
  await page.mouse.move(to.x + to.width / 2, to.y + to.height * fraction, {
    steps: 12
  });
  await page.mouse.up();
}

test('a row dropped on the lower half of the last cell goes below it', async ({
  page,
  request
}) => {
  test.setTimeout(4 * 60_000);
  await page.notebook.createNew('drop.ipynb');
  await page.notebook.setCell(0, 'code', 'print("first")');
  await page.sidebar.openTab('af-lab-sidebar');
  await page.sidebar.setWidth(400, 'left');
  const panel = page.locator('#af-lab-data .jp-AFLab-DataPanel');
  await expect(panel).toHaveAttribute('data-login', 'logged_in', {
    timeout: 60_000
  });
  try {
    await panel.getByLabel('DID type').selectOption('dataset');
    await panel.getByLabel('Search DIDs').fill(DATASET);
    await panel.getByLabel('Search DIDs').press('Enter');
    await expect(
      panel.locator(`[data-kind="did"][data-did="${DATASET}"]`)
    ).toBeVisible({ timeout: 30_000 });

    const sources = () =>
      page
        .locator('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-editor')
        .allTextContents();
    await dragRowOnto(page, 0.8);
    await expect.poll(async () => (await sources()).length).toBe(2);
    let cells = await sources();
    expect(cells[0]).toBe('print("first")');
    expect(cells[1]).toContain('zzto4mu_files');

    // The upper half of the (new) last cell: above it.
    await dragRowOnto(page, 0.2);
    await expect.poll(async () => (await sources()).length).toBe(3);
    cells = await sources();
    expect(cells[0]).toBe('print("first")');
    expect(cells[1]).toContain('zzto4mu');
    expect(cells[2]).toContain('zzto4mu_files');
    await page.screenshot({ path: path.join(SHOTS, 'drop-1-below.png') });
  } finally {
    const listing = await request.get('/af-lab/mounts');
    if (listing.ok()) {
      const { mounts } = await listing.json();
      for (const m of mounts.filter((k: any) => k.did === DATASET)) {
        await request.delete(`/af-lab/mounts/${m.id}`);
      }
    }
  }
});
