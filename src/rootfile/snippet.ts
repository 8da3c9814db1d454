/**
 * The code that opens a ROOT file in a kernel (uproot), for the viewer's
 * "Insert code" button.
 */
import { absolutePath, identifier, py } from '../mounts/snippet';
import { IRootFileContents } from './types';

/**
 * `<file>_<tree> = uproot.open(path)["<tree>"]` for the file's first tree
 * (else the file itself), named after the file so a second insert does not
 * overwrite the first; the path is absolute when the server root is known,
 * so the code runs from any notebook folder.
 */
export function openSnippet(
  path: string,
  serverRoot: string,
  contents: IRootFileContents | null
): string {
  const file = absolutePath(path, serverRoot);
  const fileId = identifier(path);
  const tree = contents?.trees[0];
  if (!tree) {
    return [
      'import uproot',
      '',
      `${fileId} = uproot.open(${py(file)})`,
      `${fileId}.classnames()`
    ].join('\n');
  }
  const variable = `${fileId}_${identifier(tree.name)}`;
  return [
    'import uproot',
    '',
    `${variable} = uproot.open(${py(file)})[${py(tree.name)}]`,
    `${variable}.show()  # ${tree.entries} entries; .arrays(["branch", ...]) reads them`
  ].join('\n');
}
