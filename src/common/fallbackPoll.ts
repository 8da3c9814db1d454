import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';

import { IStreamStatus } from './eventStream';

/**
 * What the fallback needs to know of the event stream (replaced in tests).
 */
export interface IStreamState {
  readonly status: IStreamStatus;
}

/**
 * A section that re-reads its state from REST while the event stream is
 * down.
 */
export interface IFallbackClient {
  /**
   * Whether it needs fresh state now (e.g. a job runs, the view is shown).
   */
  wanted(): boolean;
  /**
   * Re-read its state; a rejection makes the fallback back off.
   */
  refresh(): Promise<void>;
}

/**
 * Whether the stream cannot deliver events now: it failed, was stopped or
 * never started. A first connection still under way is not "down" (every
 * section reads its state once when it starts anyway).
 */
export function streamIsDown(status: IStreamStatus): boolean {
  if (status.state === 'open') {
    return false;
  }
  return !(status.state === 'connecting' && status.failures === 0);
}

/**
 * The one polling fallback of all sections: while the event stream is down,
 * one {@link Poll} re-reads the state of every section that wants it, every
 * `intervalMs` (backing off to `maxMs` while those reads fail, paused while
 * the page is hidden). While the stream is open it stands by: events carry
 * every change, and each section re-reads its state when the stream
 * (re)opens.
 */
export class FallbackPoll implements IDisposable {
  constructor(options: FallbackPoll.IOptions) {
    this._stream = options.stream ?? null;
    this._poll = new Poll({
      auto: false,
      factory: () => this._refresh(),
      frequency: {
        interval: options.intervalMs ?? 3000,
        backoff: true,
        max: options.maxMs ?? 60000
      },
      name: 'af-lab:fallback',
      standby: () => (this.polling ? 'when-hidden' : true)
    });
    void this._poll.start();
  }

  /**
   * Whether it polls now: the stream is down and a section wants state.
   */
  get polling(): boolean {
    const down = this._stream === null || streamIsDown(this._stream.status);
    return down && [...this._clients].some(client => client.wanted());
  }

  /**
   * The underlying poll (its `ticked` signal, for tests and diagnostics).
   */
  get poll(): Poll {
    return this._poll;
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /**
   * Poll for `client` while the stream is down; dispose the result to stop.
   */
  add(client: IFallbackClient): IDisposable {
    this._clients.add(client);
    let disposed = false;
    return {
      get isDisposed() {
        return disposed;
      },
      dispose: () => {
        disposed = true;
        this._clients.delete(client);
      }
    };
  }

  dispose(): void {
    this._clients.clear();
    this._poll.dispose();
  }

  private async _refresh(): Promise<void> {
    const due = [...this._clients].filter(client => client.wanted());
    // Every section reads, even when another one fails.
    const failures: unknown[] = [];
    await Promise.all(
      due.map(c => c.refresh().catch(error => void failures.push(error)))
    );
    if (failures.length) {
      throw failures[0];
    }
  }

  private _stream: IStreamState | null;
  private _clients = new Set<IFallbackClient>();
  private _poll: Poll;
}

export namespace FallbackPoll {
  export interface IOptions {
    /**
     * The shared event stream; none: always poll while a section wants it.
     */
    stream?: IStreamState | null;
    /**
     * Period while polling. Default 3000 ms.
     */
    intervalMs?: number;
    /**
     * Longest wait after failed reads. Default 60000 ms.
     */
    maxMs?: number;
  }
}
