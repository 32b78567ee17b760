// sessionhub browser client: dependency-free ES modules to copy into an app (this file plus
// hub-ws.js, hub-sse.js, hub-rest.js, hub-view.js and hub-tools.js). See static/README.md.
//
// It keeps one logical connection to the hub over a WebSocket (`/v1/ws`) or, when WebSockets
// are blocked or switched off, over the native SSE fallback (`/v1/sessions/{id}/events` plus
// POSTs). Either way it resumes every subscribed session from the last (epoch, seq) it saw,
// retries unacknowledged sends with the same `client_msg_id` (the hub deduplicates them), and
// reconnects with exponential backoff and jitter. Client tools registered with it are offered
// with every send and run when the hub says a call waits for them (hub-tools.js).

import { HubError, HubRest, RETRYABLE } from './hub-rest.js';
import { openSseStream } from './hub-sse.js';
import { ToolBox } from './hub-tools.js';
import { WsLink } from './hub-ws.js';

export { HubError } from './hub-rest.js';
export { SessionView } from './hub-view.js';

/** Direct replies: never sequenced, never deduplicated by seq. */
const DIRECT = new Set(['subscribed', 'unsubscribed', 'ack', 'error', 'pong', 'snapshot']);

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
  heartbeatTimeoutMs: 10000, // a ping unanswered this long (seen at the next tick) is a dead link
  sseIdleMs: 45000, // the hub sends SSE keep-alive comments well within this
  connectTimeoutMs: 6000,
  cancelTimeoutMs: 10000,
  backoffInitialMs: 300,
  backoffMaxMs: 8000,
  headers: {}, // extra HTTP headers for REST and SSE
  token: null, // bearer token: sent on REST and SSE; the WebSocket gets a single-use ticket
};

export class HubClient extends HubRest {
  constructor(options = {}) {
    const opts = { ...DEFAULTS, ...options };
    super(opts.url, opts.headers, opts.token);
    this.opts = opts;
    this.listeners = new Map();
    /** session id -> { since: {epoch, seq} | null, live: bool, stream: SSE handle | null } */
    this.subs = new Map();
    /** client_msg_id -> { session, text, onBusy, tools, context, resolve, reject, inFlight } */
    this.pendingSends = new Map();
    /** Registered client tools, and tool results and approvals waiting for their ack. */
    this.toolbox = new ToolBox(this);
    this.state = 'idle'; // idle | connecting | connected | reconnecting | closed
    this.transport = null; // 'ws' | 'sse' once a connection is attempted
    this.fallback = false; // true when 'auto' had to use SSE
    this.attempt = 0;
    this.wsEverOpened = false;
    this.closed = false;
    this.link = null; // the WsLink while on the WebSocket
    this.retryTimer = null;
    this.generation = 0; // bumped by every teardown, so late answers can tell they are stale
    this.onOnline = () => this.reconnectNow();
    globalThis.addEventListener?.('online', this.onOnline);
  }

  // ---- events -------------------------------------------------------------------------------

  /** Listen to 'state', 'event', 'snapshot', 'subscribed', 'ack', 'tool', 'error'. Returns an unsubscribe. */
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
    if (this.state !== 'idle' && this.state !== 'closed') return;
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
    this.cancelRetry();
    this.teardown();
    for (const p of this.pendingSends.values()) p.reject(new HubError('closed', 'client closed'));
    this.pendingSends.clear();
    this.toolbox.drop(null, new HubError('closed', 'client closed'));
    this.setState('closed');
  }

  /** Drops the current connection (all SSE streams too) without reporting anything. */
  teardown() {
    this.generation++;
    this.link?.close();
    this.link = null;
    for (const sub of this.subs.values()) {
      sub.stream?.abort();
      sub.stream = null;
      sub.live = false;
    }
    for (const p of this.pendingSends.values()) p.inFlight = false;
    this.toolbox.reset();
  }

  scheduleReconnect(reason) {
    if (this.closed) return;
    this.teardown();
    this.cancelRetry();
    const delay = backoffDelay(this.attempt++, this.opts.backoffInitialMs, this.opts.backoffMaxMs);
    this.setState('reconnecting', { reason, retryInMs: delay, attempt: this.attempt });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.state = 'idle';
      this.connect();
    }, delay);
  }

  cancelRetry() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** Skips the backoff wait (the browser came back online, or the user asked). */
  reconnectNow() {
    // Only while waiting: an attempt already under way must not get a twin.
    if (!this.retryTimer || this.closed) return;
    this.cancelRetry();
    this.state = 'idle';
    this.connect();
  }

  /** Switches transport ('auto' | 'ws' | 'sse'); subscriptions and pending sends carry over. */
  setTransport(transport) {
    this.opts.transport = transport;
    this.fallback = false;
    this.cancelRetry();
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
    if (!this.token) {
      this.openWsLink(url);
      return;
    }
    // Browsers cannot set headers on a WebSocket: trade the token for a single-use ticket.
    const generation = this.generation;
    this.http('POST', '/v1/ws-ticket').then(
      ({ ticket }) => {
        if (generation === this.generation && !this.closed) this.openWsLink(`${url}?ticket=${encodeURIComponent(ticket)}`);
      },
      (err) => {
        if (generation !== this.generation || this.closed) return;
        this.emit('error', err);
        this.scheduleReconnect(`websocket ticket: ${err.message}`);
      },
    );
  }

  openWsLink(url) {
    const link = new WsLink(url, {
      connectTimeoutMs: this.opts.connectTimeoutMs,
      heartbeatMs: this.opts.heartbeatMs,
      heartbeatTimeoutMs: this.opts.heartbeatTimeoutMs,
      onOpen: () => {
        this.wsEverOpened = true;
        this.attempt = 0;
        this.setState('connected');
        for (const session of this.subs.keys()) this.wsSubscribe(session);
      },
      onFrame: (frame) => this.onFrame(frame),
      onDown: (reason, opened) => {
        if (this.link !== link) return;
        this.link = null;
        if (opened) this.scheduleReconnect(reason);
        else this.wsFailed(reason);
      },
    });
    this.link = link;
    link.open();
  }

  /** The WebSocket never opened: in 'auto' mode, fall back to SSE if plain HTTP works. */
  async wsFailed(reason) {
    if (this.opts.transport === 'auto' && !this.wsEverOpened && !this.closed) {
      const httpWorks = await this.http('GET', '/healthz').then(
        () => true,
        () => false,
      );
      if (httpWorks && !this.closed && this.opts.transport === 'auto') {
        this.fallback = true;
        this.attempt = 0;
        this.openSse();
        return;
      }
    }
    this.scheduleReconnect(reason);
  }

  wsSubscribe(session) {
    const sub = this.subs.get(session);
    if (!sub || !this.link) return;
    const frame = { type: 'subscribe', session };
    if (sub.since) frame.since = sub.since;
    this.link.request(frame).catch((err) => this.subscribeFailed(session, err));
  }

  // ---- SSE fallback -------------------------------------------------------------------------

  openSse() {
    this.transport = 'sse';
    this.setState(this.attempt ? 'reconnecting' : 'connecting', { attempt: this.attempt });
    if (this.subs.size > 0) {
      for (const session of this.subs.keys()) this.sseSubscribe(session);
      return;
    }
    // Nothing to stream yet: report connected once the hub answers plain HTTP.
    const generation = this.generation;
    this.http('GET', '/healthz').then(
      () => {
        if (generation !== this.generation || this.closed) return; // torn down meanwhile
        if ([...this.subs.values()].every((s) => s.live)) this.connectedSse();
      },
      (err) => {
        if (generation === this.generation) this.scheduleReconnect(err.message);
      },
    );
  }

  connectedSse() {
    this.attempt = 0;
    this.setState('connected');
  }

  sseSubscribe(session) {
    const sub = this.subs.get(session);
    if (!sub || sub.stream) return;
    const headers = this.authHeaders();
    // The standard resume header; the hub also accepts ?since= for clients that cannot set it.
    if (sub.since) headers['Last-Event-ID'] = `${sub.since.epoch}:${sub.since.seq}`;
    sub.stream = openSseStream(`${this.base}/v1/sessions/${encodeURIComponent(session)}/events`, {
      headers,
      idleMs: this.opts.sseIdleMs,
      onOpen: (res) => {
        sub.live = true;
        // The hub sends the `subscribed` fields as headers so the first event is the snapshot.
        this.emit('subscribed', {
          session,
          resume: res.headers.get('sessionhub-resume') || undefined,
          epoch: res.headers.get('sessionhub-epoch') || undefined,
        });
        if (this.state !== 'connected' && [...this.subs.values()].every((s) => s.live)) this.connectedSse();
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
        if (this.subs.get(session) !== sub || sub.stream === null) return;
        sub.stream = null;
        sub.live = false;
        if (RETRYABLE.has(code)) this.scheduleReconnect(message);
        else this.subscribeFailed(session, new HubError(code, message));
      },
    });
  }

  // ---- frames -------------------------------------------------------------------------------

  onFrame(frame) {
    switch (frame.type) {
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
        this.toolbox.onSnapshot(frame);
        return;
      }
      case 'ack':
        this.onAck(frame);
        return;
      case 'error':
        this.emit('error', new HubError(frame.code, frame.message, { frame, session: frame.session }));
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
    if (ev.type === 'session.deleted') {
      this.subs.delete(ev.session);
      this.toolbox.drop(ev.session, new HubError('not_found', 'the session was deleted'));
    }
    this.emit('event', ev);
    this.toolbox.onEvent(ev);
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
    if (RETRYABLE.has(err.code)) return; // subscribed again on the next connection
    this.subs.get(session)?.stream?.abort();
    this.subs.delete(session);
    for (const [id, p] of this.pendingSends) {
      if (p.session === session) {
        this.pendingSends.delete(id);
        p.reject(err);
      }
    }
    this.toolbox.drop(session, err);
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
    else if (this.transport === 'sse' && !this.retryTimer && this.state !== 'closed') this.sseSubscribe(session);
  }

  unsubscribe(session) {
    const sub = this.subs.get(session);
    if (!sub) return;
    this.subs.delete(session);
    sub.stream?.abort();
    if (this.transport === 'ws' && this.link) this.link.request({ type: 'unsubscribe', session }).catch(() => {});
  }

  /** The last (epoch, seq) applied for a session, to resume from later. */
  position(session) {
    return this.subs.get(session)?.since || null;
  }

  // ---- send and cancel ----------------------------------------------------------------------

  /**
   * Sends a user message. Resolves with the `ack` once the hub has stored it durably. While
   * the connection is down the send waits and is retried, with the same `client_msg_id`,
   * after the session is subscribed again. The registered client tools go with it
   * (`send.tools`), as they are now: a retry offers the same ones. `context` (a JSON object)
   * is given to the model with the message and never shown as text. `model` is one of the
   * ids `listModels()` gives (the hub's default when left out); an unknown one is refused.
   */
  send(session, text, { onBusy, clientMsgId = newClientMsgId(), context, model } = {}) {
    this.subscribe(session);
    const tools = this.toolbox.specs();
    return new Promise((resolve, reject) => {
      this.pendingSends.set(clientMsgId, { session, text, onBusy, tools, context, model, resolve, reject, inFlight: false });
      this.flushSends(session);
    });
  }

  // ---- client tools -------------------------------------------------------------------------

  /**
   * Registers a client tool: offered with every later `send`, and when the hub says one of its
   * calls waits for a client (`tool.called` with status `pending`, or a snapshot's
   * `pending_tool_calls`), `handler(args, call)` runs and its result goes back by itself (a
   * string as is, anything else as JSON; a throw as an error result). Every tab that registered
   * the tool runs it; the hub keeps the first result. Returns a function that unregisters it.
   */
  registerTool(spec, handler) {
    return this.toolbox.register(spec, handler);
  }

  /** Resolves a `pending` client call; resolves with the hub's ack once the result is durable. */
  sendToolResult(session, callId, output, { isError = false } = {}) {
    return this.toolbox.result(session, callId, output, { isError });
  }

  /**
   * Approves or denies an `awaiting_approval` call (`arguments` replaces the model's). An
   * approved call runs at the hub first: the ack comes once its result is durable.
   */
  approveTool(session, callId, approved, { arguments: args } = {}) {
    return this.toolbox.approval(session, callId, approved, { arguments: args });
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
    this.toolbox.flush(session);
  }

  async trySend(clientMsgId, p) {
    const body = { client_msg_id: clientMsgId, text: p.text };
    if (p.onBusy) body.on_busy = p.onBusy;
    if (p.tools) body.tools = p.tools;
    if (p.context) body.context = p.context;
    if (p.model) body.model = p.model;
    try {
      let ack;
      if (this.transport === 'ws') {
        if (!this.link) throw new HubError('unavailable', 'not connected');
        ack = await this.link.request({ type: 'send', session: p.session, ...body });
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
    const link = this.link;
    const frame = { type: 'cancel', session };
    if (runId) frame.run_id = runId;
    const ref = link.newRef();
    return new Promise((resolve, reject) => {
      const off = this.on('_cancelled', (ev) => {
        if (ev.session === session && (!runId || ev.run_id === runId)) {
          off();
          link.forget(ref);
          resolve();
        }
      });
      link.request(frame, { ref, timeoutMs: this.opts.cancelTimeoutMs }).catch((err) => {
        off();
        reject(err);
      });
    });
  }
}
