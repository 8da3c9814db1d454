/**
 * Helpers shared by the tests (not a test file: jest runs *.spec.ts[x]).
 */

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
