/** The engine's REST API for the page: JSON in, JSON out, errors as ApiError. */

export const API = '/api/business-intelligence';

export class ApiError extends Error {
  constructor(message, status, code, details = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class Api {
  /** @param {() => string|null} token the signed-in user's JWT */
  constructor(token) {
    this.token = token;
  }

  async request(method, path, { body, accept = 'application/json' } = {}) {
    const headers = { Accept: accept };
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, { method, headers, body, cache: 'no-store' });
    } catch (error) {
      throw new ApiError(`The engine cannot be reached (${error.message}).`, 0, 'network_error');
    }
    if (!response.ok) throw await apiError(response);
    const type = response.headers.get('content-type') || '';
    return type.includes('json') ? response.json() : response.text();
  }

  types() {
    return this.request('GET', `${API}/types`);
  }

  jobs(limit = 50) {
    return this.request('GET', `${API}/jobs?limit=${limit}`);
  }

  job(jobId) {
    return this.request('GET', `${API}/jobs/${encodeURIComponent(jobId)}`);
  }

  result(jobId) {
    return this.request('GET', `${API}/jobs/${encodeURIComponent(jobId)}/result`);
  }

  cancel(jobId) {
    return this.request('POST', `${API}/jobs/${encodeURIComponent(jobId)}/cancel`);
  }

  retry(jobId) {
    return this.request('POST', `${API}/jobs/${encodeURIComponent(jobId)}/retry`);
  }

  submit(analysis) {
    return this.request('POST', `${API}/analyze`, { body: JSON.stringify(analysis) });
  }

  samples() {
    return this.request('GET', 'samples');
  }

  sample(url) {
    return this.request('GET', url);
  }

  /** A stream URL with the JWT in `?token=` (EventSource cannot send headers). */
  streamUrl(path, params = {}) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== '') url.searchParams.set(name, value);
    }
    url.searchParams.set('token', this.token() ?? '');
    return url.toString();
  }
}

async function apiError(response) {
  let error = {};
  try {
    error = (await response.json()).error ?? {};
  } catch {
    error = {};
  }
  const message = error.message || `The engine answered ${response.status}.`;
  return new ApiError(
    message,
    response.status,
    error.code || `http_${response.status}`,
    error.details,
  );
}
