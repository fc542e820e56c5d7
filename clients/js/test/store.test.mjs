// The Pinia store with the real Pinia (a devDependency: `npm ci` in clients/js) against a
// running engine, like client.test.mjs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { defineBIEngineStore } from '../pinia/biEngineStore.js';

const URL_ = process.env.BI_ENGINE_URL;
let pinia = null;
try {
  pinia = await import('pinia');
} catch {
  pinia = null;
}
const skip = !URL_
  ? 'BI_ENGINE_URL is not set: no engine to talk to'
  : !pinia && 'pinia is not installed: run `npm ci` in clients/js';

async function until(check, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function freshStore(id) {
  pinia.setActivePinia(pinia.createPinia());
  const useStore = defineBIEngineStore(pinia.defineStore, {
    id,
    clientOptions: { baseUrl: URL_, token: process.env.BI_ENGINE_TOKEN, reconnectDelayMs: 100 },
  });
  return useStore();
}

describe('biEngineStore (real Pinia)', { skip }, () => {
  test('submit follows the job: progress to 100, a gap-free timeline, the result loaded', async () => {
    const store = freshStore('bi-submit');
    const job = await store.submit({ type: 'test', data: { sleep_s: 1 } });
    assert.equal(store.sessions[0].job_id, job.job_id);
    await until(() => store.result(job.job_id), 'the result');
    const session = store.job(job.job_id);
    assert.equal(session.status, 'completed');
    assert.equal(session.progress, 100);
    const seqs = store.timeline(job.job_id).map((entry) => entry.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => i + 1),
    );
    assert.equal(store.result(job.job_id).status, 'completed');
    assert.deepEqual(store.activeSessions, []);
    store.stop();
  });

  test('watchAll keeps jobs submitted elsewhere current; cancel and retry go through', async () => {
    const store = freshStore('bi-watch');
    await store.load({ limit: 5 });
    store.watchAll();
    assert.equal(store.live, true);
    const other = freshStore('bi-elsewhere'); // another tab of the same user
    const job = await other.submit({ type: 'test', data: { sleep_s: 60 } });
    other.stop();
    await until(() => store.job(job.job_id)?.status === 'running', 'the feed to show it running');
    await store.cancel(job.job_id);
    await until(() => store.job(job.job_id)?.status === 'cancelled', 'the cancellation');
    await store.retry(job.job_id);
    await until(
      () => store.timeline(job.job_id).some((entry) => entry.data.retry === true),
      'the retry in the timeline',
    );
    await until(() => store.job(job.job_id)?.status === 'running', 'the retry to run');
    await store.cancel(job.job_id);
    await until(() => store.job(job.job_id)?.status === 'cancelled', 'the second cancellation');
    const seqs = store.timeline(job.job_id).map((entry) => entry.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => i + 1),
    );
    assert.equal(store.error, null);
    store.stop();
    assert.equal(store.live, false);
  });

  test('errors land in store.error and are thrown to the caller', async () => {
    const store = freshStore('bi-errors');
    await assert.rejects(store.submit({ type: 'nope', data: {} }), (error) => error.status === 422);
    assert.match(store.error, /.+/);
  });
});
