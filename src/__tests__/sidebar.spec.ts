import { AccordionPanel, Widget } from '@lumino/widgets';

import { AFLabSettings, DEFAULT_SETTINGS } from '../settings/settings';
import { FacilitySidebar, SECTIONS_STATE_KEY } from '../sidebar/widget';
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
