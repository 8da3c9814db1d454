import { AFLabRequestError, endpointUrl, requestAPI } from '../request';
import { IServiceStatus, IStatusResponse } from './types';

/**
 * `GET /af-lab/status`: the state of every facility service.
 *
 * @throws {AFLabRequestError} when the request fails or the answer has no
 * `services` list
 */
export async function fetchStatus(): Promise<IServiceStatus[]> {
  const answer = await requestAPI<IStatusResponse>('status');
  if (
    typeof answer !== 'object' ||
    answer === null ||
    !Array.isArray(answer.services)
  ) {
    throw new AFLabRequestError({
      status: 200,
      type: 'invalid_response',
      message:
        'The facility status answer has no list of services. ' +
        'The af_lab server extension may not match this version of the interface.',
      url: endpointUrl('status'),
      body: answer
    });
  }
  return answer.services;
}
