import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * The URL namespace of the af_lab server extension: `<baseUrl>/af-lab/...`.
 */
export const API_NAMESPACE = 'af-lab';

/**
 * The error object the af_lab server extension sends with a non-2xx answer:
 * `{"error": {"type": "...", "message": "...", ...details}}`.
 */
export interface IServerError {
  type: string;
  message: string;
  [key: string]: unknown;
}

/**
 * Every failure of an af-lab request: the server answered with an error, the
 * answer was not JSON, or the Jupyter server could not be reached at all.
 *
 * `message` is always written for the user and can be shown as it is.
 */
export class AFLabRequestError extends Error {
  constructor(options: AFLabRequestError.IOptions) {
    super(options.message);
    this.name = 'AFLabRequestError';
    this.status = options.status;
    this.type = options.type;
    this.details = options.details ?? {};
    this.url = options.url ?? '';
    this.body = options.body;
  }

  /**
   * The HTTP status code; 0 when no answer was received.
   */
  readonly status: number;

  /**
   * The server's `error.type` (e.g. `credentials`, `unavailable`), or one of
   * `http` (an error without an af-lab error body), `network` (no answer) and
   * `invalid_response` (an answer that is not the JSON we expect).
   */
  readonly type: string;

  /**
   * The other fields of the server's `error` object.
   */
  readonly details: Record<string, unknown>;

  /**
   * The requested URL.
   */
  readonly url: string;

  /**
   * The parsed answer body, or its text when it was not JSON.
   */
  readonly body: unknown;
}

export namespace AFLabRequestError {
  export interface IOptions {
    status: number;
    type: string;
    message: string;
    details?: Record<string, unknown>;
    url?: string;
    body?: unknown;
  }
}

/**
 * The full URL of an af-lab endpoint, e.g. `endpointUrl('status')`.
 *
 * Build query strings with `URLExt.objectToQueryString`.
 */
export function endpointUrl(
  endPoint = '',
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
}

/**
 * Call the af_lab server extension and return its parsed JSON answer.
 *
 * @param endPoint - path below `<baseUrl>/af-lab/`
 * @param init - fetch options (method, body, ...)
 * @param settings - the server connection settings (defaults to the page's)
 * @returns the parsed JSON body; `undefined` for an empty answer (e.g. 204)
 * @throws {AFLabRequestError} for every failure, with a user-facing message
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = endpointUrl(endPoint, settings);
  const response = await makeRequest(
    url,
    init,
    settings,
    error =>
      `Cannot reach the Jupyter server (${reasonOf(error)}). ` +
      'Check your network connection and that your server is still running.'
  );

  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw new AFLabRequestError({
      status: response.status,
      type: 'network',
      message: `The answer of the Jupyter server was cut off (${reasonOf(error)}).`,
      url
    });
  }

  let body: unknown = undefined;
  let isJSON = false;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
      isJSON = true;
    } catch {
      body = text;
    }
  }

  if (!response.ok) {
    throw errorFromResponse(response, url, body, isJSON);
  }
  if (text.length > 0 && !isJSON) {
    throw new AFLabRequestError({
      status: response.status,
      type: 'invalid_response',
      message: `The server's answer to ${endPoint || API_NAMESPACE} is not JSON.`,
      url,
      body
    });
  }
  return body as T;
}

/**
 * `ServerConnection.makeRequest`, except that a request that gets no answer
 * at all throws an {@link AFLabRequestError} (type `network`, status 0) with
 * the message `unreachable` writes for the failure.
 */
export async function makeRequest(
  url: string,
  init: RequestInit,
  settings: ServerConnection.ISettings,
  unreachable: (error: unknown) => string
): Promise<Response> {
  try {
    return await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new AFLabRequestError({
      status: 0,
      type: 'network',
      message: unreachable(error),
      url
    });
  }
}

/**
 * Why a call failed, in a few words: an Error's message, or the value as
 * text.
 */
export function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A one-line, user-facing description of any error thrown while talking to
 * the server.
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    return error.message || error.name;
  }
  return String(error);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorFromResponse(
  response: Response,
  url: string,
  body: unknown,
  isJSON: boolean
): AFLabRequestError {
  const status = response.status;

  // The af_lab server extension: {"error": {"type", "message", ...details}}.
  if (isJSON && isRecord(body) && isRecord(body.error)) {
    const { type, message, ...details } = body.error;
    return new AFLabRequestError({
      status,
      type: typeof type === 'string' && type ? type : 'http',
      message:
        typeof message === 'string' && message
          ? message
          : fallbackMessage(status, response.statusText, url),
      details,
      url,
      body
    });
  }

  // jupyter_server's APIHandler: {"message": "...", "reason": "..."}. For
  // 401/403 that is just "Forbidden": our own explanation says more.
  if (isJSON && isRecord(body) && status !== 401 && status !== 403) {
    const message = [body.message, body.reason].find(
      m => typeof m === 'string' && m.length > 0
    ) as string | undefined;
    if (message) {
      const prefix = status >= 500 ? 'The Jupyter server failed: ' : '';
      return new AFLabRequestError({
        status,
        type: 'http',
        message: `${prefix}${message} (HTTP ${status})`,
        url,
        body
      });
    }
  }

  return new AFLabRequestError({
    status,
    type: 'http',
    message: fallbackMessage(status, response.statusText, url),
    url,
    body
  });
}

function fallbackMessage(
  status: number,
  statusText: string,
  url: string
): string {
  const code = `HTTP ${status}${statusText ? ` ${statusText}` : ''}`;
  if (status === 401 || status === 403) {
    return (
      `The Jupyter server refused the request (${code}). ` +
      'Your session may have expired: reload the page and log in again.'
    );
  }
  if (status === 404) {
    let path = url;
    try {
      path = new URL(url).pathname;
    } catch {
      // keep the URL as it is
    }
    return (
      `The Jupyter server does not know ${path} (${code}). ` +
      'Is the af_lab server extension installed and enabled?'
    );
  }
  if (status >= 500) {
    return `The Jupyter server failed (${code}). Try again; if it persists, tell your facility administrators.`;
  }
  return `The request failed (${code}).`;
}
