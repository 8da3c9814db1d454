import { useEffect, useState } from 'react';

/**
 * A flag that is raised for `ms` milliseconds, e.g. a Copy button that says
 * "Copied" for a moment. Raising it while it is up does not prolong it.
 */
export function useBriefFlag(ms: number): [boolean, () => void] {
  const [up, setUp] = useState(false);
  useEffect(() => {
    if (!up) {
      return;
    }
    const timer = window.setTimeout(() => setUp(false), ms);
    return () => window.clearTimeout(timer);
  }, [up, ms]);
  return [up, () => setUp(true)];
}
