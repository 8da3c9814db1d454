import { expect, galata, test } from '@jupyterlab/galata';
import * as fs from 'fs';
import * as path from 'path';

/**
 * A `.root` file in the file browser: a double click opens a read-only view
 * of its trees and branches (read on the server with uproot), not a text
 * editor failing with "not UTF-8"; its button inserts the code that opens
 * the file into a notebook.
 *
 * The file is one of the demo facility's NanoAOD-like originals.
 * Screenshots: ui-tests/test-results/screenshots/rootfile-*.png
 */

const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const FACILITY_CONFIG = process.env.AF_LAB_UI_EXTRA_CONFIG ?? '';
const ORIGINAL = path.join(
  path.dirname(FACILITY_CONFIG),
  'demo',
  'originals',
  'ZZTo4mu',
  'ZZTo4mu_000.root'
);

test.use({
  viewport: { width: 1400, height: 900 },
  mockSettings: galata.DEFAULT_SETTINGS
});

test('a ROOT file opens as its trees and branches, with code to open it', async ({
  page,
  tmpPath
}) => {
  test.skip(!fs.existsSync(ORIGINAL), `no demo file at ${ORIGINAL}`);
  await page.contents.uploadFile(ORIGINAL, `${tmpPath}/zz.root`);
  await page.filebrowser.openDirectory(tmpPath);
  await page
    .locator('#filebrowser .jp-DirListing-item', { hasText: 'zz.root' })
    .dblclick();

  const viewer = page.locator('.jp-AFLab-RootFile');
  await expect(viewer).toHaveAttribute('data-state', 'ready', {
    timeout: 30_000
  });
  const events = viewer.locator('[data-tree="Events"]');
  await expect(events).toContainText('TTree Events: 4,000 entries');
  await expect(events.locator('td', { hasText: /^Muon_pt$/ })).toBeVisible();
  // The branch filter narrows a long list.
  await events.getByLabel('Filter the branches of Events').fill('MET_');
  await expect(events.locator('tbody tr')).not.toHaveCount(0);
  for (const name of await events.locator('tbody td code').allTextContents()) {
    expect(name).toContain('MET_');
  }
  // Read-only, and no error dialog about text encodings.
  await expect(page.locator('.jp-Dialog')).toHaveCount(0);
  await page.screenshot({ path: path.join(SHOTS, 'rootfile-1-view.png') });

  await viewer.getByRole('button', { name: 'Insert code to open it' }).click();
  const cell = page.locator('.jp-NotebookPanel .jp-CodeCell').first();
  await expect(cell).toContainText('uproot.open(', { timeout: 60_000 });
  await expect(cell).toContainText(`${tmpPath}/zz.root`);
  await expect(cell).toContainText('zz_events = ');
  await page.screenshot({ path: path.join(SHOTS, 'rootfile-2-code.png') });
});
