/**
 * "Start an analysis": a bundled sample (GET /dashboard/samples), a smoke test of a chosen
 * length, or a request body pasted as JSON; then POST /analyze.
 */

import { byId, clear, h } from './dom.js';
import { typeLabel } from './format.js';

const SMOKE_TEST = '__test__';
const PASTED = '__json__';

export class SubmitForm {
  /**
   * @param {HTMLFormElement} form
   * @param {{api: import('./api.js').Api, onSubmitted: (job: object) => void}} deps
   */
  constructor(form, { api, onSubmitted }) {
    this.form = form;
    this.api = api;
    this.onSubmitted = onSubmitted;
    this.samples = [];
    this.choice = byId('submit-choice');
    this.choice.addEventListener('change', () => this.toggle());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
  }

  async load() {
    try {
      this.samples = (await this.api.samples()).samples ?? [];
    } catch {
      this.samples = [];
    }
    const options = this.samples.map((sample) =>
      h('option', {
        value: sample.name,
        text: `${typeLabel(sample.type)} · sample "${sample.name.replace(/_/g, ' ')}" (${kib(sample.bytes)})`,
      }),
    );
    clear(this.choice).append(
      h('optgroup', { label: 'Bundled samples' }, options),
      h(
        'optgroup',
        { label: 'Other' },
        h('option', {
          value: SMOKE_TEST,
          text: 'Smoke Test · runs the pipeline, analyses nothing',
        }),
        h('option', { value: PASTED, text: 'Your own request (paste JSON)' }),
      ),
    );
    this.toggle();
  }

  toggle() {
    byId('submit-sleep-row').hidden = this.choice.value !== SMOKE_TEST;
    byId('submit-json-row').hidden = this.choice.value !== PASTED;
  }

  async body() {
    const choice = this.choice.value;
    let body;
    if (choice === SMOKE_TEST) {
      body = { type: 'test', data: { sleep_s: Number(byId('submit-sleep').value) || 0 } };
    } else if (choice === PASTED) {
      try {
        body = JSON.parse(byId('submit-json').value);
      } catch (error) {
        throw new Error(`The request is not valid JSON: ${error.message}`);
      }
    } else {
      const sample = this.samples.find((s) => s.name === choice);
      body = await this.api.sample(sample.url);
    }
    const context = byId('submit-context').value.trim();
    return {
      ...body,
      priority: byId('submit-priority').value,
      ...(context ? { context } : {}),
    };
  }

  async send() {
    const button = byId('submit-button');
    const status = byId('submit-status');
    button.disabled = true;
    status.textContent = 'Sending…';
    try {
      const job = await this.api.submit(await this.body());
      status.textContent = `Session ${String(job.job_id).slice(0, 8)} is queued.`;
      this.onSubmitted(job);
    } catch (error) {
      status.textContent = error.details
        ? `${error.message} ${details(error.details)}`
        : error.message;
    } finally {
      button.disabled = false;
    }
  }
}

function kib(bytes) {
  return bytes >= 1024 ? `${Math.round(bytes / 1024)} KiB` : `${bytes} bytes`;
}

function details(value) {
  if (!Array.isArray(value)) return '';
  return value
    .slice(0, 3)
    .map((problem) => `${(problem.loc ?? []).join('.')}: ${problem.msg}`)
    .join('; ');
}
