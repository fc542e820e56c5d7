/**
 * Live streams over EventSource. The browser reconnects by itself after a dropped
 * connection (sending Last-Event-ID); when it gives up (the server refused the stream),
 * we open a new one after a pause, resuming with ?last_event_id=.
 */

export const KINDS = ['status', 'progress', 'completed', 'failed', 'cancelled'];
export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const REOPEN_MS = [1000, 2000, 5000, 10000];

export class LiveStream {
  /**
   * @param {(lastEventId: string|null) => string} urlFor the stream URL, resuming after an id
   * @param {object} handlers `onEvent({kind, data, id})`, `onState('live'|'reconnecting'|
   *   'refused')`; return true from `onRefused()` to stop instead of reopening
   */
  constructor(urlFor, { onEvent, onState = () => {}, onRefused = async () => false }) {
    this.urlFor = urlFor;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onRefused = onRefused;
    this.lastEventId = null;
    this.refusals = 0;
    this.closed = false;
    this.open();
  }

  open() {
    if (this.closed) return;
    const source = new EventSource(this.urlFor(this.lastEventId));
    this.source = source;
    source.onopen = () => {
      this.refusals = 0;
      this.onState('live');
    };
    const deliver = (event) => {
      if (this.closed || source !== this.source) return;
      this.lastEventId = event.lastEventId || this.lastEventId;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onEvent({ kind: event.type, data, id: event.lastEventId });
    };
    for (const kind of KINDS) source.addEventListener(kind, deliver);
    source.onerror = () => this.failed(source);
  }

  async failed(source) {
    if (this.closed || source !== this.source) return;
    if (source.readyState !== EventSource.CLOSED) {
      this.onState('reconnecting');
      return;
    }
    this.onState('refused');
    if (await this.onRefused()) {
      this.close();
      return;
    }
    const pause = REOPEN_MS[Math.min(this.refusals, REOPEN_MS.length - 1)];
    this.refusals += 1;
    this.timer = setTimeout(() => this.open(), pause);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.source?.close();
  }
}
