import { expect, galata, test } from '@jupyterlab/galata';
import * as path from 'path';

/**
 * The notebook magics in a plain kernel started by the browser: the kernel
 * finds its Jupyter server by itself (no configuration, no kernel extension
 * set up by the user) and talks to the demo facility through af-lab.
 *
 * Screenshot: ui-tests/test-results/screenshots/magics.png
 */

const SHOT = path.join(
  __dirname,
  '..',
  'test-results',
  'screenshots',
  'magics.png'
);

test.use({
  autoGoto: false,
  viewport: { width: 1400, height: 900 },
  mockSettings: galata.DEFAULT_SETTINGS
});

test('%rucio searches and lists from a notebook, errors in one line', async ({
  page
}) => {
  test.skip(
    process.env.AF_LAB_EXPECT_CONNECTED !== '1',
    'needs the demo facility (./dev.sh test brings it up)'
  );
  test.setTimeout(4 * 60_000);
  await page.goto();
  await page.notebook.createNew('magics.ipynb');

  const output = async (cell: number) =>
    ((await page.notebook.getCellTextOutput(cell)) ?? []).join('');

  await page.notebook.setCell(
    0,
    'code',
    '%load_ext af_lab\n%rucio search cms_opendata:* --type dataset'
  );
  await page.notebook.addCell('code', '%rucio ls cms_opendata:ZZTo4mu');
  // A malformed DID: the server's message, not a traceback.
  await page.notebook.addCell('code', '%rucio ls not-a-did');
  await page.notebook.runCell(0);
  await expect
    .poll(() => output(0), { timeout: 120_000 })
    .toContain('Run2012B_DoubleMuParked');
  expect(await output(0)).toContain('SMHiggsToZZTo4L');

  await page.notebook.runCell(1);
  await expect
    .poll(() => output(1), { timeout: 60_000 })
    .toContain('ZZTo4mu_000.root');
  expect(await output(1)).toContain('SITE1_USERDISK');

  await page.notebook.runCell(2);
  await expect
    .poll(() => output(2), { timeout: 60_000 })
    .toContain('scope:name');
  expect(await output(2)).not.toContain('Traceback');

  await page.screenshot({ path: SHOT });
});
