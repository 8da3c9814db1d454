import AxeBuilder from '@axe-core/playwright';
import { expect, galata, test } from '@jupyterlab/galata';
import type { Locator, Page } from '@playwright/test';
import * as path from 'path';

/**
 * The sidebar's layout at three sidebar widths (220, 300, 540 px) and two
 * window sizes: every section open alone and in pairs, each open section
 * with room for its content; sibling file names that stay distinguishable;
 * and an accessibility check (axe-core) of the af-lab panel.
 *
 * Screenshots: ui-tests/test-results/screenshots/layout-<window>-<width>-<sections>.png
 */

const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const WIDTHS = [220, 300, 540];
const WINDOWS = [
  { name: '1440x900', width: 1440, height: 900 },
  { name: '1024x700', width: 1024, height: 700 }
];
// A dataset whose files differ only near the end of their names.
const DATASET = 'cms_opendata:ZZTo4mu';

test.use({
  autoGoto: false,
  mockSettings: galata.DEFAULT_SETTINGS
});

async function titles(sidebar: Locator): Promise<string[]> {
  // textContent: the titles are upper-cased by CSS only.
  return (
    await sidebar.locator('.jp-AccordionPanel-title').allTextContents()
  ).map(t => t.trim());
}

function title(sidebar: Locator, name: string): Locator {
  return sidebar.locator('.jp-AccordionPanel-title', {
    hasText: new RegExp(`^\\s*${name}\\s*$`, 'i')
  });
}

async function isOpen(t: Locator): Promise<boolean> {
  return (await t.getAttribute('aria-expanded')) === 'true';
}

/**
 * Open exactly these sections (by title).
 */
async function openOnly(sidebar: Locator, names: string[]): Promise<void> {
  for (const name of await titles(sidebar)) {
    const t = title(sidebar, name);
    if ((await isOpen(t)) !== names.includes(name)) {
      await t.click();
    }
  }
}

/**
 * The content box height of every open section.
 */
async function openHeights(sidebar: Locator): Promise<Record<string, number>> {
  return sidebar.evaluate(node => {
    const out: Record<string, number> = {};
    for (const section of node.querySelectorAll<HTMLElement>(
      '.jp-AFLab-section'
    )) {
      if (!section.classList.contains('lm-mod-hidden')) {
        out[section.id] = section.getBoundingClientRect().height;
      }
    }
    return out;
  });
}

/**
 * What a user reads of each visible file name in the Data tree: the head as
 * far as it is shown (then "…") and the tail, which is never cut.
 */
async function renderedFileNames(
  panel: Locator
): Promise<{ name: string; shown: string; tailVisible: boolean }[]> {
  return panel.evaluate(node =>
    Array.from(
      node.querySelectorAll<HTMLElement>(
        '[data-kind="did"] .jp-AFLab-Data-name'
      )
    )
      .filter(el => el.closest('[aria-label^="file "]'))
      .map(el => {
        const head = el.querySelector<HTMLElement>(
          '.jp-AFLab-middleEllipsis-head'
        )!;
        const tail = el.querySelector<HTMLElement>(
          '.jp-AFLab-middleEllipsis-tail'
        );
        const text = head.textContent ?? '';
        const cut = head.scrollWidth > head.clientWidth + 1;
        const chars = cut
          ? Math.floor((text.length * head.clientWidth) / head.scrollWidth) - 1
          : text.length;
        const box = el.getBoundingClientRect();
        const tailBox = tail?.getBoundingClientRect();
        return {
          name: (head.textContent ?? '') + (tail?.textContent ?? ''),
          shown:
            text.slice(0, Math.max(0, chars)) +
            (cut ? '…' : '') +
            (tail?.textContent ?? ''),
          tailVisible:
            !tailBox || (tailBox.width > 0 && tailBox.right <= box.right + 1)
        };
      })
  );
}

async function openSidebar(page: Page, width: number): Promise<Locator> {
  await page.sidebar.openTab('af-lab-sidebar');
  const sidebar = page.locator('#af-lab-sidebar');
  await expect(sidebar).toBeVisible();
  await page.sidebar.setWidth(width, 'left');
  return sidebar;
}

for (const win of WINDOWS) {
  test.describe(`window ${win.name}`, () => {
    test.use({ viewport: { width: win.width, height: win.height } });

    test('open sections share the height at every width', async ({ page }) => {
      test.setTimeout(6 * 60_000);
      await page.goto();
      const sidebar = await openSidebar(page, WIDTHS[0]);
      const names = await titles(sidebar);
      expect(names.length).toBeGreaterThanOrEqual(4);
      const combos: string[][] = names.map(n => [n]);
      for (let i = 0; i < names.length; i++) {
        for (let j = i + 1; j < names.length; j++) {
          combos.push([names[i], names[j]]);
        }
      }
      for (const width of WIDTHS) {
        await page.sidebar.setWidth(width, 'left');
        for (const combo of combos) {
          await openOnly(sidebar, combo);
          await page.waitForTimeout(50); // one layout pass
          const heights = await openHeights(sidebar);
          expect(Object.keys(heights).length, combo.join('+')).toBe(
            combo.length
          );
          for (const [name, height] of Object.entries(heights)) {
            expect(
              height,
              `${name} open with ${combo.join('+')} at ${width} px`
            ).toBeGreaterThan(40);
          }
          const slug = combo
            .map(n => n.toLowerCase().replace(/[^a-z]+/g, '-'))
            .join('+');
          await sidebar.screenshot({
            path: path.join(SHOTS, `layout-${win.name}-${width}-${slug}.png`)
          });
        }
      }
    });
  });
}

test.describe('names and accessibility', () => {
  test.use({ viewport: { width: 1440, height: 900 } });

  test('sibling file names stay distinguishable; no serious axe violations', async ({
    page
  }) => {
    test.setTimeout(4 * 60_000);
    await page.goto();
    const sidebar = await openSidebar(page, 300);
    await openOnly(sidebar, ['Data', 'Mounts']);
    const panel = page.locator('#af-lab-data .jp-AFLab-DataPanel');
    await expect(panel).toHaveAttribute('data-login', 'logged_in', {
      timeout: 60_000
    });
    const box = panel.getByLabel('Search DIDs');
    await box.fill(DATASET);
    await box.press('Enter');
    const row = panel.locator(`[data-kind="did"][data-did="${DATASET}"]`);
    await expect(row).toBeVisible({ timeout: 60_000 });
    await row.getByRole('button', { name: `Expand ${DATASET}` }).click();
    await expect(
      panel.locator('[data-kind="did"][aria-label^="file "]').first()
    ).toBeVisible({ timeout: 60_000 });

    for (const width of WIDTHS) {
      await page.sidebar.setWidth(width, 'left');
      await page.waitForTimeout(50);
      const files = await renderedFileNames(panel);
      expect(files.length, 'file rows').toBeGreaterThanOrEqual(2);
      const shown = files.map(f => f.shown);
      expect(new Set(shown).size, `at ${width} px: ${shown.join(' | ')}`).toBe(
        files.length
      );
      for (const f of files) {
        expect(f.tailVisible, `${f.name} at ${width} px`).toBe(true);
      }
      await sidebar.screenshot({
        path: path.join(SHOTS, `layout-names-${width}.png`)
      });
    }

    // Keyboard: the tree takes focus and moves with the arrows, visibly.
    const tree = panel.getByRole('tree');
    await tree.locator('[role="treeitem"]').first().focus();
    await page.keyboard.press('ArrowDown');
    const focused = page.locator('[role="treeitem"]:focus');
    await expect(focused).toHaveCount(1);
    const outline = await focused.evaluate(el => {
      const style = getComputedStyle(el);
      return `${style.outlineStyle} ${style.boxShadow}`;
    });
    expect(outline).not.toBe('none none');

    const results = await new AxeBuilder({ page })
      .include('#af-lab-sidebar')
      .analyze();
    const serious = results.violations.filter(
      v => v.impact === 'serious' || v.impact === 'critical'
    );
    expect(
      serious.map(
        v =>
          `${v.id}: ${v.help} (${v.nodes
            .slice(0, 3)
            .map(n => n.target.join(' '))
            .join(', ')})`
      )
    ).toEqual([]);
  });
});
