/** How the page words and formats things (CONTRACT section 9: business words). */

export const STATUS_WORDS = {
  queued: 'Waiting',
  running: 'In progress',
  completed: 'Report ready',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

export const SEVERITY_WORDS = {
  critical: 'Critical',
  high: 'High',
  medium: 'Medium',
  low: 'Low',
  info: 'Info',
};

const labels = new Map();

/** Remember the analysis types' labels from GET /types. */
export function learnTypes(types) {
  for (const entry of types?.types ?? []) labels.set(entry.type, entry.label);
}

export function typeLabel(type) {
  return labels.get(type) ?? String(type ?? '').replace(/_/g, ' ');
}

export function statusWord(status) {
  return STATUS_WORDS[status] ?? status;
}

export function shortId(jobId) {
  return String(jobId).slice(0, 8);
}

export function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function duration(startIso, endIso) {
  if (!startIso || !endIso) return '';
  const seconds = Math.max(0, (new Date(endIso) - new Date(startIso)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}

const PERCENT_UNITS = new Set(['%', 'pct', 'percent']);
const RATIO_UNITS = new Set(['ratio', 'share', 'fraction']);

/** A computed number as the report prints it: thousands separators, no float noise. */
export function number(value) {
  if (value === null || value === undefined) return 'n/a';
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  if (Math.abs(value) >= 1000) return value.toLocaleString('en-US', { maximumFractionDigits: 20 });
  return String(value);
}

/** A KPI's value with its unit, worded like the report: `12.82 hours`, `74.5%`, `774.7`. */
export function kpiValue(kpi) {
  const { value, name = '' } = kpi;
  if (value === null || value === undefined) return 'not available';
  const unit = String(kpi.unit ?? '').trim();
  const ratio = RATIO_UNITS.has(unit) || /_(rate|share)$/.test(name) || name.includes('share');
  if (ratio && typeof value === 'number') {
    return Math.abs(value) <= 1 ? `${number(Math.round(value * 1000) / 10)}%` : number(value);
  }
  if (PERCENT_UNITS.has(unit) || name.endsWith('_pct')) return `${number(value)}%`;
  if (unit === '' || unit === 'currency') return number(value);
  return `${number(value)} ${unit}`;
}
