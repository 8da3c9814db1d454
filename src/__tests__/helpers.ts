/**
 * Helpers shared by the tests (not a test file: jest runs *.spec.ts[x]).
 */
import { Signal } from '@lumino/signaling';

import { IServerEvent, IStreamStatus } from '../common/eventStream';

/**
 * A promise with its resolve and reject, to answer a mocked call when the
 * test says so.
 */
export function deferred<T>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * A stand-in for the shared event stream: the test decides when it opens,
 * fails and what it pushes.
 */
export class FakeEventStream {
  received = new Signal<any, IServerEvent<unknown>>(this);
  opened = new Signal<any, void>(this);
  statusChanged = new Signal<any, IStreamStatus>(this);
  status: IStreamStatus = {
    state: 'idle',
    failures: 0,
    retryAt: null,
    error: null
  };
  start = jest.fn(() => {
    if (this.status.state === 'idle') {
      this.set({ state: 'connecting' });
    }
  });
  set(change: Partial<IStreamStatus>): void {
    this.status = { ...this.status, ...change };
    this.statusChanged.emit(this.status);
  }
  open(): void {
    this.set({ state: 'open', failures: 0 });
    this.opened.emit();
  }
  fail(): void {
    this.set({ state: 'retrying', failures: this.status.failures + 1 });
  }
  push(topic: string, data: unknown): void {
    this.received.emit({ id: ++this._id, topic, time: 0, data });
  }
  private _id = 0;
}
