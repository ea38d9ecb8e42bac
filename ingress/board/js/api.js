// The HTTP API as the board uses it: bearer token, JSON both ways, the
// error body of domain.md §7, and queued jobs followed to their outcome.

import { uuid } from './dom.js';

const TOKEN_KEY = 'gad.board.token';
const JOB_POLL_MS = 500;
const JOB_FOLLOW_MS = 30000;

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error || 'http_error';
    this.details = body?.details;
  }
}

export class Api {
  constructor() {
    this.token = sessionStorage.getItem(TOKEN_KEY);
    this.onUnauthorized = () => {};
  }

  setToken(token) {
    this.token = token;
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  async login(email, password) {
    const answer = await this.request('POST', '/api/v1/auth/login', {
      body: { username: email, password },
      anonymous: true,
    });
    this.setToken(answer.access_token);
    return answer;
  }

  async refresh() {
    const answer = await this.request('POST', '/api/v1/auth/refresh');
    this.setToken(answer.access_token);
    return answer;
  }

  async logout() {
    try {
      await this.request('POST', '/api/v1/auth/logout');
    } finally {
      this.setToken(null);
    }
  }

  // `wait`: seconds a queued job may take before the answer is a 202, which
  // is then followed by polling the job. `idempotent`: sends a fresh
  // Idempotency-Key, so a retried click cannot run an action twice.
  async request(method, path, { body, wait, idempotent = false, anonymous = false, timeoutMs } = {}) {
    const headers = { Accept: 'application/json' };
    if (!anonymous && this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (wait !== undefined) headers.Prefer = `wait=${wait}`;
    if (idempotent) headers['Idempotency-Key'] = uuid();
    const limit = timeoutMs ?? ((wait ?? 0) + 10) * 1000;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), limit);
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: abort.signal,
      });
    } catch (e) {
      throw new ApiError(0, {
        error: 'network_error',
        message: abort.signal.aborted ? 'el servidor no respondió a tiempo' : 'sin conexión con el servidor',
      });
    } finally {
      clearTimeout(timer);
    }
    const answer = await readBody(response);
    if (response.status === 401 && !anonymous) this.onUnauthorized(answer);
    if (!response.ok) throw new ApiError(response.status, answer);
    if (response.status === 202 && answer?.status_url) return this.follow(answer.status_url);
    return answer;
  }

  // A job that outlived the wait: poll until it ends, then answer as the
  // synchronous request would have.
  async follow(statusUrl) {
    const until = Date.now() + JOB_FOLLOW_MS;
    while (Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
      const job = await this.request('GET', statusUrl);
      // A job's result is what the waiting request would have answered.
      if (job.status === 'succeeded') return job.result?.body ?? null;
      if (['failed', 'dead', 'cancelled'].includes(job.status)) {
        const error = job.error || { error: job.status, message: `el trabajo terminó: ${job.status}` };
        throw new ApiError(error.http_status || 500, error);
      }
    }
    throw new ApiError(0, { error: 'still_running', message: 'el trabajo sigue en curso; revise más tarde' });
  }
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: 'bad_response', message: text.slice(0, 200) };
  }
}
