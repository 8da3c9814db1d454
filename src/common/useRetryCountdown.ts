import { useEffect, useState } from 'react';

import { IStreamStatus } from './eventStream';

/**
 * Whole seconds until an event stream tries to connect again (0 while it is
 * not waiting to); the component renders every second while it waits, so
 * the number counts down.
 */
export function useRetryCountdown(status: IStreamStatus | null): number {
  const [, tick] = useState(0);
  const retrying = status?.state === 'retrying';
  useEffect(() => {
    if (!retrying) {
      return;
    }
    const timer = window.setInterval(() => tick(t => t + 1), 1000);
    return () => window.clearInterval(timer);
  }, [retrying]);
  if (!status || !retrying) {
    return 0;
  }
  const now = Date.now();
  return Math.max(0, Math.ceil(((status.retryAt ?? now) - now) / 1000));
}
