import { expect, galata, test } from '@jupyterlab/galata';
import * as path from 'path';

/**
 * The Analysis Facility sidebar and its "Facility status" section, against
 * the running af_lab server extension.
 *
 * With AF_LAB_EXPECT_CONNECTED=1 (the facility is up and configured through
 * AF_LAB_UI_EXTRA_CONFIG) every service must be connected.
 */

const SCREENSHOT = path.join(
  __dirname,
  '..',
  'test-results',
  'screenshots',
  'sidebar.png'
);
const FINAL_STATES = ['connected', 'unreachable', 'error', 'not_configured'];
const EXPECT_CONNECTED = process.env.AF_LAB_EXPECT_CONNECTED === '1';

test.use({
  autoGoto: false,
  viewport: { width: 1280, height: 800 },
  // Galata keeps user settings in memory; start from the defaults.
  mockSettings: galata.DEFAULT_SETTINGS
});

test('the sidebar shows the state of every facility service', async ({
  page
}) => {
  const logs: string[] = [];
  const ourErrors: string[] = [];
  page.on('console', message => {
    logs.push(message.text());
    if (message.type() === 'error' && /af-lab|AFLab/i.test(message.text())) {
      ourErrors.push(message.text());
    }
  });
  page.on('pageerror', error => {
    if (/af-lab|AFLab/i.test(`${error.message}\n${error.stack}`)) {
      ourErrors.push(error.message);
    }
  });
  await page.goto();

  try {
    expect(
      logs.filter(line => line === 'JupyterLab extension af-lab is activated!')
    ).toHaveLength(1);

    const tab = page.locator('.lm-TabBar-tab[data-id="af-lab-sidebar"]');
    await expect(tab).toHaveAttribute('title', /Analysis Facility/);
    await page.sidebar.openTab('af-lab-sidebar');

    const sidebar = page.locator('#af-lab-sidebar');
    await expect(sidebar).toBeVisible();
    await expect(
      sidebar.locator('.jp-AccordionPanel-title', {
        hasText: 'Facility status'
      })
    ).toBeVisible();

    // Wait for the first answer of GET /af-lab/status.
    const status = sidebar.locator('.jp-AFLab-StatusPanel');
    await expect(status).toHaveAttribute('data-phase', /^(ready|error)$/, {
      timeout: 45_000
    });
    if ((await status.getAttribute('data-phase')) === 'error') {
      const message = await status.locator('[role="alert"]').innerText();
      throw new Error(`GET /af-lab/status failed: ${message}`);
    }
    await expect(status).toHaveAttribute('data-loading', 'false');

    // Every row must reach one of the final states (the panel refreshes
    // itself every statusRefreshSeconds).
    const rows = status.locator('[data-service-id]');
    await expect
      .poll(
        async () =>
          (
            await rows.evaluateAll(elements =>
              elements.map(element => element.getAttribute('data-state'))
            )
          ).every(state => FINAL_STATES.includes(state ?? '')),
        { timeout: 45_000 }
      )
      .toBe(true);

    const count = await rows.count();
    const seen: string[] = [];
    for (let i = 0; i < count; i++) {
      const row = rows.nth(i);
      const id = await row.getAttribute('data-service-id');
      const state = await row.getAttribute('data-state');
      seen.push(`${id}=${state}`);
      expect(FINAL_STATES, `state of ${id}`).toContain(state);
      // The state is written out, not only coloured.
      await expect(row.locator('.jp-AFLab-badge')).not.toBeEmpty();
    }
    console.log(`facility services: ${seen.join(', ') || '(none)'}`);

    if (EXPECT_CONNECTED) {
      expect(count, 'number of services').toBeGreaterThan(0);
      for (let i = 0; i < count; i++) {
        const row = rows.nth(i);
        const id = await row.getAttribute('data-service-id');
        const message = await row
          .locator('.jp-AFLab-service-message')
          .allInnerTexts();
        expect(
          await row.getAttribute('data-state'),
          `${id} should be connected (${message.join(' ')})`
        ).toBe('connected');
      }
    }
    expect(ourErrors, 'af-lab errors in the browser console').toEqual([]);
  } finally {
    await page.screenshot({ path: SCREENSHOT });
  }
});
