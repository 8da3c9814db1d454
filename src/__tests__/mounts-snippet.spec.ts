import {
  absolutePath,
  identifier,
  mountRoot,
  mountSnippet,
  predictTarget,
  pythonPath,
  snippetForMount
} from '../mounts/snippet';
import { notebookFolder, withFreshNames } from '../mounts/notebook';

// Node's own modules, to run the generated code with a real Python.
declare const require: (name: string) => any;
const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const nodePath = require('path');

function python(): string | null {
  for (const exe of ['python3', 'python']) {
    try {
      childProcess.execFileSync(exe, ['--version'], { stdio: 'ignore' });
      return exe;
    } catch {
      // try the next
    }
  }
  return null;
}

const PYTHON = python();
const withPython = PYTHON ? it : it.skip;

function run(code: string, cwd: string): string {
  return childProcess.execFileSync(PYTHON, ['-I', '-c', code], {
    cwd,
    encoding: 'utf8',
    timeout: 30000
  });
}

describe('identifier', () => {
  it('makes Python names from DIDs', () => {
    expect(identifier('cms_opendata:ZZTo4mu')).toBe('zzto4mu');
    expect(identifier('cms_opendata:Run2012B_DoubleMuParked')).toBe(
      'run2012b_doublemuparked'
    );
    expect(identifier('user.jdoe:2024-skim.v2')).toBe('d2024_skim_v2');
    expect(identifier('s:store/mc/x_001.root')).toBe('x_001');
    expect(identifier('s:import')).toBe('import_');
    expect(identifier('s:---')).toBe('data');
  });
});

describe('paths as the kernel sees them', () => {
  it('is absolute under a known server root, expands ~, else relative', () => {
    expect(pythonPath('af-data/s/x', '/home/jdoe')).toBe(
      '"/home/jdoe/af-data/s/x"'
    );
    expect(pythonPath('af-data/s/x', '~/work/')).toBe(
      'os.path.expanduser("~/work/af-data/s/x")'
    );
    expect(pythonPath('af-data/s/x', '', 'analysis/notebooks')).toBe(
      '"../../af-data/s/x"'
    );
    expect(pythonPath('af-data/s/x', '', '')).toBe('"af-data/s/x"');
    expect(absolutePath('af-data/s/x', '/srv/u')).toBe('/srv/u/af-data/s/x');
    expect(absolutePath('af-data/s/x', '')).toBe('af-data/s/x');
  });

  it('learns the mount root from existing mounts to predict a target', () => {
    expect(predictTarget('s:a/b', [])).toBe('af-data/s/a/b');
    const mounts = [
      { did: 'cms:x', target: 'data/mounts/cms/x', mode: 'cache' }
    ];
    expect(mountRoot(mounts)).toBe('data/mounts');
    expect(predictTarget('s:y', mounts)).toBe('data/mounts/s/y');
  });

  it('never creates a notebook inside a mount', () => {
    const targets = ['af-data/s/x'];
    expect(notebookFolder('work', targets, 'af-data')).toBe('work');
    expect(notebookFolder('af-data/s/x', targets, 'af-data')).toBe('');
    expect(notebookFolder('af-data/s/x/sub', targets, 'af-data')).toBe('');
    expect(notebookFolder('af-data', targets, 'af-data')).toBe('');
    expect(notebookFolder('af-datax', targets, 'af-data')).toBe('af-datax');
    expect(notebookFolder(null, targets, 'af-data')).toBe('');
  });
});

describe('the inserted code', () => {
  let root: string;

  beforeAll(() => {
    root = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'af-lab-snippet-'));
    // A cache mount as the server makes it: a link to a read-only view of
    // links into the cache.
    const cache = nodePath.join(root, 'cache');
    fs.mkdirSync(nodePath.join(cache, 'objects'), { recursive: true });
    const view = nodePath.join(cache, 'views', 'v1');
    fs.mkdirSync(nodePath.join(view, 'ZZTo4mu'), { recursive: true });
    fs.mkdirSync(nodePath.join(view, 'Higgs'), { recursive: true });
    for (const [dir, name] of [
      ['ZZTo4mu', 'ZZTo4mu_000.root'],
      ['ZZTo4mu', 'ZZTo4mu_001.root'],
      ['Higgs', 'H_000.root']
    ]) {
      const object = nodePath.join(cache, 'objects', name);
      fs.writeFileSync(object, 'root');
      fs.symlinkSync(object, nodePath.join(view, dir, name));
    }
    const workspace = nodePath.join(root, 'home');
    fs.mkdirSync(nodePath.join(workspace, 'af-data', 'cms'), {
      recursive: true
    });
    fs.symlinkSync(
      nodePath.join(view, 'ZZTo4mu'),
      nodePath.join(workspace, 'af-data', 'cms', 'ZZTo4mu')
    );
    fs.symlinkSync(view, nodePath.join(workspace, 'af-data', 'cms', 'DAC21'));
    fs.symlinkSync(
      nodePath.join(cache, 'objects', 'H_000.root'),
      nodePath.join(workspace, 'af-data', 'cms', 'H_000.root')
    );
    fs.writeFileSync(
      nodePath.join(workspace, 'af-data', 'cms', 'ZZTo4mu.fileset.json'),
      JSON.stringify({
        'cms:ZZTo4mu': {
          files: {
            'root://xcache//store/ZZTo4mu_000.root': 'Events',
            'root://xcache//store/ZZTo4mu_001.root': 'Events'
          },
          metadata: {}
        }
      })
    );
    fs.mkdirSync(nodePath.join(workspace, 'notebooks'));
  });

  afterAll(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  function home(): string {
    return nodePath.join(root, 'home');
  }

  withPython(
    'lists a dataset mount and builds its fileset, in a plain Python',
    () => {
      const code = snippetForMount(
        {
          did: 'cms:ZZTo4mu',
          did_type: 'dataset',
          mode: 'cache',
          target: 'af-data/cms/ZZTo4mu',
          state: 'ready'
        },
        home()
      );
      expect(code).not.toContain('time.sleep');
      const out = run(
        `${code}\nimport json\nprint(json.dumps(zzto4mu_fileset))`,
        nodePath.join(home(), 'notebooks')
      );
      expect(out).toContain('cms:ZZTo4mu: 2 files in');
      const fileset = JSON.parse(out.trim().split('\n').pop()!);
      const files = Object.keys(fileset['cms:ZZTo4mu'].files);
      expect(files.map((f: string) => nodePath.basename(f))).toEqual([
        'ZZTo4mu_000.root',
        'ZZTo4mu_001.root'
      ]);
      expect(fileset['cms:ZZTo4mu'].files[files[0]]).toBe('Events');
    }
  );

  withPython('groups a container mount by dataset', () => {
    const code = mountSnippet({
      did: 'cms:DAC21',
      didType: 'container',
      mode: 'cache',
      target: 'af-data/cms/DAC21',
      serverRoot: '',
      notebookDir: 'notebooks',
      ready: true
    });
    const out = run(
      `${code}\nprint(sorted((k, len(v["files"])) for k, v in dac21_fileset.items()))`,
      nodePath.join(home(), 'notebooks')
    );
    expect(out).toContain('cms:DAC21: 3 files in ../af-data/cms/DAC21');
    expect(out).toContain("[('cms:Higgs', 1), ('cms:ZZTo4mu', 2)]");
  });

  withPython('reads a file mount and a stream fileset', () => {
    const file = run(
      mountSnippet({
        did: 'cms:H_000.root',
        didType: 'file',
        mode: 'cache',
        target: 'af-data/cms/H_000.root',
        serverRoot: home(),
        ready: true
      }),
      home()
    );
    expect(file).toContain('cms:H_000.root: 1 file in');
    const stream = run(
      snippetForMount(
        {
          did: 'cms:ZZTo4mu',
          did_type: 'dataset',
          mode: 'stream',
          target: 'af-data/cms/ZZTo4mu.fileset.json',
          fileset: 'af-data/cms/ZZTo4mu.fileset.json',
          state: 'ready'
        },
        home()
      ),
      home()
    );
    expect(stream).toContain(
      "cms:ZZTo4mu: 2 files, e.g. ['root://xcache//store/ZZTo4mu_000.root']"
    );
  });

  withPython(
    'waits for a mount that is not there yet, with a clear timeout',
    () => {
      const code = mountSnippet({
        did: 'cms:Missing',
        didType: 'dataset',
        mode: 'cache',
        target: 'af-data/cms/Missing',
        serverRoot: home(),
        ready: false
      }).replace('time.time() + 600', 'time.time() + 0.2');
      let message = '';
      try {
        run(code, home());
      } catch (error: any) {
        message = String(error.stderr);
      }
      expect(message).toContain('TimeoutError');
      expect(message).toContain('see cms:Missing in the Mounts panel');
    }
  );
});

describe('withFreshNames', () => {
  const snippet = 'zz_path = "a"\nzz_files = [zz_path]\nprint(zz_files)';

  it('keeps the names when the notebook does not use them', () => {
    expect(withFreshNames(snippet, 'zz', ['x = 1'])).toBe(snippet);
  });

  it('renames every variable when another cell assigns them', () => {
    const other = 'zz_path = "b"\nzz_files = []';
    const fresh = withFreshNames(snippet, 'zz', [other]);
    expect(fresh).toBe(
      'zz2_path = "a"\nzz2_files = [zz2_path]\nprint(zz2_files)'
    );
    expect(
      withFreshNames(snippet, 'zz', [other, fresh.replace('"a"', '"c"')])
    ).toContain('zz3_files');
  });

  it('the same snippet again is not a conflict', () => {
    expect(withFreshNames(snippet, 'zz', [snippet])).toBe(snippet);
  });
});
