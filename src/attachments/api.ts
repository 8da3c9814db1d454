import { AFLabRequestError, endpointUrl, requestAPI } from '../request';
import { IAttachment, IResolvedAttachment, ISessionDid } from './types';

/**
 * `POST /af-lab/attachments/resolve`: each attachment's state, in order.
 */
export async function resolveAttachments(
  attachments: readonly IAttachment[],
  refresh = false
): Promise<IResolvedAttachment[]> {
  const answer = await requestAPI<{ attachments: IResolvedAttachment[] }>(
    'attachments/resolve',
    {
      method: 'POST',
      body: JSON.stringify({
        attachments: attachments.map(a => ({
          did: a.did,
          mode: a.mode,
          ...(a.instance ? { instance: a.instance } : {})
        })),
        refresh
      }),
      headers: { 'Content-Type': 'application/json' }
    }
  );
  if (!answer || !Array.isArray(answer.attachments)) {
    throw new AFLabRequestError({
      status: 200,
      type: 'invalid_response',
      message:
        'The attachment states have an unexpected form; the af_lab server extension may not match this interface.',
      url: endpointUrl('attachments/resolve'),
      body: answer
    });
  }
  return answer.attachments;
}

/**
 * `GET /af-lab/attachments/session?notebook=&kernel=`: the DIDs the kernel
 * running the notebook mounted (by kernel id when known: the server files a
 * kernel's report under the path its session had, which a rename changes).
 */
export async function sessionDids(
  notebook: string,
  kernelId?: string | null
): Promise<ISessionDid[]> {
  const query = `notebook=${encodeURIComponent(notebook)}${
    kernelId ? `&kernel=${encodeURIComponent(kernelId)}` : ''
  }`;
  const answer = await requestAPI<{ dids: ISessionDid[] }>(
    `attachments/session?${query}`
  );
  return Array.isArray(answer?.dids) ? answer.dids : [];
}
