/**
 * The dashboard: sign in with a JWT, then the live "Analysis Sessions" list (GET /events),
 * one session's detail with its AI Team timeline, and the form to start an analysis.
 */

import { API, Api } from './api.js';
import { byId } from './dom.js';
import { learnTypes } from './format.js';
import { JobDetail } from './detail.js';
import { LiveStream } from './live.js';
import { SessionList } from './sessions.js';
import { SubmitForm } from './submit.js';

const TOKEN_KEY = 'bi-engine.token';

class Dashboard {
  constructor() {
    this.token = sessionStorage.getItem(TOKEN_KEY);
    this.api = new Api(() => this.token);
    this.feed = null;
    this.fetching = new Set();
    this.sessions = new SessionList(byId('session-list'), { onSelect: (id) => this.select(id) });
    this.detail = new JobDetail(byId('detail'), {
      api: this.api,
      onChange: (change) => this.sessions.get(change.job_id) && this.sessions.upsert(change),
      onError: (message) => this.toast(message),
    });
    this.form = new SubmitForm(byId('submit-form'), {
      api: this.api,
      onSubmitted: (job) => {
        // The feed may have shown it already, with newer progress than this 202 answer.
        if (!this.sessions.get(job.job_id)) this.sessions.upsert({ progress: 0, ...job });
        this.select(job.job_id);
      },
    });
    byId('signin-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.signIn(byId('signin-token').value.trim());
    });
    byId('signout').addEventListener('click', () => this.signOut('Signed out.'));
  }

  async start() {
    if (this.token) await this.signIn(this.token);
    else this.showSignIn('');
  }

  /** Check the token with an authenticated call before showing anything. */
  async signIn(token) {
    if (!token) return this.showSignIn('Paste a token to sign in.');
    this.token = token;
    try {
      learnTypes(await this.api.types());
    } catch (error) {
      this.token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      const why =
        error.status === 401 ? 'This token is not accepted' : 'The engine cannot be reached';
      return this.showSignIn(`${why}: ${error.message}`);
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    byId('signin').hidden = true;
    byId('workspace').hidden = false;
    byId('signout').hidden = false;
    byId('whoami').textContent = describeUser(token);
    await Promise.all([this.form.load(), this.loadSessions()]);
    this.watch();
    return undefined;
  }

  signOut(message) {
    this.feed?.close();
    this.feed = null;
    this.detail.close();
    this.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    this.showSignIn(message);
  }

  showSignIn(message) {
    byId('workspace').hidden = true;
    byId('signout').hidden = true;
    byId('whoami').textContent = '';
    byId('signin').hidden = false;
    byId('signin-error').textContent = message;
    byId('signin-token').focus();
  }

  async loadSessions() {
    try {
      const page = await this.api.jobs(50);
      this.sessions.reset(page.jobs);
    } catch (error) {
      this.toast(error.message);
    }
  }

  /** The feed of all the user's jobs keeps the list live. */
  watch() {
    this.feed?.close();
    const indicator = byId('live-state');
    this.feed = new LiveStream(
      (lastEventId) => this.api.streamUrl(`${API}/events`, { last_event_id: lastEventId }),
      {
        onEvent: (event) => this.onFeedEvent(event),
        onState: (state) => {
          indicator.dataset.state = state;
          indicator.textContent = state === 'live' ? 'Live' : 'Reconnecting…';
        },
        onRefused: async () => {
          try {
            await this.api.types();
            return false;
          } catch (error) {
            if (error.status !== 401) return false;
            this.signOut('Your session has expired: sign in again.');
            return true;
          }
        },
      },
    );
  }

  /** A feed event; a session started elsewhere (another tab, n8n...) is fetched once. */
  async onFeedEvent(event) {
    const jobId = event.data.job_id;
    if (this.sessions.apply(event) || this.fetching.has(jobId)) return;
    this.fetching.add(jobId);
    try {
      this.sessions.upsert(await this.api.job(jobId));
    } catch {
      // gone already: nothing to show
    } finally {
      this.fetching.delete(jobId);
    }
  }

  select(jobId) {
    const job = this.sessions.get(jobId);
    if (!job) return;
    this.sessions.select(jobId);
    byId('detail-empty').hidden = true;
    byId('detail').hidden = false;
    this.detail.show(job);
  }

  toast(message) {
    const toast = byId('toast');
    toast.textContent = message;
    toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => {
      toast.hidden = true;
    }, 6000);
  }
}

/** Who the token says the user is (display only: the engine checks the token itself). */
function describeUser(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(payload));
    const who = claims.email || claims.userId || 'signed in';
    return claims.role === 'admin' ? `${who} (admin)` : who;
  } catch {
    return 'signed in';
  }
}

new Dashboard().start();
