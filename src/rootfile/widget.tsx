/**
 * The ROOT file viewer: what a `.root` file holds (trees, entries, branches
 * and their types), read on the server, with a button that inserts the code
 * opening it into a notebook. Read-only; the file's bytes never come to the
 * browser.
 */
import { DocumentRegistry, DocumentWidget } from '@jupyterlab/docregistry';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Button } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';
import { formatBytes, formatCount } from '../common/units';
import { describeError } from '../request';
import { readContents } from './api';
import { IRootFileContents, ITree } from './types';

export interface IRootFileViewProps {
  path: string;
  /**
   * Insert the code that opens the file (with what was read, if anything).
   */
  onInsert: (contents: IRootFileContents | null) => void;
  read?: (path: string) => Promise<IRootFileContents>;
}

export function RootFileView(props: IRootFileViewProps): JSX.Element {
  const { path, onInsert, read = readContents } = props;
  const [contents, setContents] = useState<IRootFileContents | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    setContents(null);
    setError(null);
    read(path).then(
      answer => live && setContents(answer),
      reason => live && setError(describeError(reason))
    );
    return () => {
      live = false;
    };
  }, [path, read]);

  const loading = contents === null && error === null;
  return (
    <div
      className="jp-AFLab-RootFile"
      data-state={loading ? 'loading' : error ? 'error' : 'ready'}
    >
      <div className="jp-AFLab-RootFile-header">
        <div className="jp-AFLab-RootFile-title">
          <strong title={path}>{path.split('/').pop()}</strong>
          {contents && (
            <span className="jp-AFLab-RootFile-facts">
              {formatBytes(contents.bytes)}
              {contents.reader ? ` · read with ${contents.reader}` : ''}
            </span>
          )}
        </div>
        <Button
          className="jp-AFLab-button"
          small
          disabled={loading}
          onClick={() => onInsert(contents)}
          title="Insert the code that opens this file (uproot) into the current notebook"
        >
          Insert code to open it
        </Button>
      </div>
      {loading && (
        <div className="jp-AFLab-RootFile-note" role="status">
          <span className="jp-AFLab-spinner" aria-hidden="true" /> Reading the
          file's header…
        </div>
      )}
      {error && (
        <div
          className="jp-AFLab-RootFile-note jp-AFLab-RootFile-error"
          role="alert"
        >
          {error} The code to open it in a kernel still works if the kernel can
          read it.
        </div>
      )}
      {contents && contents.reader === null && (
        <div className="jp-AFLab-RootFile-note" role="status">
          {contents.message}
        </div>
      )}
      {contents && contents.reader !== null && contents.trees.length === 0 && (
        <div className="jp-AFLab-RootFile-note" role="status">
          No trees in this file.
        </div>
      )}
      {contents?.trees.map(tree => (
        <TreeView key={tree.name} tree={tree} />
      ))}
      {contents && contents.objects.length > 0 && (
        <section
          className="jp-AFLab-RootFile-objects"
          aria-label="Other objects"
        >
          <h3>Other objects</h3>
          <ul>
            {contents.objects.map(o => (
              <li key={o.name}>
                <code>{o.name}</code> <span>{o.class}</span>
              </li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}

function TreeView(props: { tree: ITree }): JSX.Element {
  const { tree } = props;
  const [filter, setFilter] = useState('');
  const needle = filter.trim().toLowerCase();
  const shown = needle
    ? tree.branches.filter(b => b.name.toLowerCase().includes(needle))
    : tree.branches;
  return (
    <section
      className="jp-AFLab-RootFile-tree"
      aria-label={`${tree.kind} ${tree.name}`}
      data-tree={tree.name}
    >
      <h3>
        {tree.kind} <code>{tree.name}</code>: {formatCount(tree.entries)}{' '}
        {tree.entries === 1 ? 'entry' : 'entries'},{' '}
        {formatCount(tree.branches.length)}
        {tree.truncated ? '+' : ''} branches
      </h3>
      {tree.branches.length > 12 && (
        <input
          className="jp-AFLab-RootFile-filter"
          type="search"
          placeholder="Filter branches"
          aria-label={`Filter the branches of ${tree.name}`}
          value={filter}
          onChange={e => setFilter(e.target.value)}
        />
      )}
      <table className="jp-AFLab-RootFile-branches">
        <thead>
          <tr>
            <th scope="col">Branch</th>
            <th scope="col">Type</th>
          </tr>
        </thead>
        <tbody>
          {shown.map(b => (
            <tr key={b.name}>
              <td>
                <code>{b.name}</code>
              </td>
              <td>{b.type}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/**
 * The viewer as a document widget's content.
 */
export class RootFileContent extends ReactWidget {
  constructor(
    private _context: DocumentRegistry.Context,
    private _onInsert: (
      path: string,
      contents: IRootFileContents | null
    ) => void
  ) {
    super();
    this.addClass('jp-AFLab-RootFile-widget');
    _context.pathChanged.connect(() => this.update(), this);
  }

  render(): JSX.Element {
    const path = this._context.path;
    return (
      <RootFileView
        path={path}
        onInsert={contents => this._onInsert(path, contents)}
      />
    );
  }
}

export class RootFileDocument extends DocumentWidget<RootFileContent> {}
