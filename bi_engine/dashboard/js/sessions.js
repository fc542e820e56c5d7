/** "Analysis Sessions": the user's jobs, newest first, each with a live progress bar. */

import { clear, h, progressBar, setProgress } from './dom.js';
import { shortId, statusWord, typeLabel, when } from './format.js';

export class SessionList {
  /**
   * @param {HTMLElement} root the list element
   * @param {{onSelect: (jobId: string) => void}} handlers
   */
  constructor(root, { onSelect }) {
    this.root = root;
    this.onSelect = onSelect;
    this.jobs = new Map();
    this.rows = new Map();
    this.seqs = new Map();
    this.selected = null;
  }

  /** Replace the list with `jobs` (GET /jobs, newest first). */
  reset(jobs) {
    this.jobs.clear();
    this.rows.clear();
    this.seqs.clear();
    clear(this.root);
    for (const job of jobs) this.upsert(job, { atTop: false });
    this.empty();
  }

  get(jobId) {
    return this.jobs.get(jobId) ?? null;
  }

  /** Add or update one job document; new jobs go to the top. */
  upsert(job, { atTop = true } = {}) {
    const merged = { ...(this.jobs.get(job.job_id) ?? {}), ...job };
    this.jobs.set(job.job_id, merged);
    let row = this.rows.get(job.job_id);
    if (!row) {
      row = this.row(merged);
      this.rows.set(job.job_id, row);
      if (atTop) this.root.prepend(row);
      else this.root.append(row);
      this.empty();
    }
    this.paint(row, merged);
    return merged;
  }

  /** One feed event (`GET /events`) applied to its job; false when the job is unknown. */
  apply({ kind, data }) {
    const job = this.jobs.get(data.job_id);
    if (!job) return false;
    const seq = Number(data.seq);
    if (seq <= (this.seqs.get(data.job_id) ?? 0)) return true; // a resumed feed repeats a little
    this.seqs.set(data.job_id, seq);
    const change = { job_id: data.job_id };
    if (kind === 'progress') {
      Object.assign(change, {
        status: 'running',
        progress: data.progress,
        current_step: data.step,
      });
    } else if (kind === 'status') {
      change.status = data.status === 'retrying' ? 'queued' : data.status;
      if (data.retry) Object.assign(change, { progress: 0, error: null });
    } else {
      change.status = kind;
      if (kind === 'completed') change.progress = 100;
      if (kind === 'failed') change.error = data.error ?? null;
    }
    this.upsert(change);
    return true;
  }

  select(jobId) {
    this.selected = jobId;
    for (const [id, row] of this.rows) row.classList.toggle('selected', id === jobId);
  }

  row(job) {
    const open = () => this.onSelect(job.job_id);
    return h(
      'li',
      { class: 'session', dataset: { jobId: job.job_id } },
      h(
        'button',
        { type: 'button', class: 'session-open', on: { click: open } },
        h(
          'span',
          { class: 'session-head' },
          h('span', { class: 'session-type' }),
          h('span', { class: 'badge' }),
        ),
        progressBar(0, `Progress of session ${shortId(job.job_id)}`),
        h(
          'span',
          { class: 'session-foot' },
          h('span', { class: 'session-step' }),
          h('span', { class: 'session-when' }),
        ),
      ),
    );
  }

  paint(row, job) {
    row.dataset.status = job.status;
    row.querySelector('.session-type').textContent = typeLabel(job.type);
    const badge = row.querySelector('.badge');
    badge.textContent = statusWord(job.status);
    badge.className = `badge status-${job.status}`;
    setProgress(row.querySelector('.progress'), job.progress ?? 0);
    row.querySelector('.session-step').textContent = job.current_step ?? '';
    row.querySelector('.session-when').textContent = when(job.created_at);
    row.classList.toggle('selected', job.job_id === this.selected);
  }

  empty() {
    const placeholder = this.root.querySelector('.placeholder');
    if (this.rows.size === 0 && !placeholder) {
      this.root.append(
        h('li', { class: 'placeholder', text: 'No Analysis Sessions yet: start one above.' }),
      );
    } else if (this.rows.size > 0 && placeholder) {
      placeholder.remove();
    }
  }
}
