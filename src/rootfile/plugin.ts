/**
 * `.root` files in the file browser: a double click opens a read-only view of
 * their trees and branches (instead of JupyterLab's text editor, which fails
 * with "not UTF-8"), with a button that inserts the code opening the file.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import {
  ABCWidgetFactory,
  DocumentRegistry,
  TextModelFactory
} from '@jupyterlab/docregistry';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Contents } from '@jupyterlab/services';
import { Notification } from '@jupyterlab/apputils';
import { insertIntoNotebook } from '../mounts/notebook';
import { describeError } from '../request';
import { openSnippet } from './snippet';
import { IRootFileContents } from './types';
import { RootFileContent, RootFileDocument } from './widget';

export const FILE_TYPE = 'af-lab-root';
export const FACTORY = 'ROOT File Viewer';
const MODEL = 'af-lab-root-header';

/**
 * A model that loads nothing: the viewer asks the server for the header, the
 * file's (possibly gigabytes of) bytes are never fetched.
 */
class HeaderOnlyModelFactory extends TextModelFactory {
  get name(): string {
    return MODEL;
  }
  get fileFormat(): Contents.FileFormat {
    return null;
  }
}

class RootFileFactory extends ABCWidgetFactory<
  RootFileDocument,
  DocumentRegistry.IModel
> {
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<RootFileDocument>,
    private _insert: (path: string, contents: IRootFileContents | null) => void
  ) {
    super(options);
  }

  protected createNewWidget(
    context: DocumentRegistry.Context
  ): RootFileDocument {
    const content = new RootFileContent(context, this._insert);
    const widget = new RootFileDocument({ content, context });
    widget.title.caption = `${context.path} (read-only view)`;
    return widget;
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'af-lab:rootfile',
  description: 'Open ROOT files as a view of their trees and branches.',
  autoStart: true,
  optional: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker | null) => {
    app.docRegistry.addFileType({
      name: FILE_TYPE,
      displayName: 'ROOT file',
      extensions: ['.root'],
      mimeTypes: ['application/x-root'],
      contentType: 'file',
      fileFormat: null
    });
    app.docRegistry.addModelFactory(new HeaderOnlyModelFactory());
    const insert = (path: string, contents: IRootFileContents | null) => {
      const source = openSnippet(
        path,
        PageConfig.getOption('serverRoot'),
        contents
      );
      insertIntoNotebook(app, tracker, source).catch(reason =>
        Notification.error(
          `Could not insert the code: ${describeError(reason)}`
        )
      );
    };
    app.docRegistry.addWidgetFactory(
      new RootFileFactory(
        {
          name: FACTORY,
          label: 'ROOT File Viewer',
          modelName: MODEL,
          fileTypes: [FILE_TYPE],
          defaultFor: [FILE_TYPE],
          readOnly: true
        },
        insert
      )
    );
  }
};

export default plugin;
