import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';

/**
 * A ReactWidget that renders again when it is shown or hidden, so its panel can
 * read `this.isVisible` and poll or stream only while the user can see it.
 */
export abstract class VisibleReactWidget extends ReactWidget {
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.update();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.update();
  }
}
