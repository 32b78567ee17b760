// REST helpers and the error type shared by hub.js and its transports.

/** Failures worth retrying after a reconnect; anything else is the hub's final answer. */
export const RETRYABLE = new Set(['unavailable', 'internal', 'rate_limited', 'network', 'timeout']);

/** An error answered by the hub (`code` is the stable protocol code) or by the network. */
export class HubError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'HubError';
    this.code = code;
    Object.assign(this, extra);
  }
}

/** Sessions and items over HTTP (`/v1/sessions...`); HubClient extends it. */
export class HubRest {
  constructor(base, headers = {}, token = null) {
    this.base = base.replace(/\/+$/, '');
    this.headers = headers;
    this.token = token; // a bearer token (JWT) when the hub has authentication on
  }

  /** Replaces the bearer token (for example after a refresh); new requests use it. */
  setToken(token) {
    this.token = token;
  }

  /** The configured headers, plus `Authorization` when a token is set. */
  authHeaders() {
    return this.token ? { ...this.headers, Authorization: `Bearer ${this.token}` } : { ...this.headers };
  }

  /** JSON in, JSON out; a non-2xx answer becomes a HubError with the hub's code. */
  async http(method, path, body) {
    let res;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          ...this.authHeaders(),
          ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new HubError('network', `cannot reach the hub (${err.message})`);
    }
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!res.ok) {
      const e = json?.error || {};
      const code = e.code || (res.status >= 500 ? 'unavailable' : 'bad_request');
      throw new HubError(code, e.message || `${method} ${path}: HTTP ${res.status}`, { status: res.status });
    }
    return json;
  }

  createSession(fields = {}) {
    return this.http('POST', '/v1/sessions', fields);
  }

  listSessions({ limit, before } = {}) {
    return this.http('GET', `/v1/sessions${query({ limit, before })}`);
  }

  getSession(id) {
    return this.http('GET', `/v1/sessions/${encodeURIComponent(id)}`);
  }

  renameSession(id, title) {
    return this.http('PATCH', `/v1/sessions/${encodeURIComponent(id)}`, { title });
  }

  deleteSession(id) {
    return this.http('DELETE', `/v1/sessions/${encodeURIComponent(id)}`);
  }

  /** The model ids a message may pick, and the default (`GET /v1/models`). */
  listModels() {
    return this.http('GET', '/v1/models');
  }

  listItems(id, { limit, before, after } = {}) {
    return this.http('GET', `/v1/sessions/${encodeURIComponent(id)}/items${query({ limit, before, after })}`);
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
