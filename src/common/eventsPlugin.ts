import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

import { IAFLabEvents } from '../tokens';
import { EventStream } from './eventStream';

/**
 * The topics of the one connection: mounts and publish jobs; clusters as
 * soon as the server publishes them (until then the Clusters view polls).
 */
export const EVENT_TOPICS = ['mounts', 'publish', 'clusters'];

/**
 * One connection to the server's event stream for every section, with one
 * reconnect/backoff (see {@link EventStream}); each section listens to its
 * own topic on it.
 */
const plugin: JupyterFrontEndPlugin<IAFLabEvents> = {
  id: 'af-lab:events',
  description: "The one connection to af-lab's server event stream.",
  autoStart: true,
  provides: IAFLabEvents,
  activate: (app: JupyterFrontEnd): IAFLabEvents => {
    return { stream: new EventStream({ topics: EVENT_TOPICS }) };
  }
};

export default plugin;
