/**
 * A Pinia store for the PilotProOS Vue app, built on the BI Engine client.
 *
 * Pinia is not imported here: pass your app's `defineStore` in, so this file has no
 * dependency and works with whichever Pinia (2 or 3) the app already uses.
 *
 *   import { defineStore } from 'pinia';
 *   import { defineBIEngineStore } from '@/lib/bi-engine/pinia/biEngineStore.js';
 *   export const useBIEngine = defineBIEngineStore(defineStore, {
 *     clientOptions: { baseUrl: import.meta.env.VITE_BI_ENGINE_URL, token: () => auth.token },
 *   });
 *
 * State stays plain data (jobs, timelines, results); the client and its live connections
 * live beside the store, one set per store definition.
 */

import { TERMINAL_KINDS, createClient } from '../bi-engine-client.js';

const ACTIVE = new Set(['queued', 'running']);

/**
 * @param {Function} defineStore Pinia's `defineStore`
 * @param {object} [options]
 * @param {string} [options.id] the store id (default 'biEngine')
 * @param {object} [options.client] a client made with `createClient` (shared with other code)
 * @param {object} [options.clientOptions] options for a new client when `client` is absent
 */
export function defineBIEngineStore(defineStore, { id = 'biEngine', client, clientOptions } = {}) {
  const runtime = {
    client: client ?? createClient(clientOptions),
    followers: new Map(),
    watcher: null,
  };

  return defineStore(id, {
    state: () => ({
      jobs: {},
      order: [],
      timelines: {},
      results: {},
      nextCursor: null,
      live: false,
      error: null,
    }),

    getters: {
      /** "Analysis Sessions": newest first. */
      sessions: (state) => state.order.map((jobId) => state.jobs[jobId]).filter(Boolean),
      activeSessions() {
        return this.sessions.filter((job) => ACTIVE.has(job.status));
      },
      job: (state) => (jobId) => state.jobs[jobId] ?? null,
      timeline: (state) => (jobId) => state.timelines[jobId] ?? [],
      result: (state) => (jobId) => state.results[jobId] ?? null,
    },

    actions: {
      /** The client itself, for calls the store does not wrap. */
      client() {
        return runtime.client;
      },

      setToken(token) {
        runtime.client.setToken(token);
      },

      /** Load (or, with `more`, continue) the list of the user's jobs. */
      async load({ status, type, limit = 50, more = false } = {}) {
        const cursor = more ? this.nextCursor : undefined;
        const page = await this.guard(() =>
          runtime.client.listJobs({ status, type, limit, cursor }),
        );
        for (const job of page.jobs) this.remember(job, { append: true });
        this.nextCursor = page.next_cursor;
        return page.jobs;
      },

      /** Submit, remember and follow the new job; resolves with the job document. */
      async submit(analysis, options = {}) {
        const accepted = await this.guard(() => runtime.client.submit(analysis, options));
        const finished = accepted.status === 'completed' && accepted.data; // Prefer: wait
        if (finished) this.results[accepted.job_id] = accepted;
        const { data: _result, ...document } = accepted;
        this.remember({ ...document, progress: finished ? 100 : 0 });
        if (ACTIVE.has(accepted.status)) this.follow(accepted);
        return accepted;
      },

      /** Follow one job live: progress, status and timeline stay current until it ends. */
      follow(job) {
        const jobId = typeof job === 'string' ? job : job.job_id;
        runtime.followers.get(jobId)?.close();
        const follower = runtime.client.follow(job, {
          lastEventId: contiguous(this.timelines[jobId] ?? []),
          onEvent: (event) => this.apply(event),
          onError: (error) => {
            this.error = error.message;
          },
        });
        runtime.followers.set(jobId, follower);
        follower.done
          .finally(() => {
            if (runtime.followers.get(jobId) === follower) runtime.followers.delete(jobId);
          })
          .catch(() => {});
        return follower.done;
      },

      /** Live updates for every job of the user (the dashboard feed). */
      watchAll() {
        if (runtime.watcher) return;
        this.live = true;
        runtime.watcher = runtime.client.watch({
          onEvent: (event) => this.apply(event),
          onError: (error) => {
            this.live = false;
            this.error = error.message;
            runtime.watcher = null;
          },
        });
      },

      /** Close every live connection (call it on sign-out or unmount). */
      stop() {
        runtime.watcher?.close();
        runtime.watcher = null;
        for (const follower of runtime.followers.values()) follower.close();
        runtime.followers.clear();
        this.live = false;
      },

      async cancel(jobId) {
        const document = await this.guard(() => runtime.client.cancel(jobId));
        this.remember(document);
        return document;
      },

      /** Queue a failed or cancelled job again and follow it from where its log stands. */
      async retry(jobId) {
        const accepted = await this.guard(() => runtime.client.retry(jobId));
        delete this.results[jobId];
        this.remember({ ...accepted, error: null, progress: 0 }, { restart: true });
        this.follow(accepted);
        return accepted;
      },

      async fetchResult(jobId) {
        const result = await this.guard(() => runtime.client.result(jobId));
        this.results[jobId] = result;
        return result;
      },

      async refresh(jobId) {
        const document = await this.guard(() => runtime.client.status(jobId));
        this.remember(document);
        return document;
      },

      /** One live event into the state (also used for the feed's events). */
      apply({ jobId, seq, kind, data }) {
        const timeline = (this.timelines[jobId] ??= []);
        const at = timeline.findIndex((entry) => entry.seq >= seq);
        if (at >= 0 && timeline[at].seq === seq) return;
        if (at >= 0) {
          timeline.splice(at, 0, { seq, kind, data }); // history arriving late: no state change
          return;
        }
        timeline.push({ seq, kind, data });
        const job = this.jobs[jobId];
        if (!job) {
          this.refresh(jobId).catch(() => {});
          return;
        }
        if (kind === 'progress') {
          job.progress = data.progress ?? job.progress;
          job.current_step = data.step ?? job.current_step;
          job.status = 'running';
        } else if (kind === 'status' && data.status) {
          job.status = data.status === 'retrying' ? 'queued' : data.status;
        } else if (TERMINAL_KINDS.includes(kind)) {
          job.status = kind;
          if (kind === 'completed') job.progress = 100;
          if (kind === 'failed') job.error = data.error ?? null;
          if (kind === 'completed') this.fetchResult(jobId).catch(() => {});
        }
      },

      /**
       * Merge a REST document. Once a job has live events, its status, progress and step come
       * from them alone (a document fetched a moment ago may be older), except on `restart`.
       */
      remember(document, { append = false, restart = false } = {}) {
        const jobId = document.job_id;
        const known = this.jobs[jobId];
        const merged = { ...(known ?? {}), ...document };
        if (known && !restart && this.timelines[jobId]?.length) {
          Object.assign(merged, pick(known, ['status', 'progress', 'current_step']));
        }
        this.jobs[jobId] = merged;
        if (known) return;
        if (append) this.order.push(jobId);
        else this.order.unshift(jobId);
      },

      async guard(call) {
        this.error = null;
        try {
          return await call();
        } catch (error) {
          this.error = error.message;
          throw error;
        }
      },
    },
  });
}

/** The last seq up to which a timeline has every event (where a stream can resume). */
function contiguous(timeline) {
  let last = 0;
  for (const entry of timeline) {
    if (entry.seq !== last + 1) break;
    last = entry.seq;
  }
  return last;
}

function pick(object, keys) {
  return Object.fromEntries(keys.filter((key) => key in object).map((key) => [key, object[key]]));
}
