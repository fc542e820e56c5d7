/**
 * One Analysis Session: its live timeline of AI Team steps (GET /jobs/{id}/events, replayed
 * from the start), cancel and retry, and once the report is ready the KPIs, findings,
 * recommendations and the report itself.
 */

import { API } from './api.js';
import { byId, clear, h, progressBar, setProgress } from './dom.js';
import { LiveStream, TERMINAL } from './live.js';
import {
  SEVERITY_WORDS,
  duration,
  kpiValue,
  shortId,
  statusWord,
  typeLabel,
  when,
} from './format.js';
import { renderMarkdown } from './markdown.js';

const ACTIVE = new Set(['queued', 'running']);

export class JobDetail {
  /**
   * @param {HTMLElement} root the detail panel
   * @param {{api: import('./api.js').Api, onChange: (job: object) => void,
   *          onError: (message: string) => void}} deps
   */
  constructor(root, { api, onChange, onError }) {
    this.root = root;
    this.api = api;
    this.onChange = onChange;
    this.onError = onError;
    this.job = null;
    this.stream = null;
    this.lastSeq = 0;
  }

  /** Show `job` (a job document) and follow it live. */
  async show(job) {
    this.close();
    this.job = { ...job };
    this.lastSeq = 0;
    this.build();
    this.paint();
    this.follow();
    try {
      const fresh = await this.api.job(job.job_id);
      if (this.job?.job_id !== job.job_id) return;
      if (this.lastSeq > 0) {
        // The stream has spoken already and is at least as recent: keep its live fields.
        for (const field of ['status', 'progress', 'current_step']) delete fresh[field];
      }
      this.update(fresh);
    } catch (error) {
      this.onError(error.message);
    }
  }

  close() {
    this.stream?.close();
    this.stream = null;
  }

  /** Replay the job's log after the last event shown, then live until its terminal event. */
  follow() {
    const jobId = this.job.job_id;
    const path = `${API}/jobs/${encodeURIComponent(jobId)}/events`;
    this.stream?.close();
    this.stream = new LiveStream(
      () => this.api.streamUrl(path, { last_event_id: this.lastSeq || null }),
      {
        onEvent: (event) => this.receive(jobId, event),
        onState: (state) => this.root.classList.toggle('stream-down', state === 'refused'),
      },
    );
  }

  receive(jobId, { kind, data, id }) {
    const seq = Number(id);
    if (!this.job || this.job.job_id !== jobId || !(seq > this.lastSeq)) return;
    this.lastSeq = seq;
    this.timeline.append(timelineItem(seq, kind, data));
    this.timeline.lastElementChild.scrollIntoView({ block: 'nearest' });
    if (kind === 'progress') {
      this.update({ status: 'running', progress: data.progress, current_step: data.step });
    } else if (kind === 'status') {
      const status = data.status === 'retrying' ? 'queued' : data.status;
      this.update(data.retry ? { status, progress: 0, error: null } : { status });
    } else if (TERMINAL.has(kind)) {
      this.close();
      this.update({
        status: kind,
        progress: kind === 'completed' ? 100 : this.job.progress,
        error: data.error ?? null,
        message: data.message ?? null,
      });
      if (kind === 'completed') this.loadResult();
    }
  }

  /** Apply a change; `tell` the list only of what its own feed cannot know (our actions). */
  update(change, { tell = false } = {}) {
    Object.assign(this.job, change);
    this.paint();
    if (tell) this.onChange({ job_id: this.job.job_id, ...change });
  }

  build() {
    const job = this.job;
    this.progress = progressBar(job.progress ?? 0, 'Progress of this Analysis Session');
    this.timeline = h('ol', { class: 'timeline', id: 'timeline' });
    this.cancelButton = h('button', {
      type: 'button',
      id: 'cancel-job',
      class: 'danger',
      text: 'Cancel analysis',
      on: { click: () => this.act('cancel') },
    });
    this.retryButton = h('button', {
      type: 'button',
      id: 'retry-job',
      text: 'Run again',
      on: { click: () => this.act('retry') },
    });
    this.result = h('div', { id: 'result', class: 'result', hidden: true });
    clear(this.root).append(
      h(
        'header',
        { class: 'detail-head' },
        h(
          'div',
          {},
          h('h2', { id: 'detail-title' }),
          h('p', { class: 'muted', id: 'detail-meta' }),
        ),
        h('span', { class: 'badge', id: 'detail-status' }),
      ),
      h(
        'div',
        { class: 'detail-progress' },
        this.progress,
        h('p', { id: 'detail-step', class: 'muted' }),
      ),
      h('div', { class: 'actions' }, this.cancelButton, this.retryButton),
      h('p', { id: 'detail-notice', class: 'notice', hidden: true }),
      h(
        'section',
        { class: 'team' },
        h('h3', { text: 'Your AI Team' }),
        h('p', {
          class: 'muted',
          text: 'Each Processing Task of the Analysis Team, as it happens.',
        }),
        this.timeline,
      ),
      this.result,
    );
  }

  paint() {
    const job = this.job;
    byId('detail-title').textContent = typeLabel(job.type);
    byId('detail-meta').textContent = [
      `Session ${shortId(job.job_id)}`,
      job.priority ? `${job.priority} priority` : '',
      job.created_at ? `submitted ${when(job.created_at)}` : '',
      job.attempts > 1 ? `attempt ${job.attempts}` : '',
      duration(job.started_at, job.finished_at),
    ]
      .filter(Boolean)
      .join(' · ');
    const badge = byId('detail-status');
    badge.textContent = statusWord(job.status);
    badge.className = `badge status-${job.status}`;
    this.root.dataset.status = job.status;
    setProgress(this.progress, job.progress ?? 0);
    byId('detail-step').textContent = job.current_step ?? '';
    this.cancelButton.disabled = !ACTIVE.has(job.status) || Boolean(job.abort_requested);
    this.retryButton.disabled = !['failed', 'cancelled'].includes(job.status);
    this.paintNotice();
  }

  paintNotice() {
    const { status, error, message, abort_requested: aborting } = this.job;
    const notice = byId('detail-notice');
    let text = '';
    if (status === 'failed') text = `The analysis failed: ${error?.message ?? 'no reason given'}`;
    else if (status === 'cancelled') text = message || 'The analysis was cancelled.';
    else if (aborting) text = 'Cancelling: Your AI Team stops at the next step.';
    notice.textContent = text;
    notice.hidden = !text;
  }

  async act(action) {
    const jobId = this.job.job_id;
    const button = action === 'cancel' ? this.cancelButton : this.retryButton;
    button.disabled = true;
    try {
      const document = await this.api[action](jobId);
      if (this.job?.job_id !== jobId) return;
      if (action === 'retry') {
        this.result.hidden = true;
        clear(this.result);
        this.update(
          { ...document, progress: 0, error: null, message: null, abort_requested: false },
          { tell: true },
        );
        this.follow();
      } else if (!TERMINAL.has(this.job.status)) {
        this.update(document); // unless the stream has already told us it ended
      }
    } catch (error) {
      this.onError(error.message);
      this.paint();
    }
  }

  async loadResult() {
    const jobId = this.job.job_id;
    try {
      const result = await this.api.result(jobId);
      if (this.job?.job_id === jobId) renderResult(this.result, result);
    } catch (error) {
      this.onError(error.message);
    }
  }
}

function timelineItem(seq, kind, data) {
  const who = data.agent || 'Your AI Team';
  const [title, text] = describe(kind, data, who);
  return h(
    'li',
    { class: `event event-${kind}`, dataset: { seq: String(seq), kind } },
    h('span', { class: 'event-dot', attrs: { 'aria-hidden': 'true' } }),
    h(
      'div',
      { class: 'event-body' },
      h(
        'p',
        { class: 'event-title' },
        h('strong', { text: title }),
        kind === 'progress'
          ? h('span', { class: 'muted', text: ` · ${data.progress ?? 0}%` })
          : null,
      ),
      text ? h('p', { class: 'event-text', text }) : null,
    ),
  );
}

function describe(kind, data, who) {
  if (kind === 'progress') return [`${who}: ${data.step ?? 'working'}`, data.message ?? ''];
  if (kind === 'completed') return ['Report ready', data.headline ?? ''];
  if (kind === 'failed') return ['The analysis failed', data.error?.message ?? ''];
  if (kind === 'cancelled') return ['Cancelled', data.message ?? ''];
  if (data.status === 'running')
    return ['Your AI Team started', data.attempt > 1 ? `Attempt ${data.attempt}` : ''];
  if (data.status === 'retrying') {
    return ['Trying again shortly', `Attempt ${data.attempt ?? ''} stopped: ${data.reason ?? ''}`];
  }
  if (data.status === 'queued')
    return [data.retry ? 'Queued again' : 'Waiting for Your AI Team', ''];
  return [statusWord(data.status ?? kind), ''];
}

/** The result document: summary, KPIs, findings, recommendations and the report. */
export function renderResult(root, result) {
  const data = result.data ?? {};
  const analysis = data.analysis ?? {};
  const summary = analysis.summary ?? {};
  const team = (data.team ?? []).map((member) => member.display).filter(Boolean);
  clear(root).append(
    h(
      'section',
      { class: 'summary' },
      h('h3', { id: 'result-headline', text: summary.headline ?? 'Report ready' }),
      summary.executive_summary ? h('p', { text: summary.executive_summary }) : null,
      team.length
        ? h('p', { class: 'muted', text: `Prepared by Your AI Team: ${team.join(', ')}.` })
        : null,
    ),
    kpiSection(analysis.kpis ?? []),
    findingSection(analysis.findings ?? []),
    recommendationSection(analysis.recommendations ?? []),
    reportSection(data.report_markdown ?? '', result.job_id),
  );
  root.hidden = false;
}

function kpiSection(kpis) {
  if (!kpis.length) return null;
  return h(
    'section',
    {},
    h('h3', { text: 'Key figures' }),
    h(
      'ul',
      { class: 'kpis', id: 'kpis' },
      kpis.map((kpi) =>
        h(
          'li',
          { class: 'kpi', attrs: { title: kpi.formula ?? '' } },
          h('span', { class: 'kpi-value', text: kpiValue(kpi) }),
          h('span', { class: 'kpi-label', text: kpi.label || kpi.name }),
        ),
      ),
    ),
  );
}

function findingSection(findings) {
  if (!findings.length) return null;
  return h(
    'section',
    {},
    h('h3', { text: 'Findings' }),
    h(
      'ul',
      { class: 'findings', id: 'findings' },
      findings.map((finding) =>
        h(
          'li',
          { class: 'finding' },
          h('span', {
            class: `badge severity-${finding.severity}`,
            text: SEVERITY_WORDS[finding.severity] ?? finding.severity,
          }),
          h(
            'div',
            {},
            h('strong', { text: finding.title }),
            h('p', { text: finding.detail ?? '' }),
          ),
        ),
      ),
    ),
  );
}

function recommendationSection(recommendations) {
  if (!recommendations.length) return null;
  const ordered = [...recommendations].sort((a, b) => (a.priority ?? 99) - (b.priority ?? 99));
  return h(
    'section',
    {},
    h('h3', { text: 'Recommendations' }),
    h(
      'ol',
      { class: 'recommendations', id: 'recommendations' },
      ordered.map((item) =>
        h(
          'li',
          {},
          h('strong', { text: item.title }),
          h('p', { text: item.detail ?? '' }),
          h(
            'p',
            { class: 'muted' },
            item.impact ? `Expected impact: ${item.impact}. ` : '',
            item.effort ? `Effort: ${item.effort}.` : '',
          ),
        ),
      ),
    ),
  );
}

function reportSection(markdown, jobId) {
  if (!markdown) return null;
  const download = h('button', {
    type: 'button',
    class: 'secondary',
    text: 'Download report (.md)',
    on: {
      click: () => {
        const url = URL.createObjectURL(new Blob([markdown], { type: 'text/markdown' }));
        const link = h('a', { href: url, download: `report-${shortId(jobId)}.md` });
        link.click();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      },
    },
  });
  return h(
    'section',
    {},
    h('div', { class: 'section-head' }, h('h3', { text: 'Report' }), download),
    h('article', { class: 'report', id: 'report' }, renderMarkdown(markdown)),
  );
}
