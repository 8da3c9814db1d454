import { requestAPI } from '../request';
import { IRootFileContents } from './types';

/**
 * The trees, entries and branches of a ROOT file in the workspace.
 */
export function readContents(path: string): Promise<IRootFileContents> {
  return requestAPI<IRootFileContents>('rootfile/contents', {
    method: 'POST',
    body: JSON.stringify({ path })
  });
}
