import { ISignal } from '@lumino/signaling';
import { useEffect, useRef, useState } from 'react';

/**
 * Re-render a component whenever `signal` emits (optionally only for the
 * emissions `filter` accepts). Returns a counter that changes each time.
 */
export function useSignal<T, U>(
  signal: ISignal<T, U> | null | undefined,
  filter?: (args: U) => boolean
): number {
  const [version, setVersion] = useState(0);
  const filterRef = useRef(filter);
  filterRef.current = filter;
  useEffect(() => {
    if (!signal) {
      return;
    }
    const slot = (_: T, args: U) => {
      const accept = filterRef.current;
      if (!accept || accept(args)) {
        setVersion(v => v + 1);
      }
    };
    signal.connect(slot);
    return () => {
      signal.disconnect(slot);
    };
  }, [signal]);
  return version;
}
