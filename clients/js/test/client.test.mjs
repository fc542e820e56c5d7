// The client against a running engine (API + worker). tests/browser/test_js_client.py starts
// one and runs `node --test` with BI_ENGINE_URL, BI_ENGINE_TOKEN and BI_ENGINE_OTHER_TOKEN.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { BIEngineError, SSEParser, TERMINAL_KINDS, createClient } from '../bi-engine-client.js';

const URL_ = process.env.BI_ENGINE_URL;
const engine = { skip: URL_ ? false : 'BI_ENGINE_URL is not set: no engine to talk to' };
const options = () => ({
  baseUrl: URL_,
  token: process.env.BI_ENGINE_TOKEN,
  reconnectDelayMs: 100,
});
const client = () => createClient(options());

/**
 * The real fetch, with the text of each event stream passed through `change(text, n)` (n:
 * the stream's number, from 0), which returns the text to deliver, or `{text, drop: true}`
 * to deliver it and then drop the connection as a network failure would.
 */
function tamperedFetch(change) {
  const opened = [];
  const tampered = async (url, init = {}) => {
    const response = await fetch(url, init);
    if (!String(url).includes('/events')) return response;
    const stream = opened.length;
    opened.push({ url: String(url), lastEventId: init.headers?.['Last-Event-ID'] });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    const body = new ReadableStream({
      // A pull that enqueues nothing is not called again: a chunk the change emptied
      // (a dropped frame that came alone) must be followed by the next one.
      async pull(controller) {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return controller.close();
          const changed = change(decoder.decode(value, { stream: true }), stream);
          const text = typeof changed === 'string' ? changed : changed.text;
          if (text) controller.enqueue(encoder.encode(text));
          if (changed.drop) {
            await reader.cancel();
            return controller.error(new TypeError('network connection lost'));
          }
          if (text) return undefined;
        }
      },
      cancel: () => reader.cancel(),
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  return { fetch: tampered, opened };
}

function collect(bi, job, options = {}) {
  const events = [];
  const follower = bi.follow(job, { ...options, onEvent: (event) => events.push(event) });
  return { events, follower };
}

async function until(check, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const seqsOf = (events) => events.map((event) => event.seq);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('SSEParser', () => {
  test('reads id, event, multi-line data, retry and comments across chunk borders', () => {
    const seen = [];
    const parser = new SSEParser((event) => seen.push(event));
    parser.push('retry: 2000\r\n\r\n: ping\n\nid: 1\nevent: status\ndata: {"a":');
    parser.push('1}\n\nid: 2\r');
    parser.push('\nevent: progress\ndata: line one\ndata: line two\n\ndata: no id\n\n');
    assert.equal(parser.retry, 2000);
    assert.deepEqual(seen, [
      { type: 'status', data: '{"a":1}', lastEventId: '1' },
      { type: 'progress', data: 'line one\nline two', lastEventId: '2' },
      { type: 'message', data: 'no id', lastEventId: '2' },
    ]);
  });
});

describe('against a running engine', engine, () => {
  test('submit, then follow to completion: every event once, seq contiguous from 1', async () => {
    const bi = client();
    const job = await bi.submit({ type: 'test', data: { sleep_s: 1 } });
    assert.equal(job.status, 'queued');
    assert.match(job.events_url, /\?token=/);
    const { events, follower } = collect(bi, job);
    const end = await follower.done;
    assert.equal(end.kind, 'completed');
    assert.deepEqual(seqsOf(events), range(1, events.length));
    assert.deepEqual(events[0], {
      jobId: job.job_id,
      seq: 1,
      kind: 'status',
      data: { status: 'queued' },
    });
    assert.ok(events.some((event) => event.kind === 'progress'));
    assert.equal(events.filter((event) => TERMINAL_KINDS.includes(event.kind)).length, 1);
    assert.equal(follower.lastEventId, events.length);
    const result = await bi.result(job.job_id);
    assert.equal(result.status, 'completed');
    const status = await bi.status(job.job_id);
    assert.equal(status.progress, 100);
  });

  test('resume with lastEventId: only what came after, then the end', async () => {
    const bi = client();
    const job = await bi.submit({ type: 'test', data: {} });
    const first = collect(bi, job);
    await first.follower.done;
    const total = first.events.length;
    assert.ok(total >= 3);
    const again = collect(bi, job, { lastEventId: 2 });
    const end = await again.follower.done;
    assert.deepEqual(seqsOf(again.events), range(3, total));
    assert.equal(end.seq, total);
    assert.deepEqual(again.events, first.events.slice(2));
  });

  test('follow by job id alone uses the JWT; the fetch transport resumes live mid-job', async () => {
    const bi = client();
    const job = await bi.submit({ type: 'test', data: { sleep_s: 2 } });
    const early = collect(bi, job.job_id);
    await until(() => early.events.find((event) => event.kind === 'progress'), 'a progress event');
    early.follower.close();
    assert.equal(await early.follower.done, null);
    const seen = early.follower.lastEventId;
    const rest = collect(bi, job.job_id, { lastEventId: seen });
    const end = await rest.follower.done;
    assert.equal(end.kind, 'completed');
    assert.deepEqual(seqsOf([...early.events, ...rest.events]), range(1, end.seq));
  });

  test('a dropped connection resumes after the last event: no gap, no repeat', async () => {
    const { fetch: cutting, opened } = tamperedFetch((text, stream) => {
      const at = text.indexOf('id: 2\n');
      return stream === 0 && at >= 0 ? { text: text.slice(0, at), drop: true } : text;
    });
    const bi = createClient({ ...options(), transport: 'fetch', fetch: cutting });
    const job = await bi.submit({ type: 'test', data: { sleep_s: 1 } });
    const { events, follower } = collect(bi, job);
    const end = await follower.done;
    assert.equal(end.kind, 'completed');
    assert.deepEqual(seqsOf(events), range(1, end.seq));
    assert.equal(opened.length, 2);
    assert.equal(opened[0].lastEventId, undefined);
    assert.equal(opened[1].lastEventId, '1');
    assert.match(opened[1].url, /last_event_id=1/);
  });

  test('a gap in the stream is read again from the last event received', async () => {
    const { fetch: lossy, opened } = tamperedFetch((text, stream) =>
      stream === 0 ? text.replace(/id: 3\n[^]*?\n\n/, '') : text,
    );
    const bi = createClient({ ...options(), transport: 'fetch', fetch: lossy });
    const job = await bi.submit({ type: 'test', data: { sleep_s: 1 } });
    const { events, follower } = collect(bi, job);
    const end = await follower.done;
    assert.equal(end.kind, 'completed');
    assert.deepEqual(seqsOf(events), range(1, end.seq));
    assert.ok(opened.length >= 2);
    assert.equal(opened[1].lastEventId, '2');
  });

  test('cancel a running job, retry it, follow the retry from where the log stood', async () => {
    const bi = client();
    const job = await bi.submit({ type: 'test', data: { sleep_s: 60 } });
    const { events, follower } = collect(bi, job);
    await until(() => events.find((event) => event.kind === 'progress'), 'the job to run');
    const cancelling = await bi.cancel(job.job_id);
    assert.equal(cancelling.abort_requested, true);
    const end = await follower.done;
    assert.equal(end.kind, 'cancelled');
    await assert.rejects(bi.cancel(job.job_id), (error) => error.status === 409);

    const retried = await bi.retry(job.job_id);
    assert.equal(retried.status, 'queued');
    assert.match(retried.events_url, /\?token=/);
    const second = collect(bi, retried, { lastEventId: end.seq });
    await until(() => second.events.find((event) => event.kind === 'progress'), 'the retry to run');
    assert.deepEqual(second.events[0].data, { status: 'queued', retry: true });
    assert.equal(second.events[0].seq, end.seq + 1);
    await bi.cancel(job.job_id);
    const secondEnd = await second.follower.done;
    assert.equal(secondEnd.kind, 'cancelled');
    assert.deepEqual(seqsOf([...events, ...second.events]), range(1, secondEnd.seq));
    const status = await bi.status(job.job_id);
    assert.equal(status.status, 'cancelled');
  });

  test('retry of a completed job is refused (409)', async () => {
    const bi = client();
    const done = await bi.submit({ type: 'test', data: {} });
    await bi.follow(done).done;
    await assert.rejects(bi.retry(done.job_id), (error) => {
      assert.ok(error instanceof BIEngineError);
      return error.status === 409 && typeof error.code === 'string';
    });
  });

  test('list jobs: the caller sees theirs, another user does not', async () => {
    const bi = client();
    const job = await bi.submit({ type: 'test', data: {} });
    const page = await bi.listJobs({ limit: 200 });
    assert.ok(page.jobs.some((entry) => entry.job_id === job.job_id));
    const filtered = await bi.listJobs({ type: ['test'], status: 'queued,running,completed' });
    assert.ok(filtered.jobs.every((entry) => entry.type === 'test'));
    const other = createClient({ baseUrl: URL_, token: process.env.BI_ENGINE_OTHER_TOKEN });
    const theirs = await other.listJobs({ limit: 200 });
    assert.ok(!theirs.jobs.some((entry) => entry.job_id === job.job_id));
    await assert.rejects(other.status(job.job_id), (error) => error.status === 404);
    await assert.rejects(other.follow(job.job_id).done, (error) => error.status === 404);
  });

  test('report as Markdown and as HTML; token as a function', async () => {
    let calls = 0;
    const bi = createClient({
      baseUrl: URL_,
      token: async () => {
        calls += 1;
        return process.env.BI_ENGINE_TOKEN;
      },
    });
    const job = await bi.submit({ type: 'test', data: {} });
    await bi.follow(job).done;
    const markdown = await bi.report(job.job_id);
    assert.equal(typeof markdown, 'string');
    assert.ok(markdown.length > 0);
    const html = await bi.report(job.job_id, { html: true });
    assert.match(html, /<html/);
    assert.ok(calls >= 3);
  });

  test('errors carry the API envelope: 401, 404, 422', async () => {
    const stranger = createClient({ baseUrl: URL_, token: 'not-a-jwt' });
    await assert.rejects(
      stranger.listJobs(),
      (error) => error.status === 401 && error.code.length > 0,
    );
    const bi = client();
    await assert.rejects(
      bi.status('00000000-0000-4000-8000-000000000000'),
      (e) => e.status === 404,
    );
    await assert.rejects(bi.submit({ type: 'nope', data: {} }), (error) => {
      assert.equal(error.status, 422);
      assert.ok(Array.isArray(error.details));
      return true;
    });
    const unreachable = createClient({ baseUrl: 'http://127.0.0.1:9', token: 'x' });
    await assert.rejects(unreachable.types(), (error) => error.status === 0);
  });

  test("watch: the feed of all the caller's jobs, each event once", async () => {
    const bi = client();
    const seen = [];
    let open = false;
    const watcher = bi.watch({
      onEvent: (event) => seen.push(event),
      onOpen: () => {
        open = true;
      },
    });
    await until(() => open, 'the feed to open');
    const job = await bi.submit({ type: 'test', data: {} });
    await bi.follow(job).done;
    const mine = await until(() => {
      const events = seen.filter((event) => event.jobId === job.job_id);
      return events.some((event) => event.kind === 'completed') && events;
    }, 'the feed to carry the job');
    watcher.close();
    assert.deepEqual(seqsOf(mine), range(1, mine.length));
  });
});
