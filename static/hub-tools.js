// Client tools for hub.js (PROTOCOL 1.1): the tools registered with a HubClient, offered with
// every `send`; their calls run when the hub says they wait for this client, and the results
// (and approvals) go back with retries over reconnects, like sends.

import { HubError, RETRYABLE } from './hub-rest.js';

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * What one HubClient holds for tools. `client` is the HubClient: its transport, its `emit`,
 * and `subs` (a resolution goes out only while its session is subscribed and live).
 */
export class ToolBox {
  constructor(client) {
    this.client = client;
    /** name -> { spec: {name, description?, parameters}, handler } */
    this.registered = new Map();
    /** `${session} ${call_id}` of calls this client ran or is running: never run twice. */
    this.started = new Set();
    /** `${session} ${call_id}` of calls seen resolved (a `tool.result`): results for them are not sent. */
    this.resolved = new Set();
    /** key -> { session, body, approval, resolve, reject, inFlight }: results and approvals not acknowledged yet. */
    this.outbox = new Map();
  }

  register(spec, handler) {
    const name = spec?.name;
    if (typeof name !== 'string' || !TOOL_NAME.test(name)) {
      throw new TypeError('a tool name is 1 to 64 of A-Z, a-z, 0-9, _ and -');
    }
    if (typeof handler !== 'function') throw new TypeError(`the tool ${name} needs a handler function`);
    const clean = { name, parameters: spec.parameters || { type: 'object', properties: {} } };
    if (spec.description) clean.description = spec.description;
    const entry = { spec: clean, handler };
    this.registered.set(name, entry);
    return () => {
      if (this.registered.get(name) === entry) this.registered.delete(name);
    };
  }

  /** The registered tools as `send.tools`, or undefined when there are none. */
  specs() {
    return this.registered.size ? [...this.registered.values()].map((t) => t.spec) : undefined;
  }

  // ---- what the hub says -----------------------------------------------------------------

  onEvent(ev) {
    const item = ev.item;
    if (ev.type === 'tool.result' && item?.call_id) this.resolved.add(key(ev.session, item.call_id));
    if (ev.type === 'tool.called' && item) this.maybeRun(ev.session, item);
  }

  onSnapshot(snap) {
    for (const item of snap.items || []) {
      if (item.role === 'tool' && item.call_id && !isWaiting(item.status)) this.resolved.add(key(snap.session, item.call_id));
    }
    for (const item of snap.pending_tool_calls || []) this.maybeRun(snap.session, item);
  }

  /** Runs a registered client tool's call that waits for a client, once per call and client. */
  maybeRun(session, item) {
    const tool = this.registered.get(item.name);
    const k = key(session, item.call_id);
    if (!tool || item.status !== 'pending' || item.executor !== 'client') return;
    if (this.started.has(k) || this.resolved.has(k)) return;
    this.started.add(k);
    // Off the frame handler: the UI draws the call before the tool runs.
    Promise.resolve().then(() => this.run(session, item, tool));
  }

  async run(session, item, tool) {
    const k = key(session, item.call_id);
    let output;
    let isError = false;
    try {
      let args;
      try {
        args = item.arguments ? JSON.parse(item.arguments) : {};
      } catch {
        throw new Error('the arguments are not valid JSON');
      }
      const value = await tool.handler(args, { session, callId: item.call_id, name: item.name, arguments: item.arguments });
      output = typeof value === 'string' ? value : JSON.stringify(value ?? null);
    } catch (err) {
      isError = true;
      output = err?.message ? String(err.message) : String(err);
    }
    const report = { session, callId: item.call_id, name: item.name, output, isError };
    if (this.resolved.has(k)) {
      this.client.emit('tool', { ...report, outcome: 'superseded' });
      return;
    }
    try {
      const ack = await this.result(session, item.call_id, output, { isError });
      this.client.emit('tool', { ...report, outcome: ack.duplicate ? 'duplicate' : 'sent', ack });
    } catch (err) {
      // Not pending any more: another tab answered first (the first result wins), or the call
      // was cancelled. Neither is this tab's error.
      if (err.code === 'bad_request' || err.code === 'not_found' || this.resolved.has(k)) {
        this.client.emit('tool', { ...report, outcome: 'superseded', error: err });
        return;
      }
      err.session = session;
      this.client.emit('error', err);
    }
  }

  // ---- results and approvals -------------------------------------------------------------

  result(session, callId, output, { isError = false } = {}) {
    if (typeof output !== 'string') return Promise.reject(new TypeError('a tool output is a string'));
    const body = { call_id: callId, output };
    if (isError) body.is_error = true;
    return this.enqueue(session, body, false);
  }

  approval(session, callId, approved, { arguments: args } = {}) {
    const body = { call_id: callId, approved: Boolean(approved) };
    if (args !== undefined) body.arguments = typeof args === 'string' ? args : JSON.stringify(args);
    return this.enqueue(session, body, true);
  }

  enqueue(session, body, approval) {
    this.client.subscribe(session);
    return new Promise((resolve, reject) => {
      // Idempotent by call id at the hub, so a retry after a lost connection is safe.
      const k = `${approval ? 'a' : 'r'} ${key(session, body.call_id)}`;
      this.outbox.get(k)?.reject(new HubError('bad_request', 'replaced by a newer answer for the same call'));
      this.outbox.set(k, { session, body, approval, resolve, reject, inFlight: false });
      this.flush(session);
    });
  }

  /** Sends what waits for `session` (all sessions when omitted) that is live now. */
  flush(session) {
    for (const [k, p] of this.outbox) {
      if (p.inFlight || (session && p.session !== session)) continue;
      if (!this.client.subs.get(p.session)?.live) continue;
      p.inFlight = true;
      this.deliver(k, p);
    }
  }

  async deliver(k, p) {
    const client = this.client;
    try {
      let ack;
      if (client.transport === 'ws') {
        if (!client.link) throw new HubError('unavailable', 'not connected');
        const type = p.approval ? 'tool_approval' : 'tool_result';
        ack = await client.link.request({ type, session: p.session, ...p.body });
      } else {
        const route = p.approval ? 'tool-approvals' : 'tool-results';
        ack = await client.http('POST', `/v1/sessions/${encodeURIComponent(p.session)}/${route}`, p.body);
      }
      if (this.outbox.get(k) !== p) return;
      this.outbox.delete(k);
      p.resolve(ack);
    } catch (err) {
      if (this.outbox.get(k) !== p) return;
      p.inFlight = false;
      if (RETRYABLE.has(err.code) && !client.closed) {
        // Flushed again once live. An SSE stream can look healthy while POSTs fail: reconnect,
        // as a failed send does.
        if (client.transport === 'sse' && client.state === 'connected') client.scheduleReconnect(err.message);
        return;
      }
      this.outbox.delete(k);
      p.reject(err);
    }
  }

  /** The connection went down: what was in flight goes again on the next one. */
  reset() {
    for (const p of this.outbox.values()) p.inFlight = false;
  }

  /** A session is gone (not found, deleted) or the client closed: its answers fail with `err`. */
  drop(session, err) {
    for (const [k, p] of this.outbox) {
      if (session && p.session !== session) continue;
      this.outbox.delete(k);
      p.reject(err);
    }
  }
}

function key(session, callId) {
  return `${session} ${callId}`;
}

function isWaiting(status) {
  return status === 'pending' || status === 'awaiting_approval';
}
