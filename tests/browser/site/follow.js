// A stand-in for a Vue front end on another origin: the BI Engine client, loaded from
// /client/, submits a smoke test to the engine named in ?engine= and follows it live.
// The test reads the outcome from `window.outcome` and the page.
import { createClient } from '../client/bi-engine-client.js';

const params = new URLSearchParams(window.location.search);
const state = document.getElementById('state');
const list = document.getElementById('events');

function show(event) {
  const item = document.createElement('li');
  item.dataset.seq = String(event.seq);
  item.textContent = `${event.seq} ${event.kind} ${JSON.stringify(event.data)}`;
  list.append(item);
}

async function run() {
  const client = createClient({ baseUrl: params.get('engine'), token: params.get('token') });
  const outcome = { transport: client.transport, events: [], resumed: [] };
  window.outcome = outcome;
  const job = await client.submit({
    type: 'test',
    data: { sleep_s: Number(params.get('sleep') || 1) },
  });
  outcome.jobId = job.job_id;
  state.textContent = 'following';
  const end = await client.follow(job, {
    onEvent: (event) => {
      outcome.events.push(event);
      show(event);
    },
  }).done;
  outcome.terminal = end.kind;
  // Resume after the second event with the job's stream token: the rest, nothing before.
  const again = await client.follow(job, {
    lastEventId: 2,
    onEvent: (event) => outcome.resumed.push(event.seq),
  }).done;
  outcome.resumedTerminal = again.kind;
  outcome.result = await client.result(job.job_id);
  outcome.listed = (await client.listJobs({ limit: 5 })).jobs.map((j) => j.job_id);
  state.textContent = 'done';
}

run().catch((error) => {
  window.outcome = {
    ...(window.outcome ?? {}),
    error: `${error.name}: ${error.message}`,
    status: error.status,
  };
  document.getElementById('error').textContent = String(error);
  state.textContent = 'failed';
});
