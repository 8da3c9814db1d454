import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

import { IAFLabEvents } from '../tokens';
import { EventStream } from './eventStream';
import { FallbackPoll } from './fallbackPoll';

/**
 * The topics of the one connection: mounts, publish jobs and clusters
 * (their state and their batch jobs).
 */
export const EVENT_TOPICS = ['mounts', 'publish', 'clusters'];

/**
 * One connection to the server's event stream for every section, with one
 * reconnect/backoff (see {@link EventStream}), and one polling fallback
 * while it is down (see {@link FallbackPoll}); each section listens to its
 * own topic on it.
 */
const plugin: JupyterFrontEndPlugin<IAFLabEvents> = {
  id: 'af-lab:events',
  description: "The one connection to af-lab's server event stream.",
  autoStart: true,
  provides: IAFLabEvents,
  activate: (app: JupyterFrontEnd): IAFLabEvents => {
    const stream = new EventStream({ topics: EVENT_TOPICS });
    return { stream, fallback: new FallbackPoll({ stream }) };
  }
};

export default plugin;
