import { expect, galata, test } from '@jupyterlab/galata';
import type { APIRequestContext, Locator, Page } from '@playwright/test';
import * as path from 'path';

/**
 * The "Clusters" section against the running af_lab server extension and a
 * real Dask scheduler and workers on 127.0.0.1 (the `local` profile):
 * create a cluster from the options form, scale it to 2 workers, read its
 * workers and job-state line, insert the client code into a notebook, open a
 * dask-labextension dashboard pane for it, and shut it down.
 *
 * Screenshots: ui-tests/test-results/screenshots/clusters-*.png
 */

const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const PREFIX = 'galata ';
const NAME = `${PREFIX}${Date.now().toString(36)}`;
const NOTEBOOK = `clusters-${Date.now().toString(36)}.ipynb`;

test.use({
  autoGoto: false,
  viewport: { width: 1400, height: 900 },
  mockSettings: galata.DEFAULT_SETTINGS
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `clusters-${name}.png`) });
}

/**
 * Shut down (or dismiss) every cluster these tests made, also in an earlier
 * run that failed half-way, so no Dask process outlives the run.
 */
async function cleanUp(request: APIRequestContext): Promise<void> {
  const listing = await request.get('/af-lab/clusters');
  if (!listing.ok()) {
    return;
  }
  const { clusters } = (await listing.json()) as {
    clusters: { id: string; name: string }[];
  };
  for (const c of clusters.filter(k => k.name.startsWith(PREFIX))) {
    await request.delete(`/af-lab/clusters/${c.id}`);
  }
}

async function openClustersSection(page: Page): Promise<Locator> {
  await page.sidebar.openTab('af-lab-sidebar');
  const sidebar = page.locator('#af-lab-sidebar');
  await expect(sidebar).toBeVisible();
  // Wide enough to read a card without scrolling sideways.
  await page.sidebar.setWidth(420, 'left');
  const title = sidebar.locator('.jp-AccordionPanel-title', {
    hasText: 'Clusters'
  });
  await expect(title).toBeVisible();
  // Collapse the other sections so the cards are in view.
  const titles = sidebar.locator('.jp-AccordionPanel-title');
  for (let i = 0; i < (await titles.count()); i++) {
    const t = titles.nth(i);
    const isClusters = (await t.textContent())?.trim() === 'Clusters';
    const expanded =
      (await t.getAttribute('aria-expanded')) === 'true' ||
      /\blm-mod-expanded\b/.test((await t.getAttribute('class')) ?? '');
    if (isClusters !== expanded) {
      await t.click();
    }
  }
  const panel = page.locator('#af-lab-clusters .jp-AFLab-ClustersPanel');
  await expect(panel).toBeVisible();
  await expect(panel).toHaveAttribute('data-phase', 'ready', {
    timeout: 30_000
  });
  return panel;
}

/**
 * Insert the card's client code into the open notebook's first cell, run it
 * and wait until the kernel shows a connected Client.
 */
async function insertAndRunClientCode(
  page: Page,
  card: Locator,
  id: string
): Promise<void> {
  await openClustersSection(page);
  await card.getByRole('button', { name: 'Insert client code' }).click();
  await expect
    .poll(async () => page.notebook.getCellTextInput(0), { timeout: 15_000 })
    .toContain(`dask_client("${id}")`);
  await page.notebook.runCell(0);
  await expect
    .poll(async () => (await page.notebook.getCellTextOutput(0))?.join(''), {
      timeout: 120_000
    })
    .toMatch(/Client/);
}

test('create, scale, connect, watch and shut down a cluster', async ({
  page,
  request
}) => {
  test.setTimeout(6 * 60_000);
  const ourErrors: string[] = [];
  page.on('pageerror', error => {
    if (/af-lab|AFLab/i.test(`${error.message}\n${error.stack}`)) {
      ourErrors.push(error.message);
    }
  });

  await cleanUp(request);
  await page.goto();
  try {
    const panel = await openClustersSection(page);

    // ---------------------------------------------------------- the form
    await panel.getByRole('button', { name: 'New cluster' }).first().click();
    const form = panel.getByRole('form', { name: 'New cluster' });
    await expect(form).toBeVisible({ timeout: 30_000 });
    await form.getByLabel('Profile').selectOption('local');
    await form.getByLabel(/^Name/).fill(NAME);
    // A new cluster starts with some workers, not 0 (the profile says 0).
    await expect(form.getByLabel('Workers to start')).toHaveValue('2');
    // Client-side validation against the profile's schema.
    await form.getByLabel('Cores per worker').fill('999');
    await expect(
      form.locator('[data-field="cores"] .jp-AFLab-field-error')
    ).toContainText('at most');
    await shot(page, '1-form-invalid');
    await form.getByLabel('Cores per worker').fill('1');
    await form.getByLabel('Memory per worker').fill('1 GiB');
    await form.getByLabel('Workers to start').fill('1');
    await expect(form.locator('.jp-AFLab-field-error')).toHaveCount(0);
    await form.getByRole('button', { name: 'Create cluster' }).click();

    // Feedback at once: a placeholder card with a spinner and words.
    const creating = panel.locator('.jp-AFLab-CreationCard');
    await expect(creating).toBeVisible();
    await expect(creating).toHaveAttribute('data-state', 'creating');
    await expect(creating.locator('.jp-AFLab-spinner')).toBeVisible();
    await expect(creating).toContainText('Creating the cluster');
    await shot(page, '2-creating');

    const card = panel.locator('.jp-AFLab-ClusterCard[data-cluster-id]', {
      has: page.locator('.jp-AFLab-ClusterCard-name', { hasText: NAME })
    });
    await expect(card).toHaveAttribute('data-state', 'running', {
      timeout: 180_000
    });
    await expect(creating).toHaveCount(0);
    const id = (await card.getAttribute('data-cluster-id')) ?? '';
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await expect(card.locator('[data-stat="workers"] dd')).toHaveText('1', {
      timeout: 60_000
    });
    await expect(card.locator('.jp-AFLab-ClusterCard-address code')).toHaveText(
      /^tls:\/\/127\.0\.0\.1:\d+$/
    );
    // The job-state line: local workers are processes, not batch jobs.
    await expect(card.locator('.jp-AFLab-JobStatus')).toContainText(
      'no batch jobs'
    );
    await shot(page, '3-created');

    // ---------------------------------------------------------- scale to 2
    await card.getByRole('button', { name: 'Scale…' }).click();
    const editor = card.locator('.jp-AFLab-ScaleEditor');
    await editor.getByLabel('Number of workers').fill('2');
    await editor.getByRole('button', { name: 'Scale' }).click();
    await expect(card.locator('[data-stat="workers"] dd')).toHaveText('2', {
      timeout: 120_000
    });
    await expect(card.locator('[data-stat="cores"] dd')).toHaveText('2');
    await expect(editor).toHaveCount(0);
    await expect(card.locator('.jp-AFLab-ClusterProgress')).toHaveCount(0, {
      timeout: 30_000
    });
    await expect(
      panel.locator('.jp-AFLab-ClustersPanel-summary')
    ).toContainText('2 workers');
    // dask-labextension lists the same cluster (one owner, two views).
    const daskList = await request.get('/dask/clusters/');
    expect(daskList.ok()).toBe(true);
    const daskClusters = (await daskList.json()) as {
      id: string;
      workers: number;
    }[];
    expect(daskClusters.find(c => c.id === id)?.workers).toBe(2);
    await shot(page, '4-scaled');

    // ---------------------------------------------------------- client code
    await page.notebook.createNew(NOTEBOOK);
    // The code works: the kernel connects to the cluster.
    await insertAndRunClientCode(page, card, id);
    await shot(page, '5-client-code');

    // Dragging the card into the notebook inserts the same code.
    const cells = await page.notebook.getCellCount();
    const from = await card.locator('.jp-AFLab-ClusterStats').boundingBox();
    const to = await page
      .locator('.jp-NotebookPanel .jp-Cell')
      .first()
      .boundingBox();
    if (from && to) {
      await page.mouse.move(from.x + 10, from.y + 5);
      await page.mouse.down();
      await page.mouse.move(from.x + 40, from.y + 30, { steps: 5 });
      await page.mouse.move(to.x + 100, to.y + 10, { steps: 10 });
      await page.mouse.up();
    }
    await expect
      .poll(async () => page.notebook.getCellCount(), { timeout: 10_000 })
      .toBe(cells + 1);
    expect(await page.notebook.getCellTextInput(0)).toContain(
      `dask_client("${id}")`
    );
    // Something for the dashboard to show (run once the pane is open).
    await page.notebook.addCell(
      'code',
      'import dask.array as da\nda.random.random((6000, 6000), chunks=500).mean().compute()'
    );
    const last = (await page.notebook.getCellCount()) - 1;

    // ---------------------------------------------------------- dashboard
    await card.getByRole('button', { name: /Dashboard/ }).click();
    const menu = page.locator('.jp-AFLab-DashboardMenu');
    await expect(menu).toBeVisible({ timeout: 30_000 });
    await expect(menu.locator('.lm-Menu-item')).not.toHaveCount(0);
    // No GPU plots on a cluster without GPUs.
    await expect(menu.getByText(/GPU|Rmm/i)).toHaveCount(0);
    await shot(page, '6-dashboard-menu');
    await menu
      .locator('.lm-Menu-item', { hasText: /^Task Stream$/ })
      .click({ timeout: 15_000 });
    const paneTab = page.locator('#jp-main-dock-panel .lm-TabBar-tab', {
      hasText: 'Task Stream'
    });
    await expect(paneTab).toBeVisible({ timeout: 30_000 });
    const frame = page.locator(
      `#jp-main-dock-panel iframe[src*="dask/dashboard/${id}/individual-task-stream"]`
    );
    await expect(frame).toBeVisible({ timeout: 30_000 });
    // The proxied bokeh plot draws (not dask-labextension's "inactive" logo).
    const plot = await request.get(
      `/dask/dashboard/${id}/individual-task-stream`
    );
    expect(plot.status()).toBe(200);
    await expect(
      page
        .frameLocator(
          `#jp-main-dock-panel iframe[src*="dask/dashboard/${id}/individual-task-stream"]`
        )
        .locator('canvas, .bk-Canvas, .bk-root')
        .first()
    ).toBeAttached({ timeout: 60_000 });
    // Compute on the cluster while the pane is open, then look at it.
    await page.locator('.lm-TabBar-tab', { hasText: NOTEBOOK }).click();
    await page.notebook.runCell(last);
    await expect
      .poll(
        async () => (await page.notebook.getCellTextOutput(last))?.join(''),
        { timeout: 120_000 }
      )
      .toMatch(/0\.\d+/);
    await paneTab.click();
    await page.waitForTimeout(3000); // let bokeh draw the tasks
    await shot(page, '7-dashboard-pane');

    // ---------------------------------------------------------- shut down
    await card.getByRole('button', { name: 'Shut down' }).click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText(`Shut down ${NAME}?`);
    await dialog.getByRole('button', { name: 'Shut down' }).click();
    await expect(card).toHaveCount(0, { timeout: 90_000 });
    const after = await request.get('/af-lab/clusters');
    const { clusters } = (await after.json()) as { clusters: { id: string }[] };
    expect(clusters.map(c => c.id)).not.toContain(id);
    await shot(page, '8-shut-down');

    expect(ourErrors, 'af-lab errors in the browser').toEqual([]);
  } finally {
    await shot(page, 'final').catch(() => undefined);
    await cleanUp(request);
  }
});

/**
 * The HTCondor job-state line, when the server offers an HTCondor profile
 * (the demo facility of CI does not; run it against the stand-in, see
 * tests/condor_standin). AF_LAB_UI_HTCONDOR_PROFILE picks the profile, e.g.
 * one whose jobs stay idle.
 */
test('HTCondor job states explain missing workers', async ({
  page,
  request
}) => {
  test.setTimeout(5 * 60_000);
  const answer = await request.get('/af-lab/clusters/profiles');
  expect(answer.ok()).toBe(true);
  const { profiles } = (await answer.json()) as {
    profiles: { name: string; backend: string }[];
  };
  const wanted = process.env.AF_LAB_UI_HTCONDOR_PROFILE;
  const profile = profiles.find(p =>
    wanted ? p.name === wanted : p.backend === 'htcondor'
  );
  test.skip(!profile, 'this server offers no HTCondor cluster profile');

  await cleanUp(request);
  await page.goto();
  try {
    const panel = await openClustersSection(page);
    await panel.getByRole('button', { name: 'New cluster' }).first().click();
    const form = panel.getByRole('form', { name: 'New cluster' });
    await form.getByLabel('Profile').selectOption(profile!.name);
    await form.getByLabel(/^Name/).fill(`${NAME} condor`);
    await form.getByLabel('Workers to start').fill('2');
    const disk = form.getByLabel(/^Disk per worker/);
    if ((await disk.count()) > 0 && !(await disk.inputValue())) {
      await disk.fill('1 GiB');
    }
    await shot(page, 'condor-1-form');
    await form.getByRole('button', { name: 'Create cluster' }).click();
    await expect(panel.locator('.jp-AFLab-CreationCard')).toBeVisible();

    const card = panel.locator('.jp-AFLab-ClusterCard[data-cluster-id]', {
      has: page.locator('.jp-AFLab-ClusterCard-name', {
        hasText: `${NAME} condor`
      })
    });
    await expect(card).toHaveAttribute('data-state', 'running', {
      timeout: 180_000
    });
    const jobs = card.locator('.jp-AFLab-JobStatus[data-backend="htcondor"]');
    await expect(jobs.locator('.jp-AFLab-JobStatus-counts')).toContainText(
      'of 2 submitted',
      { timeout: 60_000 }
    );
    // Either every worker connects, or the card says why not.
    await expect
      .poll(
        async () => {
          const workers = await card
            .locator('[data-stat="workers"] dd')
            .textContent();
          if (workers === '2') {
            return 'connected';
          }
          return (await jobs.locator('.jp-AFLab-JobStatus-why').count()) > 0
            ? 'explained'
            : 'waiting';
        },
        { timeout: 120_000 }
      )
      .not.toBe('waiting');
    await shot(page, 'condor-2-jobs');
  } finally {
    await shot(page, 'condor-final').catch(() => undefined);
    await cleanUp(request);
  }
});

/**
 * A SLURM cluster from the form (the facility runs SLURM by default): its
 * batch jobs go from pending to running on the card (pushed by the server's
 * event stream, no polling), then the inserted client code runs a
 * computation on the SLURM workers from a notebook kernel.
 */
test('create a SLURM cluster from the form and compute on it', async ({
  page,
  request
}) => {
  test.setTimeout(8 * 60_000);
  const answer = await request.get('/af-lab/clusters/profiles');
  expect(answer.ok()).toBe(true);
  const { profiles } = (await answer.json()) as {
    profiles: { name: string; backend: string }[];
  };
  const profile = profiles.find(p => p.backend === 'slurm');
  test.skip(!profile, 'this server offers no SLURM cluster profile');
  const name = `${NAME} slurm`;
  const notebook = `slurm-${Date.now().toString(36)}.ipynb`;

  await cleanUp(request);
  await page.goto();
  try {
    const panel = await openClustersSection(page);
    // Every job state any card shows from now on, in order (a state may last
    // less than a screenshot: record it as the DOM changes).
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as any).afJobStates = seen;
      const note = () => {
        for (const row of document.querySelectorAll(
          '.jp-AFLab-JobStatus[data-backend="slurm"] tr[data-job-state]'
        )) {
          const state = `${row.firstElementChild?.textContent}:${row.getAttribute('data-job-state')}`;
          if (!seen.includes(state)) {
            seen.push(state);
          }
        }
      };
      new MutationObserver(note).observe(document.body, {
        subtree: true,
        childList: true,
        attributes: true,
        attributeFilter: ['data-job-state']
      });
    });

    await panel.getByRole('button', { name: 'New cluster' }).first().click();
    const form = panel.getByRole('form', { name: 'New cluster' });
    await expect(form).toBeVisible({ timeout: 30_000 });
    await form.getByLabel('Profile').selectOption(profile!.name);
    await form.getByLabel(/^Name/).fill(name);
    // The kernel and the cluster must run the same `distributed`: the
    // analysis environment and its kernel when the site has them.
    const environment = form.getByLabel(/Software environment/);
    const analysis =
      (await environment.locator('option[value="analysis"]').count()) > 0;
    if ((await environment.count()) > 0) {
      await environment.selectOption(analysis ? 'analysis' : 'server');
    }
    await form.getByLabel('Cores per worker').fill('1');
    await form.getByLabel('Memory per worker').fill('1 GiB');
    await form.getByLabel('Workers to start').fill('2');
    await expect(form.locator('.jp-AFLab-field-error')).toHaveCount(0);
    await shot(page, 'slurm-1-form');
    await form.getByRole('button', { name: 'Create cluster' }).click();
    await expect(panel.locator('.jp-AFLab-CreationCard')).toBeVisible();

    const card = panel.locator('.jp-AFLab-ClusterCard[data-cluster-id]', {
      has: page.locator('.jp-AFLab-ClusterCard-name', { hasText: name })
    });
    await expect(card).toHaveAttribute('data-state', 'running', {
      timeout: 180_000
    });
    const id = (await card.getAttribute('data-cluster-id')) ?? '';
    const jobs = card.locator('.jp-AFLab-JobStatus[data-backend="slurm"]');
    await expect(jobs.locator('.jp-AFLab-JobStatus-counts')).toContainText(
      'of 2 submitted',
      { timeout: 60_000 }
    );
    await jobs.locator('summary').click(); // the table of jobs
    await expect(jobs.locator('tr[data-job-state="running"]')).toHaveCount(2, {
      timeout: 180_000
    });
    await expect(card.locator('[data-stat="workers"] dd')).toHaveText('2', {
      timeout: 180_000
    });
    await shot(page, 'slurm-2-running');

    // Each job was seen pending (queued by SLURM) before it ran.
    const states = (await page.evaluate(
      () => (window as any).afJobStates
    )) as string[];
    const jobIds = [...new Set(states.map(s => s.split(':')[0]))];
    expect(jobIds).toHaveLength(2);
    for (const job of jobIds) {
      const mine = states.filter(s => s.startsWith(`${job}:`));
      expect(mine[mine.length - 1]).toBe(`${job}:running`);
    }
    expect(
      states.some(s => s.endsWith(':pending')),
      `job states seen: ${states.join(', ')}`
    ).toBe(true);

    // ---------------------------------------------------------- client code
    await page.notebook.createNew(notebook, {
      kernel: analysis ? 'af-analysis' : 'python3'
    });
    await insertAndRunClientCode(page, card, id);
    // A computation on the SLURM workers: the answer, and where it ran.
    await page.notebook.addCell(
      'code',
      [
        'import os',
        'total = client.submit(sum, range(1, 101)).result()',
        "jobs = sorted(set(client.run(lambda: os.environ.get('SLURM_JOB_ID', 'none')).values()))",
        "print(f'sum={total} slurm_jobs={len(jobs)} {jobs}')"
      ].join('\n')
    );
    const last = (await page.notebook.getCellCount()) - 1;
    await page.notebook.runCell(last);
    await expect
      .poll(
        async () => (await page.notebook.getCellTextOutput(last))?.join(''),
        { timeout: 120_000 }
      )
      .toMatch(/sum=5050 slurm_jobs=2 \['\d+', '\d+'\]/);
    await shot(page, 'slurm-3-computed');
  } finally {
    await shot(page, 'slurm-final').catch(() => undefined);
    await cleanUp(request);
  }
});
