// sessionhub browser client: one dependency-free ES module to copy into an app.
//
// It keeps one logical connection to the hub over a WebSocket (`/v1/ws`) or, when WebSockets
// are blocked or switched off, over the native SSE fallback (`/v1/sessions/{id}/events` plus
// POSTs). Either way it resumes every subscribed session from the last (epoch, seq) it saw,
// retries unacknowledged sends with the same `client_msg_id` (the hub deduplicates them), and
// reconnects with exponential backoff and jitter. See README.md for a usage example.

import { openSseStream } from './hub-sse.js';

export { SessionView } from './hub-view.js';

/** Direct replies: never sequenced, never deduplicated by seq. */
const DIRECT = new Set(['subscribed', 'unsubscribed', 'ack', 'error', 'pong', 'snapshot']);

/** Codes after which retrying the same request cannot succeed. */
const RETRYABLE = new Set(['unavailable', 'internal', 'rate_limited', 'network']);

/** An error answered by the hub (`code` is the stable protocol code) or by the network. */
export class HubError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'HubError';
    this.code = code;
    Object.assign(this, extra);
  }
}

/** A fresh id for `send`; the hub treats a repeat of it as the same message. */
export function newClientMsgId() {
  if (globalThis.crypto?.randomUUID) return `c-${crypto.randomUUID()}`;
  return `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Exponential backoff with jitter: a random wait between half and all of the current step. */
export function backoffDelay(attempt, initialMs, maxMs) {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

const DEFAULTS = {
  url: globalThis.location ? globalThis.location.origin : 'http://127.0.0.1:8080',
  transport: 'auto', // 'auto' (WebSocket, SSE when it is blocked) | 'ws' | 'sse'
  heartbeatMs: 15000, // ping interval on the WebSocket
  heartbeatTimeoutMs: 10000, // a ping unanswered this long (checked at the next tick) means a dead link
  sseIdleMs: 45000, // the hub sends SSE keep-alive comments well within this
  connectTimeoutMs: 6000,
  cancelTimeoutMs: 10000,
  backoffInitialMs: 300,
  backoffMaxMs: 8000,
  headers: {}, // extra HTTP headers for REST and SSE (for example Authorization)
};

export class HubClient {
  constructor(options = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.base = this.opts.url.replace(/\/+$/, '');
    this.listeners = new Map();
    /** session id -> { since: {epoch, seq} | null, live: bool, stream?: sse handle } */
    this.subs = new Map();
    /** client_msg_id -> { session, text, onBusy, resolve, reject, inFlight } */
    this.pendingSends = new Map();
    /** ref -> { resolve, reject, timer } for WebSocket requests */
    this.pendingRefs = new Map();
    this.nextRef = 1;
    this.state = 'idle';
    this.transport = null;
    this.fallback = false;
    this.attempt = 0;
    this.wsEverOpened = false;
    this.closed = false;
    this.ws = null;
    this.timers = new Set();
    this.onOnline = () => this.reconnectNow();
    globalThis.addEventListener?.('online', this.onOnline);
  }

  // ---- events -------------------------------------------------------------------------------

  /** Listen to 'state', 'event', 'snapshot', 'subscribed', 'ack', 'error'. Returns an unsubscribe. */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type)?.delete(fn);
  }

  emit(type, detail) {
    for (const fn of this.listeners.get(type) || []) {
      try {
        fn(detail);
      } catch (err) {
        // A broken listener must not break the connection; report it where a developer looks.
        setTimeout(() => {
          throw err;
        });
      }
    }
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit('state', { state, transport: this.transport, fallback: this.fallback, ...extra });
  }

  // ---- connection ---------------------------------------------------------------------------

  /** Opens the connection (idempotent). Subscriptions and sends may be made before it opens. */
  connect() {
    this.closed = false;
    if (this.state === 'connecting' || this.state === 'connected') return;
    const wanted = this.opts.transport;
    const wsUsable = typeof globalThis.WebSocket === 'function';
    if (wanted === 'sse' || (wanted === 'auto' && (!wsUsable || this.fallback))) {
      this.fallback = wanted !== 'sse';
      this.openSse();
    } else {
      this.openWs();
    }
  }

  /** Closes everything; pending sends are rejected. */
  close() {
    this.closed = true;
    globalThis.removeEventListener?.('online', this.onOnline);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.teardown();
    for (const p of this.pendingSends.values()) p.reject(new HubError('closed', 'client closed'));
    this.pendingSends.clear();
    this.setState('closed');
  }

  later(ms, fn) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  teardown() {
    clearInterval(this.heartbeat);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState <= 1) ws.close(1000);
    }
    for (const sub of this.subs.values()) {
      sub.stream?.abort();
      sub.stream = null;
      sub.live = false;
    }
    for (const [ref, p] of this.pendingRefs) {
      clearTimeout(p.timer);
      p.reject(new HubError('unavailable', 'connection lost'));
      this.pendingRefs.delete(ref);
    }
    for (const p of this.pendingSends.values()) p.inFlight = false;
  }

  scheduleReconnect(reason) {
    if (this.closed) return;
    this.teardown();
    const delay = backoffDelay(this.attempt++, this.opts.backoffInitialMs, this.opts.backoffMaxMs);
    this.setState('reconnecting', { reason, retryInMs: delay, attempt: this.attempt });
    clearTimeout(this.retryTimer);
    this.retryTimer = this.later(delay, () => {
      this.state = 'idle';
      this.connect();
    });
  }

  /** Skip the backoff wait (the browser came back online, or the user asked). */
  reconnectNow() {
    if (this.state !== 'reconnecting' || this.closed) return;
    clearTimeout(this.retryTimer);
    this.state = 'idle';
    this.connect();
  }

  /** Switches transport ('auto' | 'ws' | 'sse'); subscriptions and pending sends carry over. */
  setTransport(transport) {
    this.opts.transport = transport;
    this.fallback = false;
    this.teardown();
    this.attempt = 0;
    this.state = 'idle';
    if (!this.closed) this.connect();
  }

  // ---- WebSocket ----------------------------------------------------------------------------

  openWs() {
    this.transport = 'ws';
    this.setState(this.attempt ? 'reconnecting' : 'connecting', { attempt: this.attempt });
    const url = `${this.base.replace(/^http/, 'ws')}/v1/ws`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      this.wsFailed(`websocket refused: ${err.message}`);
      return;
    }
    this.ws = ws;
    let opened = false;
    const openTimer = this.later(this.opts.connectTimeoutMs, () => {
      if (!opened && this.ws === ws) this.wsFailed('websocket open timed out');
    });
    ws.onopen = () => {
      clearTimeout(openTimer);
      opened = true;
      this.wsEverOpened = true;
      this.attempt = 0;
      this.lastHeard = Date.now();
      this.setState('connected');
      this.startHeartbeat();
      for (const session of this.subs.keys()) this.wsSubscribe(session);
    };
    ws.onmessage = (msg) => {
      this.lastHeard = Date.now();
      let frame;
      try {
        frame = JSON.parse(msg.data);
      } catch {
        return; // the hub only sends JSON; ignore anything else rather than crash
      }
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      clearTimeout(openTimer);
      if (this.ws !== ws) return;
      if (!opened) this.wsFailed(`websocket closed before open (${ev.code})`);
      else this.scheduleReconnect(`closed ${ev.code}${ev.reason ? `: ${ev.reason}` : ''}`);
    };
    ws.onerror = () => {}; // onclose always follows and carries the details
  }

  /** The WebSocket never opened: in 'auto' mode, fall back to SSE if plain HTTP works. */
  async wsFailed(reason) {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState <= 1) ws.close();
    }
    if (this.opts.transport === 'auto' && !this.wsEverOpened && !this.closed) {
      const httpWorks = await this.http('GET', '/healthz').then(
        () => true,
        () => false,
      );
      if (httpWorks && !this.closed) {
        this.fallback = true;
        this.attempt = 0;
        this.openSse();
        return;
      }
    }
    this.scheduleReconnect(reason);
  }

  /**
   * Pings on an interval and declares the link dead when a ping goes unanswered (no frame at
   * all) for heartbeatTimeoutMs. It measures from the ping, not from the last frame, because
   * browsers throttle timers in background tabs to once a minute.
   */
  startHeartbeat() {
    clearInterval(this.heartbeat);
    this.pingSentAt = 0;
    this.heartbeat = setInterval(() => {
      if (!this.ws || this.ws.readyState !== 1) return;
      const now = Date.now();
      if (this.pingSentAt && this.lastHeard < this.pingSentAt && now - this.pingSentAt > this.opts.heartbeatTimeoutMs) {
        this.scheduleReconnect('heartbeat timed out');
        return;
      }
      if (!this.pingSentAt || this.lastHeard >= this.pingSentAt) {
        this.pingSentAt = now;
        this.wsWrite({ type: 'ping' });
      }
    }, this.opts.heartbeatMs);
  }

  wsWrite(frame) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends a frame with a fresh ref; resolves with the direct reply, rejects on `error`. */
  wsRequest(frame, timeoutMs = 0) {
    return new Promise((resolve, reject) => {
      const ref = this.nextRef++;
      if (!this.wsWrite({ ...frame, ref })) {
        reject(new HubError('unavailable', 'not connected'));
        return;
      }
      const timer = timeoutMs
        ? this.later(timeoutMs, () => {
            this.pendingRefs.delete(ref);
            reject(new HubError('timeout', `no reply to ${frame.type}`));
          })
        : null;
      this.pendingRefs.set(ref, { resolve, reject, timer, frame });
    });
  }

  wsSubscribe(session) {
    const sub = this.subs.get(session);
    if (!sub) return;
    const frame = { type: 'subscribe', session };
    if (sub.since) frame.since = sub.since;
    this.wsRequest(frame).catch((err) => this.subscribeFailed(session, err));
  }

  // ---- SSE fallback -------------------------------------------------------------------------

  openSse() {
    this.transport = 'sse';
    if (this.subs.size === 0) {
      // Nothing to stream yet: report connected once the hub answers plain HTTP.
      this.setState(this.attempt ? 'reconnecting' : 'connecting', { attempt: this.attempt });
      this.http('GET', '/healthz').then(
        () => {
          if (this.transport !== 'sse' || this.closed) return;
          this.attempt = 0;
          this.setState('connected');
          this.flushSends();
        },
        (err) => this.scheduleReconnect(err.message),
      );
      return;
    }
    this.setState(this.attempt ? 'reconnecting' : 'connecting', { attempt: this.attempt });
    for (const session of this.subs.keys()) this.sseSubscribe(session);
  }

  sseSubscribe(session) {
    const sub = this.subs.get(session);
    if (!sub || sub.stream) return;
    const headers = { ...this.opts.headers };
    // The standard resume header; the hub also accepts ?since= for clients that cannot set it.
    if (sub.since) headers['Last-Event-ID'] = `${sub.since.epoch}:${sub.since.seq}`;
    sub.stream = openSseStream(`${this.base}/v1/sessions/${encodeURIComponent(session)}/events`, {
      headers,
      idleMs: this.opts.sseIdleMs,
      onOpen: (res) => {
        sub.live = true;
        this.emit('subscribed', {
          session,
          resume: res.headers.get('sessionhub-resume') || undefined,
          epoch: res.headers.get('sessionhub-epoch') || undefined,
        });
        if ([...this.subs.values()].every((s) => s.live)) {
          this.attempt = 0;
          this.setState('connected');
        }
        this.flushSends(session);
      },
      onEvent: (type, data) => {
        let frame;
        try {
          frame = JSON.parse(data);
        } catch {
          return;
        }
        if (!frame.type) frame.type = type;
        if (!frame.session) frame.session = session;
        this.onFrame(frame);
      },
      onFail: ({ code, message }) => {
        if (sub.stream === null || this.subs.get(session) !== sub) return;
        sub.stream = null;
        sub.live = false;
        if (!RETRYABLE.has(code)) {
          this.subscribeFailed(session, new HubError(code, message));
          return;
        }
        this.scheduleReconnect(message);
      },
    });
  }

  // ---- frames -------------------------------------------------------------------------------

  onFrame(frame) {
    if (frame.ref !== undefined && this.pendingRefs.has(frame.ref)) {
      const p = this.pendingRefs.get(frame.ref);
      this.pendingRefs.delete(frame.ref);
      clearTimeout(p.timer);
      if (frame.type === 'error') p.reject(new HubError(frame.code, frame.message, { frame }));
      else p.resolve(frame);
    }
    switch (frame.type) {
      case 'pong':
      case 'unsubscribed':
        return;
      case 'subscribed': {
        const sub = this.subs.get(frame.session);
        if (!sub) return;
        sub.live = true;
        this.emit('subscribed', frame);
        this.flushSends(frame.session);
        return;
      }
      case 'snapshot': {
        const sub = this.subs.get(frame.session);
        if (!sub) return;
        sub.since = { epoch: frame.epoch, seq: frame.seq };
        this.emit('snapshot', frame);
        return;
      }
      case 'ack':
        this.onAck(frame);
        return;
      case 'error':
        if (frame.ref === undefined) this.emit('error', new HubError(frame.code, frame.message, { frame }));
        return;
      default:
        if (!DIRECT.has(frame.type) && frame.seq !== undefined) this.onSequenced(frame);
    }
  }

  /** Applies the (epoch, seq) rules: drop what we hold, resubscribe on a gap. */
  onSequenced(ev) {
    const sub = this.subs.get(ev.session);
    // Not live: events of a subscription being replaced; the new one replays them.
    if (!sub || !sub.live) return;
    const pos = sub.since;
    if (!pos || pos.epoch !== ev.epoch) {
      // A live event of an epoch we hold no state for: only a fresh snapshot can be trusted.
      sub.since = null;
      this.resubscribe(ev.session);
      return;
    }
    if (ev.seq <= pos.seq) return; // already applied (replay overlap)
    if (ev.seq !== pos.seq + 1) {
      this.resubscribe(ev.session); // a gap: ask for exactly what is missing
      return;
    }
    sub.since = { epoch: ev.epoch, seq: ev.seq };
    if (ev.type === 'session.deleted') this.subs.delete(ev.session);
    this.emit('event', ev);
    if (ev.type === 'run.cancelled') this.emit('_cancelled', ev);
  }

  resubscribe(session) {
    const sub = this.subs.get(session);
    if (!sub) return;
    sub.live = false;
    if (this.transport === 'ws') {
      this.wsSubscribe(session);
    } else {
      sub.stream?.abort();
      sub.stream = null;
      this.sseSubscribe(session);
    }
  }

  subscribeFailed(session, err) {
    if (err.code === 'unavailable' || err.code === 'timeout') return; // retried on reconnect
    this.subs.delete(session);
    for (const [id, p] of this.pendingSends) {
      if (p.session === session) {
        this.pendingSends.delete(id);
        p.reject(err);
      }
    }
    err.session = session;
    this.emit('error', err);
  }

  // ---- subscriptions ------------------------------------------------------------------------

  /**
   * Follows a session. The first 'snapshot' (or the replayed events) and then every live
   * event arrive through on('snapshot') / on('event'). `since` resumes from a saved position.
   */
  subscribe(session, since = null) {
    if (this.subs.has(session)) return;
    this.subs.set(session, { since, live: false, stream: null });
    if (this.state === 'idle') this.connect();
    else if (this.transport === 'ws' && this.state === 'connected') this.wsSubscribe(session);
    else if (this.transport === 'sse' && this.state !== 'reconnecting') this.sseSubscribe(session);
  }

  unsubscribe(session) {
    const sub = this.subs.get(session);
    if (!sub) return;
    this.subs.delete(session);
    sub.stream?.abort();
    if (this.transport === 'ws') this.wsRequest({ type: 'unsubscribe', session }).catch(() => {});
  }

  /** The last (epoch, seq) applied for a session, to resume from later. */
  position(session) {
    return this.subs.get(session)?.since || null;
  }

  // ---- send and cancel ----------------------------------------------------------------------

  /**
   * Sends a user message. Resolves with the `ack` once the hub has stored it durably. While
   * the connection is down the send waits and is retried, with the same `client_msg_id`,
   * after the session is subscribed again.
   */
  send(session, text, { onBusy, clientMsgId = newClientMsgId() } = {}) {
    this.subscribe(session);
    return new Promise((resolve, reject) => {
      this.pendingSends.set(clientMsgId, {
        session,
        text,
        onBusy,
        resolve,
        reject,
        inFlight: false,
      });
      this.flushSends(session);
    });
  }

  /** Unacknowledged sends, for a UI that shows them as "sending". */
  pending(session) {
    return [...this.pendingSends.entries()]
      .filter(([, p]) => p.session === session)
      .map(([clientMsgId, p]) => ({ clientMsgId, text: p.text }));
  }

  flushSends(session) {
    for (const [id, p] of this.pendingSends) {
      if (p.inFlight || (session && p.session !== session)) continue;
      if (!this.subs.get(p.session)?.live) continue;
      p.inFlight = true;
      this.trySend(id, p);
    }
  }

  async trySend(clientMsgId, p) {
    const body = { client_msg_id: clientMsgId, text: p.text };
    if (p.onBusy) body.on_busy = p.onBusy;
    try {
      let ack;
      if (this.transport === 'ws') {
        ack = await this.wsRequest({ type: 'send', session: p.session, ...body });
      } else {
        ack = await this.http('POST', `/v1/sessions/${encodeURIComponent(p.session)}/messages`, body);
      }
      this.onAck({ ...ack, client_msg_id: clientMsgId });
    } catch (err) {
      if (!this.pendingSends.has(clientMsgId)) return;
      p.inFlight = false;
      if (RETRYABLE.has(err.code) && !this.closed) {
        // Kept: flushSends runs again once the session is subscribed on the next connection.
        if (this.transport === 'sse' && this.state === 'connected') this.scheduleReconnect(err.message);
        return;
      }
      this.pendingSends.delete(clientMsgId);
      p.reject(err);
    }
  }

  onAck(ack) {
    const p = this.pendingSends.get(ack.client_msg_id);
    if (!p) return;
    this.pendingSends.delete(ack.client_msg_id);
    this.emit('ack', ack);
    p.resolve(ack);
  }

  /**
   * Cancels the run `runId` (or the active run). Resolves when the hub has accepted the
   * cancel; every tab then sees `run.cancelled`.
   */
  cancel(session, runId) {
    if (this.state !== 'connected') {
      return Promise.reject(new HubError('unavailable', 'not connected to the hub'));
    }
    if (this.transport === 'sse') {
      const body = runId ? { run_id: runId } : {};
      return this.http('POST', `/v1/sessions/${encodeURIComponent(session)}/cancel`, body).then(() => {});
    }
    // A successful cancel has no direct reply on the WebSocket: the run.cancelled event is it.
    const frame = { type: 'cancel', session };
    if (runId) frame.run_id = runId;
    const ref = this.nextRef;
    return new Promise((resolve, reject) => {
      const off = this.on('_cancelled', (ev) => {
        if (ev.session === session && (!runId || ev.run_id === runId)) {
          off();
          const p = this.pendingRefs.get(ref);
          this.pendingRefs.delete(ref);
          clearTimeout(p?.timer);
          resolve();
        }
      });
      this.wsRequest(frame, this.opts.cancelTimeoutMs).catch((err) => {
        off();
        reject(err);
      });
    });
  }

  // ---- REST ---------------------------------------------------------------------------------

  async http(method, path, body) {
    let res;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          ...this.opts.headers,
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
      throw new HubError(code, e.message || `${method} ${path}: HTTP ${res.status}`, {
        status: res.status,
      });
    }
    return json;
  }

  createSession(fields = {}) {
    return this.http('POST', '/v1/sessions', fields);
  }

  listSessions({ limit, before } = {}) {
    const q = new URLSearchParams();
    if (limit) q.set('limit', limit);
    if (before) q.set('before', before);
    return this.http('GET', `/v1/sessions${q.size ? `?${q}` : ''}`);
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

  listItems(id, { limit, before, after } = {}) {
    const q = new URLSearchParams();
    if (limit) q.set('limit', limit);
    if (before) q.set('before', before);
    if (after) q.set('after', after);
    return this.http('GET', `/v1/sessions/${encodeURIComponent(id)}/items${q.size ? `?${q}` : ''}`);
  }
}
