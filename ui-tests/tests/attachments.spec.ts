import { expect, galata, test } from '@jupyterlab/galata';
import * as path from 'path';

/**
 * Notebook attachments: a DID mounted from a notebook with the magic is
 * recorded in the notebook's metadata; reopened, the notebook's "Notebook
 * Inputs" section shows it mounted.
 *
 * Screenshot: ui-tests/test-results/screenshots/attachments.png
 */

const SHOT = path.join(
  __dirname,
  '..',
  'test-results',
  'screenshots',
  'attachments.png'
);
const DID = 'cms_opendata:ZZTo4mu';

test.use({
  autoGoto: false,
  viewport: { width: 1400, height: 900 },
  mockSettings: galata.DEFAULT_SETTINGS
});

test('a DID mounted by the magic is recorded and shown mounted after reopening', async ({
  page,
  request
}) => {
  test.skip(
    process.env.AF_LAB_EXPECT_CONNECTED !== '1',
    'needs the demo facility (./dev.sh test brings it up)'
  );
  test.setTimeout(5 * 60_000);
  await page.goto();
  const name = 'attachments.ipynb';
  await page.notebook.createNew(name);
  await page.notebook.setCell(
    0,
    'code',
    `%load_ext af_lab\nfileset = %rucio mount ${DID} --mode stream\nprint('mounted', len(fileset))`
  );
  await page.notebook.runCell(0);
  await expect
    .poll(
      async () => ((await page.notebook.getCellTextOutput(0)) ?? []).join(''),
      { timeout: 180_000 }
    )
    .toContain('mounted');
  expect(
    ((await page.notebook.getCellTextOutput(0)) ?? []).join('')
  ).not.toContain('Traceback');

  // The kernel's mount reaches the notebook's metadata, and the saved file.
  await expect
    .poll(
      async () => {
        await page.notebook.save();
        const answer = await request.get(`/api/contents/${name}?content=1`);
        const model = await answer.json();
        const list = model.content?.metadata?.af_lab?.attachments ?? [];
        return list.map((a: any) => `${a.did} ${a.mode}`);
      },
      { timeout: 60_000 }
    )
    .toContain(`${DID} stream`);

  await page.notebook.close();
  // Reopened by path (the file browser's double-click is flaky on a loaded machine).
  await page.evaluate(async path => {
    // Not returned: the widget cannot be serialized back to the test.
    await (window as any).jupyterapp.commands.execute('docmanager:open', {
      path
    });
  }, name);
  await expect(page.locator('.jp-NotebookPanel')).toBeVisible();
  await page.locator('.jp-AFLab-attachmentsButton').first().click();
  const section = page.locator('#af-lab-attachments');
  await expect(section).toBeVisible();
  const row = section.getByRole('listitem', { name: `${DID}: Mounted` });
  await expect(row).toBeVisible({ timeout: 60_000 });
  await expect(row).toContainText('.fileset.');
  // Already mounted: nothing to mount; taking it off the list stays possible.
  await expect(row.getByRole('button', { name: 'Mount' })).toBeDisabled();
  await expect(
    row.getByRole('button', { name: 'Remove from list' })
  ).toBeEnabled();
  // Only this section open, for the screenshot.
  const titles = page.locator(
    '#af-lab-sidebar .jp-AccordionPanel-title[aria-expanded="true"]'
  );
  for (let i = (await titles.count()) - 1; i >= 0; i--) {
    const t = titles.nth(i);
    if (!((await t.textContent()) ?? '').includes('Notebook Inputs')) {
      await t.click();
    }
  }
  await expect(row).toBeVisible();
  await page.screenshot({ path: SHOT });
});
