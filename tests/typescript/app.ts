// A small TypeScript chat front end written against static/hub.d.ts, as an app that copied
// hub*.js and hub.d.ts would be. tests/typescript_decls.rs type-checks it with `tsc --noEmit`
// (strict): it uses every export of hub.js, so a declaration that goes missing or changes
// shape fails the build. The `@ts-expect-error` lines fail it when the declarations become
// too loose (anything typed `any` would accept them).

import {
  HubClient,
  HubError,
  SessionView,
  backoffDelay,
  newClientMsgId,
  type Ack,
  type ConnectionState,
  type HubEvent,
  type Item,
  type Position,
  type Snapshot,
  type StateChange,
  type ToolAck,
  type ToolItem,
  type ToolRun,
  type ViewChange,
  type ViewItem,
} from '../../static/hub.js';

const hub = new HubClient({ url: 'https://hub.example.com', transport: 'auto', token: null });
const views = new Map<string, SessionView>();

function show(state: ConnectionState, detail: StateChange): void {
  const where = detail.transport === null ? 'nowhere yet' : detail.transport;
  const retry = detail.retryInMs === undefined ? '' : `, retry in ${detail.retryInMs} ms`;
  document.title = `${state} over ${where}${detail.fallback ? ' (fallback)' : ''}${retry}`;
}

function render(view: SessionView, change: ViewChange): void {
  const list = document.getElementById('messages');
  if (!list) return;
  if (change.kind === 'reset') {
    list.replaceChildren(...view.items.map(row));
  } else if (change.kind === 'item' || change.kind === 'delta') {
    const node = document.querySelector<HTMLElement>(`[data-id="${CSS.escape(change.item.id)}"]`);
    if (node) node.textContent = change.item.text;
    else list.append(row(change.item));
  }
  const stop = document.getElementById('stop');
  if (stop instanceof HTMLButtonElement) stop.disabled = !view.streaming || view.activeItem === null;
}

function row(item: ViewItem): HTMLElement {
  const li = document.createElement('li');
  li.dataset.id = item.id;
  li.dataset.status = item.status;
  li.textContent = item.error ? `${item.text} (${item.error.code})` : item.text;
  if (item.role === 'user' && views.get(currentSession)?.isQueued(item.id)) li.classList.add('queued');
  return li;
}

function describe(ev: HubEvent): string {
  switch (ev.type) {
    case 'run.delta':
      return `${ev.run_id} +${ev.text.length} chars at ${ev.epoch}:${ev.seq}`;
    case 'run.failed':
      return `${ev.run_id} failed: ${ev.error.code}${ev.error.retryable ? ' (retryable)' : ''}`;
    case 'run.cancelled':
      return ev.item === null ? `queued run ${ev.run_id} dropped` : `stopped at ${ev.item.text.length} chars`;
    case 'items.removed':
      return `${ev.item_ids.length} items removed`;
    case 'session.updated':
      return `renamed to ${ev.title ?? '(untitled)'}`;
    case 'tool.delta':
      return `${ev.item_id} arguments +${ev.arguments.length}`;
    case 'tool.called':
      return `${ev.item.name}(${ev.item.arguments}) by the ${ev.item.executor}: ${ev.item.status}`;
    case 'tool.result':
      return `${ev.item.call_id} ${ev.item.status}: ${ev.item.output ?? ''}`;
    case 'run.completed':
      return `${ev.run_id} done${ev.pending_tool_calls?.length ? `, ${ev.pending_tool_calls.length} calls waiting` : ''}`;
    case 'run.started':
      return ev.continues ? `${ev.run_id} continues ${ev.continues}` : ev.run_id;
    default:
      return ev.type;
  }
}

let currentSession = '';

hub.on('state', (s) => show(s.state, s));
hub.on('snapshot', (snap: Snapshot) => {
  const view = views.get(snap.session);
  if (view) render(view, view.apply(snap));
});
hub.on('event', (ev) => {
  console.debug(describe(ev), new Date(ev.ts).toISOString());
  const view = views.get(ev.session);
  if (view) render(view, view.apply(ev));
});
hub.on('subscribed', (s) => console.debug(`${s.session}: ${s.resume ?? 'live'} from ${s.epoch ?? '?'}`));
hub.on('ack', (ack: Ack) => views.get(ack.session)?.dropPending(ack.client_msg_id));
const stopListening = hub.on('error', (err: HubError) => {
  console.warn(`hub error ${err.code}${err.status ? ` (HTTP ${err.status})` : ''}: ${err.message}`);
});

async function open(id: string, since: Position | null): Promise<SessionView> {
  currentSession = id;
  const view = new SessionView(id);
  views.set(id, view);
  const page = await hub.listItems(id, { limit: 50 });
  view.prepend(page.items, page.has_more);
  hub.subscribe(id, since);
  return view;
}

async function say(id: string, text: string): Promise<Ack> {
  const view = views.get(id);
  const clientMsgId = newClientMsgId();
  view?.addPending(clientMsgId, text);
  try {
    const ack = await hub.send(id, text, { onBusy: 'queue', clientMsgId });
    if (ack.duplicate) console.info(`already stored as ${ack.item_id}`);
    return ack;
  } catch (err) {
    view?.dropPending(clientMsgId);
    if (err instanceof HubError && err.code === 'busy') throw new HubError('busy', 'wait for the reply');
    throw err;
  }
}

/** A client tool of this app, and approvals for server tools, as a UI would wire them. */
function tools(id: string): () => void {
  const off = hub.registerTool(
    { name: 'get_location', description: 'Where the user is', parameters: { type: 'object' } },
    async (args, call) => ({ city: 'Paris', precise: args.precise === true, call: call.callId, session: call.session }),
  );
  hub.on('tool', (run: ToolRun) => {
    if (run.outcome === 'superseded') console.debug(`${run.name}: another tab answered ${run.callId}`);
    else console.debug(`${run.name} -> ${run.output}${run.isError ? ' (error)' : ''} at ${run.ack?.seq ?? '?'}`);
  });
  hub.on('snapshot', (snap) => {
    const waiting: ToolItem[] = snap.pending_tool_calls ?? [];
    for (const call of waiting) {
      if (call.status === 'awaiting_approval') void hub.approveTool(id, call.call_id, true, { arguments: { to: 'ops' } });
    }
  });
  return off;
}

async function answer(id: string, view: SessionView): Promise<ToolAck[]> {
  const acks: ToolAck[] = [];
  for (const call of view.waitingCalls) {
    if (call.status === 'pending' && call.call_id) acks.push(await hub.sendToolResult(id, call.call_id, '{"ok":true}', { isError: false }));
    else if (call.call_id) acks.push(await hub.approveTool(id, call.call_id, false));
  }
  return acks.filter((a) => !a.duplicate);
}

async function main(): Promise<void> {
  hub.setToken(localStorage.getItem('token'));
  const headers: Record<string, string> = hub.authHeaders();
  console.debug(`talking to ${hub.base} with ${Object.keys(headers).length} headers, token ${hub.token ? 'set' : 'unset'}`);
  hub.connect();
  const { sessions, has_more } = await hub.listSessions({ limit: 20 });
  const session = sessions[0] ?? (await hub.createSession({ title: 'From TypeScript', metadata: { app: 'example' } }));
  const again = await hub.getSession(session.id);
  await hub.renameSession(again.id, again.title ?? 'Untitled');
  const view = await open(session.id, hub.position(session.id));
  const unregister = tools(session.id);
  await say(session.id, 'Hello from a typed app');
  await hub.send(session.id, '/tool get_location {}', { context: { page: '/pricing' } });
  console.debug(await answer(session.id, view));
  unregister();
  const sending = hub.pending(session.id).map((p) => `${p.clientMsgId}: ${p.text}`);
  const queuedRun: string | null = view.queuedRunFor(view.items[0]?.id ?? '');
  if (view.activeRun) await hub.cancel(session.id, view.activeRun);
  await hub.cancel(session.id);
  const raw = await hub.http<{ status?: string }>('GET', '/healthz');
  console.debug(sending, queuedRun, has_more, raw, view.title, view.hasMore, view.deleted, view.version);
  const waits = [0, 1, 2].map((attempt) => backoffDelay(attempt, 300, 8000));
  console.debug(`backoff steps ${waits.join(', ')}`);
  const first: Item | undefined = (await hub.listItems(session.id, { after: view.items[0]?.id })).items[0];
  if (first) console.debug(first.created_at, first.role);
  hub.setTransport('sse');
  hub.reconnectNow();
  hub.unsubscribe(session.id);
  view.byId.clear();
  view.pending.clear();
  view.queued.length = 0;
  stopListening();
  if (has_more) await hub.deleteSession(session.id);
  hub.close();
}

// The declarations must stay strict: each line below is a mistake the compiler has to catch.
// @ts-expect-error text must be a string
void hub.send('ses_1', 42);
// @ts-expect-error the busy policy is one of queue, reject, interrupt
void hub.send('ses_1', 'hi', { onBusy: 'later' });
// @ts-expect-error the transport is auto, ws or sse
hub.setTransport('polling');
// @ts-expect-error there is no such event
hub.on('message', () => {});
// @ts-expect-error frames are handled inside the client, not part of its API
hub.onFrame({ type: 'pong' });
// @ts-expect-error the connection state is the client's to change
hub.state = 'connected';
// @ts-expect-error a position has a string epoch and a numeric seq
hub.subscribe('ses_1', { epoch: 1, seq: '2' });
// @ts-expect-error a session id is a string
void hub.getSession(7);
// @ts-expect-error a tool output is a string
void hub.sendToolResult('ses_1', 'call_1', { ok: true });
// @ts-expect-error an approval is a boolean
void hub.approveTool('ses_1', 'call_1', 'yes');
// @ts-expect-error a tool needs a handler
hub.registerTool({ name: 'nothing' });

main().catch((err: unknown) => console.error(err));
