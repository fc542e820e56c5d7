/**
 * BI Engine client: one dependency-free ES module for browsers and Node 18+.
 *
 * Submit analyses, follow a job live (Server-Sent Events with resume), cancel, retry, list
 * jobs and fetch results and reports. Live streams use the browser's EventSource when there
 * is one (the stream token of the 202 answer travels in the URL, as EventSource sends no
 * headers) and otherwise read the stream with fetch, so the same code runs under Node.
 *
 *   import { createClient } from './bi-engine-client.js';
 *   const bi = createClient({ baseUrl: 'http://localhost:8000', token: () => auth.jwt });
 *   const job = await bi.submit({ type: 'trend_analysis', data: { series } });
 *   const end = await bi.follow(job, { onProgress: (p) => console.log(p.progress) }).done;
 */

export const API_PREFIX = '/api/business-intelligence';
export const TERMINAL_KINDS = Object.freeze(['completed', 'failed', 'cancelled']);
export const EVENT_KINDS = Object.freeze(['status', 'progress', ...TERMINAL_KINDS]);
const MAX_BACKOFF_MS = 15000;

/** Every failure: `status` is the HTTP status (0 for network trouble), `code` the API's. */
export class BIEngineError extends Error {
  constructor(
    message,
    { status = 0, code = 'network_error', details = null, retryAfter = null } = {},
  ) {
    super(message);
    this.name = 'BIEngineError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

export function createClient(options = {}) {
  return new BIEngineClient(options);
}

export class BIEngineClient {
  /**
   * @param {object} options
   * @param {string} [options.baseUrl] the engine's origin ('' = same origin as the page)
   * @param {string|(() => string|Promise<string>)} [options.token] the backend's JWT, or a
   *   function returning the current one (called before every request and reconnect)
   * @param {'auto'|'eventsource'|'fetch'} [options.transport] how live streams are read
   * @param {typeof fetch} [options.fetch] @param {typeof EventSource} [options.EventSource]
   * @param {number} [options.reconnectDelayMs] first reconnect delay, doubled up to 15 s
   * @param {number} [options.maxReconnects] failed reconnects in a row before giving up
   */
  constructor({
    baseUrl = '',
    token = null,
    transport = 'auto',
    fetch: fetchImpl = globalThis.fetch?.bind(globalThis),
    EventSource: EventSourceImpl = globalThis.EventSource,
    reconnectDelayMs = 1000,
    maxReconnects = 8,
  } = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, '');
    this.token = token;
    this.fetch = fetchImpl;
    this.EventSource = EventSourceImpl;
    this.transport = transport === 'auto' ? (EventSourceImpl ? 'eventsource' : 'fetch') : transport;
    this.reconnectDelayMs = reconnectDelayMs;
    this.maxReconnects = maxReconnects;
  }

  setToken(token) {
    this.token = token;
  }

  async currentToken() {
    const value = typeof this.token === 'function' ? await this.token() : this.token;
    return value || null;
  }

  /** An absolute URL for an API path (paths the API returns are absolute paths). */
  url(path) {
    if (/^https?:\/\//i.test(path)) return path;
    const base = this.baseUrl || globalThis.location?.origin || '';
    return `${base}${path}`;
  }

  async request(method, path, { body, headers = {}, signal, accept = 'application/json' } = {}) {
    const token = await this.currentToken();
    const all = { Accept: accept, ...headers };
    if (token) all.Authorization = `Bearer ${token}`;
    if (body !== undefined) all['Content-Type'] = 'application/json';
    let response;
    try {
      response = await this.fetch(this.url(path), {
        method,
        headers: all,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (error?.name === 'AbortError') throw error;
      throw new BIEngineError(`The engine cannot be reached: ${error?.message ?? error}`);
    }
    if (!response.ok) throw await errorOf(response);
    const type = response.headers.get('content-type') || '';
    return type.includes('application/json') ? response.json() : response.text();
  }

  /**
   * Submit an analysis. Resolves with the 202 job document (job_id, events_url, ...), or,
   * with `waitSeconds` and a job that finished in time, with the result document.
   */
  submit(analysis, { idempotencyKey, waitSeconds, signal } = {}) {
    const headers = {};
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    if (waitSeconds) headers.Prefer = `wait=${Math.min(60, Math.max(1, Math.round(waitSeconds)))}`;
    return this.request('POST', `${API_PREFIX}/analyze`, { body: analysis, headers, signal });
  }

  status(jobId, { signal } = {}) {
    return this.request('GET', jobPath(jobId), { signal });
  }

  /** The caller's jobs, newest first: `{jobs, next_cursor}`; pass `cursor` for the next page. */
  listJobs({ status, type, limit, cursor, signal } = {}) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries({ status, type, limit, cursor })) {
      if (value === undefined || value === null || value === '') continue;
      query.set(name, Array.isArray(value) ? value.join(',') : String(value));
    }
    const text = query.toString();
    return this.request('GET', `${API_PREFIX}/jobs${text ? `?${text}` : ''}`, { signal });
  }

  result(jobId, { signal } = {}) {
    return this.request('GET', `${jobPath(jobId)}/result`, { signal });
  }

  /** The report as Markdown (default) or as a small HTML page (`{ html: true }`). */
  report(jobId, { html = false, signal } = {}) {
    const accept = html ? 'text/html' : 'text/markdown';
    return this.request('GET', `${jobPath(jobId)}/report`, { accept, signal });
  }

  cancel(jobId, { signal } = {}) {
    return this.request('POST', `${jobPath(jobId)}/cancel`, { signal });
  }

  /** Queue a failed or cancelled job again; resolves with a job document like submit's. */
  retry(jobId, { signal } = {}) {
    return this.request('POST', `${jobPath(jobId)}/retry`, { signal });
  }

  types({ signal } = {}) {
    return this.request('GET', `${API_PREFIX}/types`, { signal });
  }

  /**
   * Follow one job live until its terminal event. `job` is a job document (its `events_url`
   * carries the job's stream token) or a job id (then the JWT opens the stream).
   * Events arrive once each, in `seq` order, also across reconnects; `lastEventId` resumes
   * after an event already seen. Returns a {@link JobFollower}: `await follower.done`.
   */
  follow(job, options = {}) {
    return new JobFollower(this, job, options);
  }

  /** Every event of the caller's jobs (admin: all jobs), for dashboards. Never ends. */
  watch(options = {}) {
    return new FeedWatcher(this, options);
  }
}

function jobPath(jobId) {
  return `${API_PREFIX}/jobs/${encodeURIComponent(String(jobId))}`;
}

async function errorOf(response) {
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    envelope = null;
  }
  const error = envelope?.error ?? {};
  const retryAfter = Number(response.headers.get('retry-after')) || null;
  return new BIEngineError(error.message || `HTTP ${response.status}`, {
    status: response.status,
    code: error.code || `http_${response.status}`,
    details: error.details ?? null,
    retryAfter,
  });
}

/** Server-Sent Events wire format (the parts the engine sends: id, event, data, retry). */
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.lastEventId = '';
    this.retry = null;
    this.type = '';
    this.data = [];
  }

  push(text) {
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) return;
      if (match[0] === '\r' && match.index === this.buffer.length - 1) return; // maybe \r\n
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return undefined;
  }

  dispatch() {
    const type = this.type || 'message';
    const data = this.data.join('\n');
    const had = this.data.length > 0;
    this.type = '';
    this.data = [];
    if (had) this.onEvent({ type, data, lastEventId: this.lastEventId });
  }
}

/** One live connection, through EventSource or fetch; reports frames and its end. */
class Connection {
  constructor(client, url, { headers = {}, onOpen, onFrame, onEnd }) {
    this.client = client;
    this.onOpen = onOpen;
    this.onFrame = onFrame;
    this.onEnd = onEnd;
    this.closed = false;
    if (client.transport === 'eventsource') this.openEventSource(url);
    else this.openFetch(url, headers);
  }

  openEventSource(url) {
    const source = new this.client.EventSource(url);
    this.source = source;
    const frame = (event) => this.frame(event.type, event.data, event.lastEventId);
    for (const kind of EVENT_KINDS) source.addEventListener(kind, frame);
    source.onopen = () => this.onOpen();
    source.onerror = () => {
      // CLOSED: an HTTP error or a wrong content type; CONNECTING: the browser reconnects
      // by itself (Last-Event-ID sent), we only count it.
      if (source.readyState === 2) this.end({ fatal: true });
      else this.onEnd({ fatal: false, reconnecting: true });
    };
  }

  async openFetch(url, headers) {
    const abort = new AbortController();
    this.abort = abort;
    try {
      const response = await this.client.fetch(url, {
        headers: { Accept: 'text/event-stream', ...headers },
        signal: abort.signal,
        cache: 'no-store',
      });
      if (!response.ok) return this.end({ fatal: true, error: await errorOf(response) });
      this.onOpen();
      const parser = new SSEParser((e) => this.frame(e.type, e.data, e.lastEventId));
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      while (!this.closed) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
      return this.end({ fatal: false });
    } catch (error) {
      if (this.closed) return undefined;
      return this.end({ fatal: false, error: new BIEngineError(String(error?.message ?? error)) });
    }
  }

  /** Frames still parsed from a chunk after close() are not delivered. */
  frame(kind, data, id) {
    if (!this.closed) this.onFrame(kind, data, id);
  }

  end(info) {
    if (this.closed) return;
    this.close();
    this.onEnd(info);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.source?.close();
    this.abort?.abort();
  }
}

/** Base of the job follower and the feed watcher: reconnects with backoff, and `done`. */
class LiveStream {
  constructor(client, { signal } = {}) {
    this.client = client;
    this.failures = 0;
    this.connection = null;
    this.timer = null;
    this.settled = false;
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.done.catch(() => {}); // a rejection nobody awaits is not a crash; awaiters still see it
    if (signal) {
      if (signal.aborted) queueMicrotask(() => this.close());
      else signal.addEventListener('abort', () => this.close(), { once: true });
    }
  }

  async connect() {
    if (this.settled) return;
    try {
      const { url, headers } = await this.target();
      if (this.settled) return;
      this.connection = new Connection(this.client, url, {
        headers,
        onOpen: () => this.onOpen?.(),
        onFrame: (kind, data, id) => this.frame(kind, data, id),
        onEnd: (info) => this.ended(info),
      });
    } catch (error) {
      this.fail(error);
    }
  }

  frame(kind, raw, id) {
    let data;
    try {
      data = JSON.parse(raw);
    } catch {
      return;
    }
    this.failures = 0;
    this.receive(kind, data, id);
  }

  /** A connection ended without the stream's end: reconnect, or give up on a lasting error. */
  async ended(info) {
    if (this.settled) return;
    this.failures += 1;
    const tooMany = this.failures > this.client.maxReconnects;
    if (info.reconnecting) {
      if (tooMany) this.fail(new BIEngineError('The live stream keeps failing.'));
      return; // the EventSource reconnects by itself, sending Last-Event-ID
    }
    const error = info.error ?? (info.fatal ? await this.diagnose() : null);
    if (this.settled) return;
    if (error && !this.recoverable(error)) return this.fail(error);
    if (tooMany) return this.fail(error ?? new BIEngineError('The live stream keeps failing.'));
    this.reconnect();
  }

  /** EventSource hides the HTTP status of a refused stream: ask the REST API instead. */
  async diagnose() {
    return null;
  }

  /** Network trouble, 429 and 5xx pass; 400, 401, 403, 404 will not by waiting. */
  recoverable(error) {
    return error.status === 0 || error.status === 429 || error.status >= 500;
  }

  reconnect() {
    this.connection?.close();
    clearTimeout(this.timer);
    const delay = Math.min(MAX_BACKOFF_MS, this.client.reconnectDelayMs * 2 ** (this.failures - 1));
    this.timer = setTimeout(() => this.connect(), Math.max(0, delay));
  }

  settle(value) {
    if (this.settled) return;
    this.settled = true;
    this.stop();
    this.resolve(value);
  }

  fail(error) {
    if (this.settled) return;
    this.settled = true;
    this.stop();
    this.onError?.(error);
    this.reject(error);
  }

  stop() {
    clearTimeout(this.timer);
    this.connection?.close();
  }

  /** Stop listening; `done` then resolves with null. */
  close() {
    this.settle(null);
  }
}

/** Follows one job: see {@link BIEngineClient#follow}. */
export class JobFollower extends LiveStream {
  constructor(client, job, options = {}) {
    const { lastEventId = 0, onEvent, onProgress, onStatus, onError, onOpen, signal } = options;
    super(client, { signal });
    this.onOpen = onOpen;
    this.jobId = typeof job === 'string' ? job : job.job_id;
    this.eventsUrl = typeof job === 'string' ? null : (job.events_url ?? null);
    this.lastEventId = Number(lastEventId) || 0;
    this.handlers = { onEvent, onProgress, onStatus };
    this.onError = onError;
    this.authFailed = false;
    this.connect();
  }

  /** The job's stream token URL first; the JWT when there is none or it stopped working. */
  async target() {
    const token = await this.client.currentToken();
    const useJwt = !this.eventsUrl || (this.authFailed && token);
    const path = useJwt ? `${jobPath(this.jobId)}/events` : this.eventsUrl;
    const url = new URL(this.client.url(path));
    const headers = {};
    if (this.lastEventId > 0) {
      url.searchParams.set('last_event_id', String(this.lastEventId));
      headers['Last-Event-ID'] = String(this.lastEventId);
    }
    if (useJwt && token) url.searchParams.set('token', token);
    return { url: String(url), headers };
  }

  async diagnose() {
    if (!(await this.client.currentToken())) return null;
    try {
      await this.client.status(this.jobId);
    } catch (error) {
      return error;
    }
    this.authFailed = true; // the job is there and ours: the stream token has expired
    return null;
  }

  recoverable(error) {
    if (error.status === 401 && this.eventsUrl && !this.authFailed) {
      this.authFailed = true; // the stream token expired: the JWT opens the stream too
      return true;
    }
    return super.recoverable(error);
  }

  receive(kind, data, id) {
    const seq = Number(id);
    if (!Number.isInteger(seq) || seq <= this.lastEventId) return; // already seen
    if (seq > this.lastEventId + 1) return this.reconnect(); // a gap: read it again
    this.lastEventId = seq;
    const event = { jobId: this.jobId, seq, kind, data };
    this.handlers.onEvent?.(event);
    if (kind === 'progress') this.handlers.onProgress?.(data, event);
    if (kind === 'status') this.handlers.onStatus?.(data, event);
    if (TERMINAL_KINDS.includes(kind)) this.settle(event);
    return undefined;
  }
}

/** Watches every job of the caller: see {@link BIEngineClient#watch}. */
export class FeedWatcher extends LiveStream {
  constructor(client, { lastEventId = null, onEvent, onError, onOpen, signal } = {}) {
    super(client, { signal });
    this.onOpen = onOpen;
    this.lastEventId = lastEventId;
    this.seen = new Map();
    this.onEvent = onEvent;
    this.onError = onError;
    this.connect();
  }

  async target() {
    const token = await this.client.currentToken();
    const url = new URL(this.client.url(`${API_PREFIX}/events`));
    const headers = {};
    if (this.lastEventId) {
      url.searchParams.set('last_event_id', this.lastEventId);
      headers['Last-Event-ID'] = this.lastEventId;
    }
    if (token) url.searchParams.set('token', token);
    return { url: String(url), headers };
  }

  /** A resumed feed re-reads a little history: keep each (job, seq) once. */
  receive(kind, data, id) {
    const jobId = data.job_id;
    const seq = Number(data.seq);
    if (!jobId || !Number.isInteger(seq) || seq <= (this.seen.get(jobId) ?? 0)) return;
    this.seen.set(jobId, seq);
    this.lastEventId = id || `${jobId}:${seq}`;
    this.onEvent?.({ jobId, seq, kind, data });
  }

  async diagnose() {
    try {
      await this.client.types();
    } catch (error) {
      return error;
    }
    return null;
  }
}
