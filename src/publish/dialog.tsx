import { Dialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import React from 'react';

import {
  IFormValues,
  IPublishFormHandle,
  IPublishTarget,
  PublishForm
} from './PublishForm';
import { IPublishJob } from './types';

/**
 * The body of the Publish dialog: the React form, plus what the dialog needs
 * (readiness, submit, the created job as its value).
 */
export class PublishFormWidget extends ReactWidget {
  constructor(options: PublishFormWidget.IOptions) {
    super();
    this._options = options;
    this.addClass('jp-AFLab-PublishFormWidget');
  }

  /**
   * Whether the form is checked and may be submitted.
   */
  get ready(): boolean {
    return this._ready;
  }

  get readyChanged(): ISignal<this, boolean> {
    return this._readyChanged;
  }

  /**
   * Start the job; resolves with it, or null when refused (the form shows
   * why).
   */
  async submit(): Promise<IPublishJob | null> {
    const handle = this._handle.current;
    if (!handle) {
      return null;
    }
    const job = await handle.submit();
    if (job) {
      this._job = job;
    }
    return job;
  }

  /**
   * The created job (the dialog's value).
   */
  getValue(): IPublishJob | null {
    return this._job;
  }

  protected render(): JSX.Element {
    return (
      <PublishForm
        targets={this._options.targets}
        notebook={this._options.notebook}
        defaultInstance={this._options.defaultInstance}
        initial={this._options.initial}
        handleRef={this._handle}
        onReadyChange={this._onReadyChange}
      />
    );
  }

  private _onReadyChange = (ready: boolean): void => {
    if (ready !== this._ready) {
      this._ready = ready;
      this._readyChanged.emit(ready);
    }
  };

  private _options: PublishFormWidget.IOptions;
  private _handle: React.MutableRefObject<IPublishFormHandle | null> = {
    current: null
  };
  private _ready = false;
  private _job: IPublishJob | null = null;
  private _readyChanged = new Signal<this, boolean>(this);
}

export namespace PublishFormWidget {
  export interface IOptions {
    targets: IPublishTarget[];
    notebook?: string | null;
    defaultInstance?: string;
    /**
     * Values to start from (see {@link PublishForm}).
     */
    initial?: Partial<IFormValues>;
  }
}

/**
 * A JupyterLab dialog whose "Publish" button stays disabled until the form is
 * ready, and which stays open when the server refuses the job (the form
 * shows the server's message).
 */
export class PublishDialog extends Dialog<IPublishJob | null> {
  constructor(body: PublishFormWidget) {
    const buttons = [
      Dialog.cancelButton(),
      Dialog.okButton({
        label: 'Publish',
        caption: 'Start the publish job (it runs on the server)'
      })
    ];
    super({
      title: 'Publish to Rucio',
      body,
      buttons,
      hasClose: true
    });
    this._buttonsList = buttons;
    this._form = body;
    this.addClass('jp-AFLab-PublishDialog');
    body.readyChanged.connect(this._sync, this);
    this._sync();
  }

  /**
   * The dialog's buttons resolve here (click, Enter): "Publish" submits
   * first and only closes once the job exists.
   */
  resolve(index?: number): void {
    const i = index ?? this._buttonsList.length - 1;
    const button = this._buttonsList[i];
    if (!button || !button.accept || this._accepted) {
      super.resolve(index);
      return;
    }
    if (this._submitting || !this._form.ready) {
      return;
    }
    this._submitting = true;
    this._sync();
    void this._form
      .submit()
      .then(job => {
        this._submitting = false;
        if (job) {
          this._accepted = true;
          super.resolve(i);
        } else {
          this._sync();
        }
      })
      .catch(() => {
        this._submitting = false;
        this._sync();
      });
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    // Dialog re-enables its accept button on every input event (it only
    // knows about :invalid fields): set it back from the form's state.
    this.node.addEventListener('input', this._onInput);
    this._sync();
  }

  protected onBeforeDetach(msg: Message): void {
    this.node.removeEventListener('input', this._onInput);
    super.onBeforeDetach(msg);
  }

  dispose(): void {
    if (!this.isDisposed) {
      this._form.readyChanged.disconnect(this._sync, this);
    }
    super.dispose();
  }

  private _sync(): void {
    const accept = this.node.querySelector<HTMLButtonElement>(
      '.jp-Dialog-button.jp-mod-accept'
    );
    if (!accept) {
      return;
    }
    accept.disabled = this._submitting || !this._form.ready;
    const label = accept.querySelector('.jp-Dialog-buttonLabel');
    if (label) {
      label.textContent = this._submitting ? 'Publishing…' : 'Publish';
    }
    accept.title = this._form.ready
      ? 'Start the publish job (it runs on the server)'
      : 'Publish is possible once every field is valid and the check with Rucio passed';
  }

  private _onInput = (): void => this._sync();
  private _buttonsList: Dialog.IButton[];
  private _form: PublishFormWidget;
  private _submitting = false;
  private _accepted = false;
}

/**
 * Show the Publish dialog; resolves with the started job, or null when the
 * user cancelled.
 */
export async function showPublishDialog(
  options: PublishFormWidget.IOptions
): Promise<IPublishJob | null> {
  const body = new PublishFormWidget(options);
  const dialog = new PublishDialog(body);
  const result = await dialog.launch();
  return result.button.accept ? result.value : null;
}
