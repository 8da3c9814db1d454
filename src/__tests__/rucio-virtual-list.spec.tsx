import { fireEvent, render } from '@testing-library/react';
import React from 'react';

import {
  formatBytes,
  formatCount,
  formatDuration,
  formatRate,
  percent,
  plural
} from '../common/units';
import {
  rowAt,
  rowOffsets,
  VirtualList,
  visibleRange
} from '../common/VirtualList';
import { tailLength } from '../rucio/DataPanel';

describe('windowing helpers', () => {
  const heights = [10, 20, 30, 40];
  const offsets = rowOffsets(heights, h => h);

  it('computes row offsets and finds the row at a pixel', () => {
    expect(Array.from(offsets)).toEqual([0, 10, 30, 60, 100]);
    expect(rowAt(offsets, 0)).toBe(0);
    expect(rowAt(offsets, 9.9)).toBe(0);
    expect(rowAt(offsets, 10)).toBe(1);
    expect(rowAt(offsets, 59)).toBe(2);
    expect(rowAt(offsets, 1000)).toBe(3);
    expect(
      rowAt(
        rowOffsets([], () => 1),
        5
      )
    ).toBe(0);
  });

  it('selects the rows of a viewport plus the overscan', () => {
    expect(visibleRange(offsets, 0, 25, 0)).toEqual([0, 1]);
    expect(visibleRange(offsets, 30, 10, 0)).toEqual([2, 2]);
    expect(visibleRange(offsets, 30, 10, 15)).toEqual([1, 2]);
    expect(visibleRange(offsets, 30, 10, 25)).toEqual([0, 3]);
    expect(
      visibleRange(
        rowOffsets([], () => 1),
        0,
        100,
        0
      )
    ).toEqual([0, -1]);
  });
});

describe('VirtualList', () => {
  const items = Array.from({ length: 100000 }, (_, i) => `row ${i}`);

  function list(onRangeChange?: (a: number, b: number) => void) {
    return render(
      <VirtualList
        items={items}
        itemHeight={() => 20}
        itemKey={item => item}
        fallbackHeight={400}
        overscan={100}
        onRangeChange={onRangeChange}
        renderItem={(item, index, style) => (
          <div style={style} data-index={index}>
            {item}
          </div>
        )}
      />
    );
  }

  it('renders only the rows near the viewport of 100,000', () => {
    const range = jest.fn();
    const { container } = list(range);
    const root = container.querySelector(
      '.jp-AFLab-VirtualList'
    ) as HTMLElement;
    const inner = root.firstElementChild as HTMLElement;
    expect(inner.style.height).toBe('2000000px');
    const rendered = container.querySelectorAll('[data-index]');
    // 400 px of viewport + 100 px overscan below, 20 px rows.
    expect(rendered.length).toBe(26);
    expect(rendered[0].textContent).toBe('row 0');
    expect((rendered[3] as HTMLElement).style.top).toBe('60px');
    expect(range).toHaveBeenLastCalledWith(0, 25);
  });

  it('follows the scroll position', async () => {
    const { container } = list();
    const root = container.querySelector(
      '.jp-AFLab-VirtualList'
    ) as HTMLElement;
    root.scrollTop = 20 * 50000;
    fireEvent.scroll(root);
    await new Promise(r => window.requestAnimationFrame(() => r(null)));
    await new Promise(r => setTimeout(r, 0));
    const rendered = Array.from(container.querySelectorAll('[data-index]'));
    const indices = rendered.map(r => Number((r as HTMLElement).dataset.index));
    expect(Math.min(...indices)).toBe(49995);
    expect(Math.max(...indices)).toBe(50025);
    expect(rendered.length).toBeLessThan(40);
  });

  it('scrolls a row into view when asked', () => {
    const { container, rerender } = list();
    const root = container.querySelector(
      '.jp-AFLab-VirtualList'
    ) as HTMLElement;
    rerender(
      <VirtualList
        items={items}
        itemHeight={() => 20}
        itemKey={item => item}
        fallbackHeight={400}
        scrollToIndex={1000}
        renderItem={(item, index, style) => (
          <div style={style} data-index={index}>
            {item}
          </div>
        )}
      />
    );
    expect(root.scrollTop).toBe(1001 * 20 - 400);
    expect(container.querySelector('[data-index="1000"]')).toBeTruthy();
  });
});

describe('units', () => {
  it('formats sizes, rates, durations and counts for people', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(1047325)).toBe('1023 KiB');
    expect(formatBytes(15.25 * 2 ** 20)).toBe('15.3 MiB');
    expect(formatBytes(848426773773)).toBe('790 GiB');
    expect(formatBytes(null)).toBe('–');
    expect(formatRate(50 * 2 ** 20)).toBe('50 MiB/s');
    expect(formatRate(0)).toBe('–');
    expect(formatDuration(4)).toBe('4 s');
    expect(formatDuration(75)).toBe('1 min 15 s');
    expect(formatDuration(120)).toBe('2 min');
    expect(formatDuration(7300)).toBe('2 h 1 min');
    expect(formatDuration(null)).toBe('–');
    expect(formatCount(12345)).toBe('12,345');
    expect(plural(1, 'file')).toBe('1 file');
    expect(plural(2000, 'file')).toBe('2,000 files');
    expect(percent(1, 3)).toBe(33);
    expect(percent(999, 1000)).toBe(99);
    expect(percent(1000, 1000)).toBe(100);
    expect(percent(5, 0)).toBe(0);
  });

  it('keeps the distinguishing end of long names', () => {
    const name = 'Run2012B_DoubleMuParked_000.root';
    expect(name.slice(-tailLength(name))).toBe('_000.root');
    const other = 'Run2012B_SingleMu_000123.root';
    expect(other.slice(-tailLength(other))).toBe('_000123.root');
    const plain = 'averyveryverylongnamewithoutanyseparators';
    expect(plain.slice(-tailLength(plain))).toBe('parators');
    const dataset = 'Run2012B_DoubleMuParked';
    expect(dataset.slice(-tailLength(dataset))).toBe('_DoubleMuParked');
    // Short file names too: ZZTo4mu_000.root vs ZZTo4mu_001.root.
    const short = 'ZZTo4mu_001.root';
    expect(short.slice(-tailLength(short))).toBe('_001.root');
    expect(tailLength('hist.root')).toBe(0);
  });
});
