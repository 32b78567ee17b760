// One WebSocket to `/v1/ws` for hub.js: opens it, matches replies to requests by `ref`, and
// keeps a heartbeat. It reports up or down; reconnecting is the client's decision.

import { HubError } from './hub-rest.js';

export class WsLink {
  /**
   * `onOpen()` once open; `onFrame(frame)` per JSON frame; `onDown(reason, opened)` exactly
   * once when the link fails or closes (not after `close()`).
   */
  constructor(url, { connectTimeoutMs, heartbeatMs, heartbeatTimeoutMs, onOpen, onFrame, onDown }) {
    this.url = url;
    this.opts = { connectTimeoutMs, heartbeatMs, heartbeatTimeoutMs };
    this.handlers = { onOpen, onFrame, onDown };
    /** ref -> { resolve, reject, timer } */
    this.pending = new Map();
    this.nextRef = 1;
    this.ws = null;
    this.opened = false;
    this.down = false;
  }

  open() {
    try {
      this.ws = new WebSocket(this.url);
    } catch (err) {
      // No await happened yet: report asynchronously so callers see one code path.
      setTimeout(() => this.fail(`websocket refused: ${err.message}`));
      return;
    }
    const ws = this.ws;
    this.openTimer = setTimeout(() => this.fail('websocket open timed out'), this.opts.connectTimeoutMs);
    ws.onopen = () => {
      clearTimeout(this.openTimer);
      this.opened = true;
      this.lastHeard = Date.now();
      this.startHeartbeat();
      this.handlers.onOpen();
    };
    ws.onmessage = (msg) => {
      this.lastHeard = Date.now();
      let frame;
      try {
        frame = JSON.parse(msg.data);
      } catch {
        return; // the hub only sends JSON; ignore anything else rather than crash
      }
      if (!this.settle(frame)) this.handlers.onFrame(frame);
    };
    ws.onclose = (ev) => {
      const why = this.opened ? `closed ${ev.code}${ev.reason ? `: ${ev.reason}` : ''}` : `websocket closed before open (${ev.code})`;
      this.fail(why);
    };
    ws.onerror = () => {}; // onclose always follows and carries the details
  }

  /**
   * Pings every heartbeatMs and declares the link dead when a ping is still unanswered (no
   * frame at all) heartbeatTimeoutMs later. It times from the ping, not from the last frame,
   * because browsers throttle timers in background tabs to about once a minute.
   */
  startHeartbeat() {
    let pingSentAt = 0;
    this.heartbeat = setInterval(() => {
      const now = Date.now();
      if (pingSentAt && this.lastHeard < pingSentAt) {
        if (now - pingSentAt > this.opts.heartbeatTimeoutMs) this.fail('heartbeat timed out');
        return;
      }
      pingSentAt = now;
      this.write({ type: 'ping' });
    }, this.opts.heartbeatMs);
  }

  write(frame) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  newRef() {
    return this.nextRef++;
  }

  /** Sends `frame` with `ref`; resolves with the direct reply, rejects on its `error`. */
  request(frame, { ref = this.newRef(), timeoutMs = 0 } = {}) {
    return new Promise((resolve, reject) => {
      if (!this.write({ ...frame, ref })) {
        reject(new HubError('unavailable', 'not connected'));
        return;
      }
      const timer = timeoutMs
        ? setTimeout(() => {
            this.pending.delete(ref);
            reject(new HubError('timeout', `no reply to ${frame.type}`));
          }, timeoutMs)
        : null;
      this.pending.set(ref, { resolve, reject, timer });
    });
  }

  /** Stops waiting for a reply that will not come (a successful cancel has none). */
  forget(ref) {
    clearTimeout(this.pending.get(ref)?.timer);
    this.pending.delete(ref);
  }

  /** Resolves the request a reply belongs to; true when the frame was only that reply. */
  settle(frame) {
    const p = frame.ref !== undefined ? this.pending.get(frame.ref) : undefined;
    if (!p) return false;
    this.forget(frame.ref);
    if (frame.type === 'error') p.reject(new HubError(frame.code, frame.message, { frame }));
    else p.resolve(frame);
    // Replies that also change state (subscribed, ack) still go to the client.
    return frame.type === 'pong' || frame.type === 'unsubscribed' || frame.type === 'error';
  }

  fail(reason) {
    if (this.down) return;
    const opened = this.opened;
    this.close();
    this.handlers.onDown(reason, opened);
  }

  /** Closes without reporting; requests still waiting are rejected as `unavailable`. */
  close() {
    this.down = true;
    clearTimeout(this.openTimer);
    clearInterval(this.heartbeat);
    const ws = this.ws;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState <= 1) ws.close(1000);
    }
    for (const [ref, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new HubError('unavailable', 'connection lost'));
      this.pending.delete(ref);
    }
  }
}
