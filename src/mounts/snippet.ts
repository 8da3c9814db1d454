import { PathExt } from '@jupyterlab/coreutils';

import { MountMode } from './types';

/**
 * The folder (below the server root) that mounts go to when the server has
 * not told us otherwise (`c.AFLab.mount_root`).
 */
export const DEFAULT_MOUNT_ROOT = 'af-data';

/**
 * What the inserted code is about.
 */
export interface ISnippetOptions {
  /**
   * `scope:name`.
   */
  did: string;
  /**
   * `file`, `dataset` or `container` (anything else counts as a dataset).
   */
  didType: string;
  mode: MountMode;
  /**
   * The mount's workspace-relative target (folder, link or fileset file).
   */
  target: string;
  /**
   * The Jupyter server's root directory (PageConfig `serverRoot`); '' if
   * unknown.
   */
  serverRoot: string;
  /**
   * The workspace-relative folder of the notebook (the kernel's working
   * directory), used when the server root is unknown.
   */
  notebookDir?: string;
  /**
   * Whether the mount is complete already; if not, the code waits for it.
   */
  ready?: boolean;
  /**
   * The tree each file holds (coffea/uproot fileset). Default `Events`.
   */
  treename?: string;
}

/**
 * A Python expression for a workspace path, as the kernel sees it:
 * absolute when the server root is known (`~` expanded by Python), else
 * relative to the notebook's folder.
 */
export function pythonPath(
  target: string,
  serverRoot: string,
  notebookDir = ''
): string {
  const root = serverRoot.replace(/\\/g, '/').replace(/\/+$/, '');
  const rel = target.replace(/^\/+/, '');
  if (root.startsWith('~')) {
    return `os.path.expanduser(${py(`${root}/${rel}`)})`;
  }
  if (root.startsWith('/') || /^[A-Za-z]:\//.test(root)) {
    return py(`${root}/${rel}`);
  }
  const relative = PathExt.relative(`/${notebookDir}`, `/${rel}`) || '.';
  return py(relative);
}

/**
 * The absolute path of a workspace path when the server root is known
 * (for "copy path"), else the workspace-relative path.
 */
export function absolutePath(target: string, serverRoot: string): string {
  const root = serverRoot.replace(/\\/g, '/').replace(/\/+$/, '');
  const rel = target.replace(/^\/+/, '');
  if (
    root.startsWith('/') ||
    root.startsWith('~') ||
    /^[A-Za-z]:\//.test(root)
  ) {
    return `${root}/${rel}`;
  }
  return rel;
}

/**
 * A Python string literal (JSON's escapes are valid Python).
 */
export function py(text: string): string {
  return JSON.stringify(text);
}

/**
 * A Python identifier made from a DID name: `myscope:ZZTo4mu` →
 * `zzto4mu`, `user.jdoe:2024-skim.v2` → `d2024_skim_v2`.
 */
export function identifier(did: string): string {
  const name = did.includes(':') ? did.slice(did.indexOf(':') + 1) : did;
  const base = name.split('/').filter(Boolean).pop() ?? name;
  let id = base
    .replace(/\.(root|fileset\.json|fileset\.yaml)$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .replace(/_+/g, '_')
    .slice(0, 32)
    .replace(/_+$/, '');
  if (!id) {
    id = 'data';
  }
  if (/^[0-9]/.test(id)) {
    id = `d${id}`;
  }
  return PYTHON_KEYWORDS.has(id) ? `${id}_` : id;
}

/**
 * Python code that turns a mount into `<name>_files` (a list of paths or
 * URLs) and `<name>_fileset` (the coffea/uproot fileset), using only the
 * standard library: it runs in any Python kernel, with no kernel extension
 * and no configuration. `uproot` usage is shown as a comment.
 */
export function mountSnippet(options: ISnippetOptions): string {
  const { did, didType, mode, target, serverRoot, notebookDir } = options;
  const tree = options.treename ?? 'Events';
  const v = identifier(did);
  const where = pythonPath(target, serverRoot, notebookDir ?? '');
  const scope = did.includes(':') ? did.slice(0, did.indexOf(':')) : did;
  const lines: string[] = [];

  if (mode === 'stream') {
    const yaml = /\.ya?ml$/i.test(target);
    lines.push(
      `# ${did}: ${didType}, read through the site cache (af-lab stream mount, no local copy)`,
      `import ${[yaml ? 'yaml' : 'json', 'os', ...(options.ready ? [] : ['time'])].sort().join(', ')}`,
      '',
      `${v}_fileset_file = ${where}`
    );
    if (!options.ready) {
      lines.push(...waitFor(`${v}_fileset_file`, did));
    }
    lines.push(
      `with open(${v}_fileset_file) as f:`,
      `    ${v}_fileset = ${yaml ? 'yaml.safe_load(f)' : 'json.load(f)'}`,
      `${v}_files = [url for dataset in ${v}_fileset.values() for url in dataset["files"]]`,
      `print(f"${did}: {len(${v}_files)} file{'s' * (len(${v}_files) != 1)}, e.g. {${v}_files[:1]}")`,
      `# import uproot; events = uproot.open({${v}_files[0]: ${py(tree)}}).arrays()`
    );
    return lines.join('\n');
  }

  const how =
    mode === 'replica'
      ? 'links to the replicas on this site (af-lab replica mount)'
      : 'local, checksum-verified copies (af-lab cache mount)';
  const needsTime = !options.ready;
  lines.push(
    `# ${did}: ${didType}, ${how}`,
    needsTime ? 'import os, time' : 'import os',
    '',
    `${v}_path = ${where}`
  );
  if (!options.ready) {
    lines.push(...waitFor(`${v}_path`, did));
  }
  if (didType === 'file') {
    lines.push(
      `${v}_files = [${v}_path]`,
      `${v}_fileset = {${py(did)}: {"files": {${v}_path: ${py(tree)}}}}`
    );
  } else {
    lines.push(
      `${v}_files = sorted(`,
      `    os.path.join(folder, name)`,
      `    for folder, _, names in os.walk(${v}_path, followlinks=True)`,
      `    for name in names if not name.startswith(".")`,
      ')'
    );
    if (didType === 'container') {
      lines.push(
        `${v}_fileset = {}  # one entry per dataset of the container`,
        `for path in ${v}_files:`,
        `    dataset = ${py(`${scope}:`)} + os.path.relpath(path, ${v}_path).split(os.sep)[0]`,
        `    ${v}_fileset.setdefault(dataset, {"files": {}})["files"][path] = ${py(tree)}`
      );
    } else {
      lines.push(
        `${v}_fileset = {${py(did)}: {"files": {path: ${py(tree)} for path in ${v}_files}}}`
      );
    }
  }
  lines.push(
    `print(f"${did}: {len(${v}_files)} file{'s' * (len(${v}_files) != 1)} in {${v}_path}")`,
    `# import uproot; events = uproot.open({${v}_files[0]: ${py(tree)}}).arrays()`
  );
  return lines.join('\n');
}

/**
 * Wait (up to 10 minutes) for the mount to appear: af-lab publishes a mount
 * atomically once all its files are verified.
 */
function waitFor(variable: string, did: string): string[] {
  return [
    'deadline = time.time() + 600  # the mount appears once all its files are in (see the Mounts panel)',
    `while not os.path.exists(${variable}):`,
    '    if time.time() > deadline:',
    `        raise TimeoutError(f"{${variable}} is not there yet: see ${did} in the Mounts panel")`,
    '    time.sleep(1)'
  ];
}

const PYTHON_KEYWORDS = new Set([
  'false',
  'none',
  'true',
  'and',
  'as',
  'assert',
  'async',
  'await',
  'break',
  'class',
  'continue',
  'def',
  'del',
  'elif',
  'else',
  'except',
  'finally',
  'for',
  'from',
  'global',
  'if',
  'import',
  'in',
  'is',
  'lambda',
  'nonlocal',
  'not',
  'or',
  'pass',
  'raise',
  'return',
  'try',
  'while',
  'with',
  'yield'
]);

/**
 * The code for an existing mount.
 */
export function snippetForMount(
  mount: {
    did: string;
    did_type: string;
    mode: MountMode;
    target: string;
    fileset?: string;
    state: string;
  },
  serverRoot: string,
  notebookDir = ''
): string {
  return mountSnippet({
    did: mount.did,
    didType: mount.did_type,
    mode: mount.mode,
    target:
      mount.mode === 'stream' ? (mount.fileset ?? mount.target) : mount.target,
    serverRoot,
    notebookDir,
    ready: mount.state === 'ready'
  });
}

/**
 * Where the server will put a new cache mount of `did` by default:
 * `<mount_root>/<scope>/<name>`, the mount root learnt from the existing
 * mounts (their targets end in `/<scope>/<name>`), else `af-data`.
 */
export function predictTarget(
  did: string,
  mounts: readonly { did: string; target: string; mode: string }[]
): string {
  const root = mountRoot(mounts);
  const scope = did.slice(0, did.indexOf(':'));
  const name = did
    .slice(did.indexOf(':') + 1)
    .split('/')
    .filter(Boolean)
    .join('/');
  return `${root}/${scope}/${name}`;
}

/**
 * The server's mount root (`c.AFLab.mount_root`) as the existing mounts show
 * it (their default targets end in `/<scope>/<name>`), else `af-data`.
 */
export function mountRoot(
  mounts: readonly { did: string; target: string; mode: string }[]
): string {
  for (const m of mounts) {
    const tail = `/${m.did.replace(':', '/')}`;
    if (m.mode !== 'stream' && m.target.endsWith(tail)) {
      return m.target.slice(0, -tail.length) || DEFAULT_MOUNT_ROOT;
    }
  }
  return DEFAULT_MOUNT_ROOT;
}
