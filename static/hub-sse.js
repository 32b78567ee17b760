// Server-Sent Events reader for hub.js, built on fetch rather than EventSource so that it can
// send headers (Last-Event-ID on the first request, Authorization), see every event type, and
// let the client own the reconnect policy (EventSource retries on its own and hides why).

/**
 * Opens `url` as an event stream. Calls `onOpen(response)` once the hub accepted it,
 * `onEvent(type, data, id)` per event, and `onFail({code, message})` exactly once when the
 * stream ends for any reason other than `abort()`. Returns `{ abort }`.
 */
export function openSseStream(url, { headers = {}, idleMs = 45000, onOpen, onEvent, onFail }) {
  const ctrl = new AbortController();
  let done = false;
  let idleTimer = null;
  const fail = (code, message) => {
    if (done) return;
    done = true;
    clearTimeout(idleTimer);
    ctrl.abort();
    onFail({ code, message });
  };
  // The hub writes a keep-alive comment while idle; silence longer than idleMs is a dead link.
  const touch = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => fail('network', 'event stream went silent'), idleMs);
  };

  (async () => {
    let res;
    try {
      res = await fetch(url, {
        headers: { Accept: 'text/event-stream', ...headers },
        cache: 'no-store',
        signal: ctrl.signal,
      });
    } catch (err) {
      fail('network', `cannot reach the hub (${err.message})`);
      return;
    }
    if (!res.ok) {
      let error = {};
      try {
        error = (await res.json()).error || {};
      } catch {
        // not JSON: keep the status only
      }
      const code = error.code || (res.status >= 500 ? 'unavailable' : 'bad_request');
      fail(code, error.message || `event stream: HTTP ${res.status}`);
      return;
    }
    if (done) return;
    touch();
    onOpen(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = sseParser((type, data, id) => {
      if (!done) onEvent(type, data, id);
    });
    try {
      for (;;) {
        const { value, done: eof } = await reader.read();
        if (eof) break;
        touch();
        parser(value);
      }
      fail('network', 'event stream ended');
    } catch (err) {
      fail('network', `event stream broke (${err.message})`);
    }
  })();

  return {
    abort() {
      done = true;
      clearTimeout(idleTimer);
      ctrl.abort();
    },
  };
}

/** Incremental parser of the text/event-stream format (WHATWG HTML, "server-sent events"). */
export function sseParser(dispatch) {
  let buf = '';
  let type = '';
  let data = [];
  let id = null;
  return (chunk) => {
    buf += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(buf);
      // A lone trailing \r may be the first half of \r\n: wait for more input.
      if (!m || (m[0] === '\r' && m.index === buf.length - 1)) return;
      const line = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      if (line === '') {
        if (data.length) dispatch(type || 'message', data.join('\n'), id);
        type = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue; // comment: a keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id' && !value.includes('\0')) id = value;
    }
  };
}
