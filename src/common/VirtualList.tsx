import React, {
  useCallback,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState
} from 'react';

/**
 * Props of {@link VirtualList}.
 */
export interface IVirtualListProps<T> {
  /**
   * All rows; only those near the viewport are rendered.
   */
  items: readonly T[];
  /**
   * The height of a row in pixels. It must not depend on anything but the
   * row (rows are absolutely positioned from these heights).
   */
  itemHeight: (item: T, index: number) => number;
  /**
   * A stable React key of a row.
   */
  itemKey: (item: T, index: number) => string;
  /**
   * Render a row; put `style` on its outermost element.
   */
  renderItem: (
    item: T,
    index: number,
    style: React.CSSProperties
  ) => React.ReactNode;
  /**
   * Pixels rendered above and below the viewport. Default 300.
   */
  overscan?: number;
  /**
   * The viewport height used until the real one is known (and in test
   * environments that do no layout). Default 600.
   */
  fallbackHeight?: number;
  /**
   * Keep this row in view whenever it changes (keyboard focus).
   */
  scrollToIndex?: number | null;
  /**
   * Called with the rendered index range after each render that changed it.
   */
  onRangeChange?: (first: number, last: number) => void;
  className?: string;
  role?: string;
  'aria-label'?: string;
  'aria-busy'?: boolean;
  onKeyDown?: (event: React.KeyboardEvent<HTMLDivElement>) => void;
  onFocus?: (event: React.FocusEvent<HTMLDivElement>) => void;
}

/**
 * Cumulative row offsets: `offsets[i]` is the top of row i and
 * `offsets[n]` the total height.
 */
export function rowOffsets<T>(
  items: readonly T[],
  itemHeight: (item: T, index: number) => number
): Float64Array {
  const offsets = new Float64Array(items.length + 1);
  for (let i = 0; i < items.length; i++) {
    offsets[i + 1] = offsets[i] + Math.max(0, itemHeight(items[i], i));
  }
  return offsets;
}

/**
 * The index of the row that contains pixel `y` (clamped to the rows).
 */
export function rowAt(offsets: Float64Array, y: number): number {
  const n = offsets.length - 1;
  if (n <= 0) {
    return 0;
  }
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= y) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

/**
 * The rows to render for a viewport: `[first, last]` inclusive, or
 * `[0, -1]` when there are none.
 */
export function visibleRange(
  offsets: Float64Array,
  scrollTop: number,
  viewportHeight: number,
  overscan: number
): [number, number] {
  const n = offsets.length - 1;
  if (n <= 0) {
    return [0, -1];
  }
  const first = rowAt(offsets, Math.max(0, scrollTop - overscan));
  const last = rowAt(offsets, scrollTop + viewportHeight + overscan);
  return [first, Math.min(n - 1, last)];
}

/**
 * A windowed list: a scroll container as tall as all rows together that
 * renders only the rows near the viewport, so 10⁵ rows scroll as smoothly as
 * 10. Rows have known heights (per row, not measured).
 */
export function VirtualList<T>(props: IVirtualListProps<T>): JSX.Element {
  const {
    items,
    itemHeight,
    itemKey,
    renderItem,
    overscan = 300,
    fallbackHeight = 600,
    scrollToIndex,
    onRangeChange
  } = props;
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(0);
  const frame = useRef(0);

  const offsets = useMemo(
    () => rowOffsets(items, itemHeight),
    [items, itemHeight]
  );
  const total = offsets[offsets.length - 1];
  // Read by effects that must not re-run when the rows change.
  const latest = useRef({ offsets, count: items.length, onRangeChange });
  latest.current = { offsets, count: items.length, onRangeChange };

  const onScroll = useCallback(() => {
    if (frame.current) {
      return;
    }
    frame.current = window.requestAnimationFrame(() => {
      frame.current = 0;
      if (ref.current) {
        setScrollTop(ref.current.scrollTop);
      }
    });
  }, []);

  useEffect(
    () => () => {
      if (frame.current) {
        window.cancelAnimationFrame(frame.current);
      }
    },
    []
  );

  // Follow the viewport's size (the sidebar section is resized by the user).
  useLayoutEffect(() => {
    const node = ref.current;
    if (!node) {
      return;
    }
    setViewport(node.clientHeight);
    if (typeof ResizeObserver === 'undefined') {
      return;
    }
    const observer = new ResizeObserver(() => setViewport(node.clientHeight));
    observer.observe(node);
    return () => observer.disconnect();
  }, []);

  // The list got shorter than the scroll position: follow the browser's clamp.
  useLayoutEffect(() => {
    const node = ref.current;
    if (node) {
      setScrollTop(node.scrollTop);
    }
  }, [total]);

  // Keep the focused row in view (only when the focus moves).
  useLayoutEffect(() => {
    const node = ref.current;
    const { offsets: rows, count } = latest.current;
    if (
      !node ||
      scrollToIndex === null ||
      scrollToIndex === undefined ||
      scrollToIndex < 0 ||
      scrollToIndex >= count
    ) {
      return;
    }
    const top = rows[scrollToIndex];
    const bottom = rows[scrollToIndex + 1];
    const height = node.clientHeight || fallbackHeight;
    if (top < node.scrollTop) {
      node.scrollTop = top;
      setScrollTop(top);
    } else if (bottom > node.scrollTop + height) {
      node.scrollTop = bottom - height;
      setScrollTop(bottom - height);
    }
  }, [scrollToIndex, fallbackHeight]);

  const height = viewport > 0 ? viewport : fallbackHeight;
  const [first, last] = visibleRange(offsets, scrollTop, height, overscan);

  useEffect(() => {
    if (last >= first) {
      latest.current.onRangeChange?.(first, last);
    }
  }, [first, last, items]);

  const rows: React.ReactNode[] = [];
  for (let i = first; i <= last; i++) {
    const item = items[i];
    rows.push(
      <React.Fragment key={itemKey(item, i)}>
        {renderItem(item, i, {
          position: 'absolute',
          top: offsets[i],
          left: 0,
          right: 0,
          height: offsets[i + 1] - offsets[i]
        })}
      </React.Fragment>
    );
  }

  return (
    <div
      ref={ref}
      className={`jp-AFLab-VirtualList ${props.className ?? ''}`.trim()}
      onScroll={onScroll}
      role={props.role}
      aria-label={props['aria-label']}
      aria-busy={props['aria-busy']}
      onKeyDown={props.onKeyDown}
      onFocus={props.onFocus}
      data-rows={items.length}
      data-rendered={last - first + 1}
    >
      <div
        className="jp-AFLab-VirtualList-inner"
        style={{ position: 'relative', height: total }}
      >
        {rows}
      </div>
    </div>
  );
}
