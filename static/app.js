// The bundled test page: wires hub.js to the sidebar, the message list and the composer.
// Everything it shows comes from the hub's events, so two tabs on one session agree.

import { HubClient, SessionView, newClientMsgId } from './hub.js';
import { ChatList } from './chat.js';
import { Sidebar } from './sidebar.js';
import { ModelPicker } from './model-picker.js';

const $ = (id) => document.getElementById(id);
const TRANSPORT_KEY = 'sessionhub.transport';

const params = new URLSearchParams(location.search);
const transport = pickTransport(params.get('transport') || localStorage.getItem(TRANSPORT_KEY));
// With authentication on, put a token in localStorage['sessionhub.token'] (this page has no
// login of its own); hub.js trades it for a WebSocket ticket.
const hub = new HubClient({ transport, token: localStorage.getItem('sessionhub.token') || null });
const models = new ModelPicker($('model'), hub);
models.load().catch(toastError);

let view = null; // the SessionView of the open session
let connection = { state: 'connecting' };
let retryTimer = 0;

const chat = new ChatList({
  list: $('messages'),
  scroller: $('chat'),
  jump: $('jump'),
  onCancelQueued: (runId) => cancel(runId),
  onLoadOlder: loadOlder,
  onDecide: (item, approved) => decide(item, approved),
});

// The page's own client tool, offered with every message: the model (or `/tool page_info {}`
// with the scripted agent) can ask what the user is looking at.
hub.registerTool(
  {
    name: 'page_info',
    description: "The page the user has open: its title, its URL and the user's local time and time zone.",
    parameters: { type: 'object', properties: {}, additionalProperties: false },
  },
  () => ({
    title: document.title,
    url: location.href,
    time: new Date().toString(),
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
  }),
);

const sidebar = new Sidebar($('sessions'), {
  onOpen: (id) => {
    closeDrawer();
    openSession(id);
  },
  onRename: (id, title) =>
    hub.renameSession(id, title).then(() => {
      sidebar.setTitle(id, title);
      if (view?.id === id) setTitle(title);
    }, toastError),
  onDelete: (id) => hub.deleteSession(id).then(refreshSessions, toastError),
});

// ---- hub events ------------------------------------------------------------------------------

hub.on('state', (s) => {
  connection = s;
  const conn = $('conn');
  conn.dataset.state = s.state;
  conn.dataset.transport = s.transport || '';
  conn.dataset.fallback = String(Boolean(s.fallback));
  $('conn-label').textContent = connectionLabel(s);
  clearInterval(retryTimer);
  const banner = $('banner');
  banner.hidden = s.state !== 'reconnecting';
  if (s.state === 'reconnecting') {
    const until = Date.now() + (s.retryInMs || 0);
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      $('banner-text').textContent =
        left > 0 ? `Connection to the hub lost. Retrying in ${left} s…` : 'Connection to the hub lost. Reconnecting…';
    };
    tick();
    retryTimer = setInterval(tick, 500);
  }
  chat.setOnline(s.state === 'connected');
  if (s.state === 'connected') refreshSessions();
  updateComposer();
});

hub.on('snapshot', (snap) => applyFrame(snap));
hub.on('event', (ev) => {
  if (ev.type === 'session.updated') sidebar.setTitle(ev.session, ev.title);
  applyFrame(ev);
});

hub.on('error', (err) => {
  if (err.code === 'not_found' && err.session && err.session === view?.id) {
    toast('This chat no longer exists.', 'It may have been deleted in another tab.');
    goHome();
    refreshSessions();
    return;
  }
  toastError(err);
});

function applyFrame(frame) {
  if (!view || frame.session !== view.id) return;
  const change = view.apply(frame);
  if (frame.type === 'session.deleted') {
    toast('This chat was deleted.', 'It was removed, possibly from another tab.', 'info');
    goHome();
    refreshSessions();
    return;
  }
  chat.render(view, change);
  if (change.kind !== 'delta') {
    setTitle(view.title);
    updateComposer();
  }
}

// ---- sessions --------------------------------------------------------------------------------

async function refreshSessions() {
  try {
    const { sessions } = await hub.listSessions({ limit: 100 });
    sidebar.setSessions(sessions);
    if (view) {
      const mine = sessions.find((s) => s.id === view.id);
      if (mine && !view.title && mine.title) setTitle(mine.title);
    }
  } catch {
    // Offline: the connection indicator already says so; the list refreshes on reconnect.
  }
}

function openSession(id) {
  if (view?.id === id) return;
  if (view) hub.unsubscribe(view.id);
  view = new SessionView(id);
  chat.clear();
  chat.render(view);
  $('empty').hidden = true;
  sidebar.setActive(id);
  if (location.hash !== `#s=${id}`) history.replaceState(null, '', `${location.pathname}${location.search}#s=${id}`);
  setTitle('');
  hub.subscribe(id);
  updateComposer();
  $('input').focus();
}

function goHome() {
  if (view) hub.unsubscribe(view.id);
  view = null;
  chat.clear();
  $('empty').hidden = false;
  sidebar.setActive(null);
  history.replaceState(null, '', `${location.pathname}${location.search}`);
  setTitle('');
  updateComposer();
}

async function newChat() {
  closeDrawer();
  try {
    const s = await hub.createSession({});
    await refreshSessions();
    openSession(s.id);
  } catch (err) {
    toastError(err);
  }
}

async function loadOlder() {
  if (!view?.items.length) return;
  const v = view;
  try {
    const page = await hub.listItems(v.id, { before: v.items[0].id, limit: 50 });
    if (view !== v) return;
    v.prepend(page.items, page.has_more);
    chat.render(v);
  } catch (err) {
    toastError(err);
  }
}

function setTitle(title) {
  const shown = view ? title || 'New chat' : 'sessionhub';
  $('title').textContent = shown;
  document.title = view ? `${shown} · sessionhub` : 'sessionhub';
}

// ---- composer --------------------------------------------------------------------------------

const input = $('input');

function updateComposer() {
  const hasText = input.value.trim().length > 0;
  input.disabled = !view;
  $('composer').hidden = !view;
  $('send').disabled = !view || !hasText;
  $('stop').hidden = !view?.streaming;
  $('stop').disabled = connection.state !== 'connected';
}

function autosize() {
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

input.addEventListener('input', () => {
  autosize();
  updateComposer();
});

input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('composer').requestSubmit();
  }
});

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || !view) return;
  const v = view;
  const clientMsgId = newClientMsgId();
  v.addPending(clientMsgId, text);
  chat.render(v);
  chat.scrollToEnd();
  input.value = '';
  autosize();
  updateComposer();
  // The hub names an untitled chat after its first message; every tab sees session.updated.
  hub.send(v.id, text, { clientMsgId, model: models.value() }).catch((err) => {
    v.dropPending(clientMsgId);
    if (view === v) {
      chat.render(v);
      if (!input.value) {
        input.value = text; // give the text back so nothing the user typed is lost
        autosize();
        updateComposer();
      }
    }
    toastError(err);
  });
});

$('stop').addEventListener('click', () => cancel(view?.activeRun));

/** Approve or Deny clicked on a call awaiting approval; every tab then sees its tool.result. */
async function decide(item, approved) {
  if (!view) return;
  try {
    await hub.approveTool(view.id, item.call_id, approved);
  } catch (err) {
    // Decided already (in another tab) is not this tab's error: its tool.result says how.
    if (err.code !== 'bad_request') toastError(err);
  }
}

async function cancel(runId) {
  if (!view) return;
  const stop = $('stop');
  stop.disabled = true;
  try {
    await hub.cancel(view.id, runId || undefined);
  } catch (err) {
    if (err.code !== 'no_active_run') toastError(err); // already finished: nothing to report
  } finally {
    updateComposer();
  }
}

// ---- chrome ----------------------------------------------------------------------------------

for (const b of document.querySelectorAll('#transport button')) {
  b.setAttribute('aria-checked', String(b.dataset.value === transport));
  if (b.dataset.value === 'ws' && typeof WebSocket !== 'function') {
    b.disabled = true;
    b.title = 'WebSockets are not available in this browser';
  }
  b.addEventListener('click', () => {
    for (const o of document.querySelectorAll('#transport button')) o.setAttribute('aria-checked', String(o === b));
    localStorage.setItem(TRANSPORT_KEY, b.dataset.value);
    hub.setTransport(b.dataset.value);
  });
}

$('new-chat').addEventListener('click', newChat);
$('empty-new').addEventListener('click', newChat);
$('retry-now').addEventListener('click', () => hub.reconnectNow());
$('open-sidebar').addEventListener('click', () => $('app').classList.add('sidebar-open'));
$('close-sidebar').addEventListener('click', closeDrawer);
$('scrim').addEventListener('click', closeDrawer);
window.addEventListener('hashchange', route);
window.addEventListener('focus', refreshSessions);
setInterval(() => {
  if (connection.state === 'connected' && !document.hidden) refreshSessions();
}, 20000);

function closeDrawer() {
  $('app').classList.remove('sidebar-open');
}

function route() {
  const id = new URLSearchParams(location.hash.slice(1)).get('s');
  if (id) openSession(id);
  else if (view) goHome();
}

// ---- helpers ---------------------------------------------------------------------------------

function pickTransport(value) {
  return ['auto', 'ws', 'sse'].includes(value) ? value : 'auto';
}

function connectionLabel(s) {
  if (s.state === 'connected') {
    if (s.transport === 'ws') return 'Live · WebSocket';
    return s.fallback ? 'Live · SSE fallback' : 'Live · SSE';
  }
  if (s.state === 'reconnecting') return 'Reconnecting…';
  if (s.state === 'closed') return 'Offline';
  return 'Connecting…';
}

const MESSAGES = {
  busy: 'A reply is still running, and this chat does not accept new messages until it ends.',
  too_large: 'That message is too long for the hub.',
  not_found: 'This chat no longer exists.',
  rate_limited: 'Too many requests right now. Try again in a moment.',
  network: 'Cannot reach the hub. Check that it is running.',
  unavailable: 'The hub is not reachable right now.',
  no_active_run: 'There is no reply to stop: it already finished.',
  forbidden: 'You are not allowed to do that.',
  unauthorized: 'You need to sign in again.',
};

function toastError(err) {
  toast(MESSAGES[err.code] || 'Something went wrong.', err.message && err.message !== err.code ? err.message : '');
}

function toast(title, detail = '', kind = 'error') {
  const t = document.createElement('div');
  t.className = `toast ${kind}`;
  t.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  const text = document.createElement('div');
  const strong = document.createElement('strong');
  strong.textContent = title;
  text.append(strong);
  if (detail && detail !== title) text.append(detail);
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'icon-btn';
  close.setAttribute('aria-label', 'Dismiss');
  close.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18"/></svg>';
  close.addEventListener('click', () => t.remove());
  t.append(text, close);
  $('toasts').append(t);
  setTimeout(() => t.remove(), 7000);
}

// Exposed for debugging in the console (and read by the browser tests).
window.sessionhub = { hub, get view() { return view; } };

hub.connect();
refreshSessions();
route();
updateComposer();
