import { AccordionPanel, Widget } from '@lumino/widgets';

import { AFLabSettings, DEFAULT_SETTINGS } from '../settings/settings';
import {
  FacilitySidebar,
  SECTIONS_STATE_KEY,
  shareHeight,
  SIZES_STATE_KEY
} from '../sidebar/widget';
import { SectionRank, SIDEBAR_ID } from '../tokens';

function section(label: string): Widget {
  const widget = new Widget();
  widget.title.label = label;
  return widget;
}

function labels(sidebar: FacilitySidebar): string[] {
  return sidebar.widgets.map(w => w.title.label);
}

describe('FacilitySidebar', () => {
  it('has the id, icon and tooltip of the sidebar tab', () => {
    const sidebar = new FacilitySidebar();
    expect(sidebar.id).toBe(SIDEBAR_ID);
    expect(sidebar.title.caption).toBe('Analysis Facility');
    expect(sidebar.title.icon).toBeTruthy();
    expect(sidebar.node.textContent).toContain('Analysis Facility');
  });

  it('orders sections by rank, equal ranks in insertion order', () => {
    const sidebar = new FacilitySidebar();
    sidebar.addSection(section('Clusters'), { rank: SectionRank.Clusters });
    sidebar.addSection(section('Status'), { rank: SectionRank.Status });
    sidebar.addSection(section('Extra'));
    sidebar.addSection(section('Data'), { rank: SectionRank.Data });
    sidebar.addSection(section('Data 2'), { rank: SectionRank.Data });
    expect(labels(sidebar)).toEqual([
      'Status',
      'Data',
      'Data 2',
      'Clusters',
      'Extra'
    ]);
  });

  it('removes a section through its disposable or when it is disposed', () => {
    const sidebar = new FacilitySidebar();
    const status = section('Status');
    const data = section('Data');
    const mounts = section('Mounts');
    const handle = sidebar.addSection(status, { rank: 1 });
    sidebar.addSection(data, { rank: 2 });
    sidebar.addSection(mounts, { rank: 3 });

    handle.dispose();
    expect(labels(sidebar)).toEqual(['Data', 'Mounts']);
    data.dispose();
    expect(labels(sidebar)).toEqual(['Mounts']);
    sidebar.addSection(section('Publish'), { rank: 2 });
    expect(labels(sidebar)).toEqual(['Publish', 'Mounts']);
  });

  it('activates the sidebar for a section', () => {
    const onActivate = jest.fn();
    const sidebar = new FacilitySidebar({ onActivate });
    const status = section('Status');
    sidebar.addSection(status);
    sidebar.activateSection(status);
    expect(onActivate).toHaveBeenCalledTimes(1);
  });
});

/**
 * An in-memory stand-in for JupyterLab's state database (browser storage).
 */
class MemoryState {
  values = new Map<string, unknown>();
  save = jest.fn(async (id: string, value: unknown) => {
    this.values.set(id, value);
  });
  async fetch(id: string): Promise<unknown> {
    return this.values.get(id);
  }
}

function idSection(id: string): Widget {
  const widget = section(id);
  widget.id = id;
  return widget;
}

function expanded(sidebar: FacilitySidebar): string[] {
  return sidebar.widgets.filter(w => !w.isHidden).map(w => w.id);
}

describe('FacilitySidebar sections', () => {
  it('starts the quiet sections collapsed so the first ones get the room', () => {
    const sidebar = new FacilitySidebar();
    sidebar.addSection(idSection('status'), { rank: 1 });
    sidebar.addSection(idSection('data'), { rank: 2 });
    sidebar.addSection(idSection('mounts'), { rank: 3, expanded: false });
    sidebar.addSection(idSection('publish'), { rank: 4, expanded: false });
    expect(expanded(sidebar)).toEqual(['status', 'data']);
  });

  it("remembers the user's choice and restores it next time", async () => {
    const state = new MemoryState();
    const first = new FacilitySidebar({ state });
    await Promise.resolve();
    first.addSection(idSection('data'), { rank: 1 });
    first.addSection(idSection('mounts'), { rank: 2, expanded: false });
    await new Promise(r => setTimeout(r, 0)); // the (empty) state has loaded
    const accordion = first.content as AccordionPanel;
    accordion.expand(1); // the user opens Mounts
    accordion.collapse(0); // and closes Data
    expect(state.save).toHaveBeenLastCalledWith(SECTIONS_STATE_KEY, {
      mounts: true,
      data: false
    });

    const next = new FacilitySidebar({ state });
    next.addSection(idSection('data'), { rank: 1 });
    next.addSection(idSection('mounts'), { rank: 2, expanded: false });
    await new Promise(r => setTimeout(r, 0));
    expect(expanded(next)).toEqual(['mounts']);
  });

  it('activating a section expands it', () => {
    const sidebar = new FacilitySidebar();
    const mounts = idSection('mounts');
    sidebar.addSection(idSection('data'), { rank: 1 });
    sidebar.addSection(mounts, { rank: 2, expanded: false });
    sidebar.activateSection(mounts);
    expect(expanded(sidebar)).toEqual(['data', 'mounts']);
  });
});

describe('FacilitySidebar heights', () => {
  it('gives every open section a share, closed ones none', () => {
    const sizes = shareHeight(
      [
        { id: 'data', open: true, weight: 2 },
        { id: 'mounts', open: true, weight: 1 },
        { id: 'publish', open: false, weight: 1 }
      ],
      {}
    );
    expect(sizes[0]).toBeCloseTo(2 / 3);
    expect(sizes[1]).toBeCloseTo(1 / 3);
    expect(sizes[2]).toBe(0);
  });

  it("prefers the user's dragged sizes over the defaults", () => {
    const sizes = shareHeight(
      [
        { id: 'data', open: true, weight: 2 },
        { id: 'mounts', open: true, weight: 1 }
      ],
      { data: 0.25, mounts: 0.75 }
    );
    expect(sizes).toEqual([0.25, 0.75]);
  });

  it('a section opened after starting closed gets room (not 0 px)', () => {
    const sidebar = new FacilitySidebar();
    sidebar.addSection(idSection('data'), { rank: 1, weight: 2 });
    sidebar.addSection(idSection('mounts'), { rank: 2, expanded: false });
    sidebar.addSection(idSection('publish'), { rank: 3, expanded: false });
    const accordion = sidebar.content as AccordionPanel;
    accordion.expand(1);
    let sizes = accordion.relativeSizes();
    expect(sizes[0]).toBeGreaterThan(0);
    expect(sizes[1]).toBeGreaterThan(0);
    expect(sizes[2]).toBe(0);
    accordion.expand(2);
    sizes = accordion.relativeSizes();
    expect(sizes.every(size => size > 0)).toBe(true);
    accordion.collapse(0);
    sizes = accordion.relativeSizes();
    expect(sizes[0]).toBe(0);
    expect(sizes[1]).toBeCloseTo(0.5);
  });

  it('remembers dragged sizes and restores them', async () => {
    const state = new MemoryState();
    await state.save(SIZES_STATE_KEY, { data: 0.2, mounts: 0.8 });
    const sidebar = new FacilitySidebar({ state });
    sidebar.addSection(idSection('data'), { rank: 1, weight: 2 });
    sidebar.addSection(idSection('mounts'), { rank: 2 });
    await new Promise(r => setTimeout(r, 0));
    const sizes = (sidebar.content as AccordionPanel).relativeSizes();
    expect(sizes[0]).toBeCloseTo(0.2);
    expect(sizes[1]).toBeCloseTo(0.8);
  });
});

describe('AFLabSettings', () => {
  it('starts with the schema defaults', () => {
    const settings = new AFLabSettings();
    expect(settings.defaultInstance).toBe(DEFAULT_SETTINGS.defaultInstance);
    expect(settings.pageSize).toBe(200);
    expect(settings.statusRefreshSeconds).toBe(15);
  });

  it('takes valid values, falls back on invalid ones and signals', () => {
    const settings = new AFLabSettings();
    const changed = jest.fn();
    settings.changed.connect(changed);
    settings.update({
      defaultInstance: ' demo ',
      pageSize: 50,
      statusRefreshSeconds: 0
    });
    expect(settings.defaultInstance).toBe('demo');
    expect(settings.pageSize).toBe(50);
    expect(settings.statusRefreshSeconds).toBe(0);
    settings.update({ pageSize: -3, statusRefreshSeconds: 'often' });
    expect(settings.pageSize).toBe(200);
    expect(settings.statusRefreshSeconds).toBe(15);
    expect(changed).toHaveBeenCalledTimes(2);
  });
});
