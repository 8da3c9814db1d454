import { expect, galata, test } from '@jupyterlab/galata';
import type { APIRequestContext, Locator, Page } from '@playwright/test';
import * as path from 'path';

/**
 * Reaching data the first page does not show, against the demo facility:
 *
 * 1. a long dataset (`cms_opendata:SingleMu_50k`): the list is as tall as all
 *    its files at once, and the End key loads the page at the end, not the
 *    one after the loaded ones;
 * 2. a dataset no RSE can serve (`cms_opendata:MuOnia_archived`, its one
 *    replica UNAVAILABLE): the row offers "Request", which asks Rucio for a
 *    rule to an RSE on this host and mounts the DID once it is replicated.
 *
 * Screenshots: ui-tests/test-results/screenshots/reach-*.png
 */

const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const BIG = 'cms_opendata:SingleMu_50k';
const ARCHIVED = 'cms_opendata:MuOnia_archived';
const DID_ROW_HEIGHT = 46;

test.use({
  autoGoto: false,
  viewport: { width: 1400, height: 900 },
  mockSettings: galata.DEFAULT_SETTINGS
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `reach-${name}.png`) });
}

async function openData(page: Page): Promise<Locator> {
  await page.sidebar.openTab('af-lab-sidebar');
  const sidebar = page.locator('#af-lab-sidebar');
  await expect(sidebar).toBeVisible();
  await page.sidebar.setWidth(400, 'left');
  const panel = page.locator('#af-lab-data .jp-AFLab-DataPanel');
  await expect(panel).toHaveAttribute('data-login', 'logged_in', {
    timeout: 60_000
  });
  return panel;
}

async function search(panel: Locator, pattern: string): Promise<void> {
  await panel.getByLabel('DID type').selectOption('dataset');
  const box = panel.getByLabel('Search DIDs');
  await box.fill(pattern);
  await box.press('Enter');
}

function row(panel: Locator, did: string): Locator {
  return panel.locator(`[data-kind="did"][data-did="${did}"]`);
}

async function api(request: APIRequestContext, route: string): Promise<any> {
  const answer = await request.get(`/af-lab/${route}`);
  expect(answer.ok(), `GET ${route}`).toBeTruthy();
  return answer.json();
}

async function unmount(request: APIRequestContext, did: string) {
  const { mounts } = await api(request, 'mounts');
  for (const m of mounts.filter((k: { did: string }) => k.did === did)) {
    await request.delete(`/af-lab/mounts/${m.id}`);
  }
}

test('the End key loads the last page of a long dataset', async ({
  page,
  request
}) => {
  test.setTimeout(4 * 60_000);
  // What the last file is, from the server (the listing's order is Rucio's).
  const { instances } = await api(request, 'rucio/instances');
  const base = `rucio/instances/${instances[0].name}/dids/${encodeURIComponent(BIG)}`;
  const { length } = await api(request, base);
  const first = await api(request, `${base}/replicas?limit=1`);
  const last = await api(
    request,
    `${base}/replicas?limit=1&cursor=${first.cursor}&offset=${length - 1}`
  );
  const lastDid: string = last.items[0].did;

  await page.goto();
  const panel = await openData(page);
  await search(panel, 'cms_opendata:SingleMu*');
  const dataset = row(panel, BIG);
  await expect(dataset).toBeVisible({ timeout: 30_000 });
  await dataset.getByRole('button', { name: `Expand ${BIG}` }).click();
  const files = panel.locator('[data-kind="did"][data-type="file"]');
  await expect(files.first()).toBeVisible({ timeout: 60_000 });

  // The scrollbar spans every file at once (rows not loaded stand in).
  const list = panel.locator('.jp-AFLab-Data-tree');
  await expect
    .poll(() => list.evaluate(node => node.scrollHeight))
    .toBeGreaterThanOrEqual(length * DID_ROW_HEIGHT);
  await shot(page, '1-long-list');

  await files.first().click();
  await page.keyboard.press('End');
  const lastRow = row(panel, lastDid);
  await expect(lastRow).toBeVisible({ timeout: 60_000 });
  await expect(lastRow).toBeFocused();
  // It jumped: far fewer rows than files were loaded on the way.
  const rows = Number(await list.getAttribute('data-rows'));
  expect(rows).toBeLessThan(length / 2);
  expect(Number(await lastRow.getAttribute('data-index'))).toBe(rows - 1);
  await shot(page, '2-end');

  // Up a few rows: the neighbours of the last file, loaded with it.
  await page.keyboard.press('ArrowUp');
  await expect(
    panel.locator(`[data-kind="did"][data-index="${rows - 2}"]`)
  ).toBeFocused();
});

test('a dataset no RSE can serve offers a replica request', async ({
  page,
  request
}) => {
  test.setTimeout(3 * 60_000);
  await unmount(request, ARCHIVED);
  await page.goto();
  try {
    const panel = await openData(page);
    await search(panel, 'cms_opendata:MuOnia*');
    const dataset = row(panel, ARCHIVED);
    await expect(dataset).toBeVisible({ timeout: 30_000 });
    // Expanded, its replicas are counted: no RSE holds a readable copy, so
    // the row's action becomes Request.
    await dataset.getByRole('button', { name: `Expand ${ARCHIVED}` }).click();
    const availability = panel.locator(
      `[data-kind="availability"][data-did="${ARCHIVED}"]`
    );
    await expect(availability).toContainText('No replica', {
      timeout: 30_000
    });
    await expect(availability).toContainText('Request a replica');
    const requestButton = dataset.getByRole('button', {
      name: `Request ${ARCHIVED}`
    });
    await expect(requestButton).toBeVisible({ timeout: 30_000 });
    await shot(page, '3-no-replica');

    await requestButton.click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText(`Request a replica of ${ARCHIVED}`);
    await dialog.locator('input').fill('3');
    await dialog.getByRole('button', { name: 'Request' }).click();

    // The rule is asked for; the mount waits for Rucio to replicate.
    await expect
      .poll(
        async () => {
          const { mounts } = await api(request, 'mounts');
          return mounts
            .filter((m: { did: string }) => m.did === ARCHIVED)
            .map((m: any) => [m.mode, m.state, !!m.rule?.id, m.rule?.rse]);
        },
        { timeout: 60_000 }
      )
      .toEqual([['replica', 'replicating', true, expect.any(String)]]);
    await expect(dataset).toHaveAttribute('data-mount-state', 'replicating', {
      timeout: 30_000
    });
    await shot(page, '4-requested');
  } finally {
    await unmount(request, ARCHIVED);
  }
});
