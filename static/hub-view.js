// A session's state as a UI renders it, rebuilt from a snapshot plus the sequenced events that
// follow. Applying the same frames in any tab gives the same view: that is what makes two tabs,
// or a reloaded tab, show identical text.

export class SessionView {
  constructor(id) {
    this.id = id;
    this.title = '';
    /**
     * Items in creation order: {id, role, text, status, run_id?, reply_to?, client_msg_id?};
     * tool calls (`role: 'tool'`) add call_id, name, arguments, executor, output?, parent_id;
     * reasoning (`role: 'reasoning'`, PROTOCOL 1.2) adds answer_id and goes before that reply.
     */
    this.items = [];
    this.byId = new Map();
    /** Runs waiting for the active one, in start order: {run_id, reply_to}. */
    this.queued = [];
    this.activeRun = null;
    this.hasMore = false;
    this.deleted = false;
    /** Messages sent from this tab and not yet seen as a `message` event: client_msg_id -> text. */
    this.pending = new Map();
    this.version = 0;
  }

  /** True while a run streams: the UI shows Stop. */
  get streaming() {
    return this.activeRun !== null;
  }

  /** The streaming assistant item, if any. */
  get activeItem() {
    return this.items.find((i) => i.run_id === this.activeRun && i.role === 'assistant' && i.status === 'streaming') || null;
  }

  /** Tool calls waiting for a client's result or a person's approval. */
  get waitingCalls() {
    return this.items.filter((i) => i.role === 'tool' && (i.status === 'pending' || i.status === 'awaiting_approval'));
  }

  /** Whether the user message `itemId` waits behind another run. */
  isQueued(itemId) {
    return this.queued.some((q) => q.reply_to === itemId);
  }

  queuedRunFor(itemId) {
    return this.queued.find((q) => q.reply_to === itemId)?.run_id || null;
  }

  addPending(clientMsgId, text) {
    this.pending.set(clientMsgId, text);
    this.version++;
  }

  dropPending(clientMsgId) {
    this.pending.delete(clientMsgId);
    this.version++;
  }

  /**
   * Applies a `snapshot` frame or a sequenced event. Returns what changed so a UI can repaint
   * only that: {kind: 'reset'} | {kind: 'item', item} | {kind: 'delta', item} | {kind: 'meta'}.
   */
  apply(frame) {
    this.version++;
    switch (frame.type) {
      case 'snapshot':
        return this.applySnapshot(frame);
      case 'message':
        this.pending.delete(frame.item.client_msg_id);
        return { kind: 'item', item: this.upsert(frame.item) };
      case 'run.queued':
        if (!this.queued.some((q) => q.run_id === frame.run_id)) {
          this.queued.push({ run_id: frame.run_id, reply_to: frame.reply_to });
        }
        return { kind: 'meta' };
      case 'run.started':
        this.queued = this.queued.filter((q) => q.run_id !== frame.run_id);
        this.activeRun = frame.run_id;
        return {
          kind: 'item',
          item: this.upsert({
            id: frame.item_id,
            role: 'assistant',
            text: '',
            status: 'streaming',
            run_id: frame.run_id,
            reply_to: frame.reply_to,
          }),
        };
      case 'run.delta': {
        let item = this.byId.get(frame.item_id);
        if (!item) {
          item = this.upsert({ id: frame.item_id, role: 'assistant', text: '', status: 'streaming' });
        }
        item.text += frame.text;
        item.run_id = frame.run_id;
        return { kind: 'delta', item };
      }
      case 'run.completed':
      case 'run.cancelled':
      case 'run.failed':
        return this.applyEnd(frame);
      case 'item.started':
      case 'item.completed':
      case 'tool.started':
      case 'tool.called':
      case 'tool.result':
        // Whole items (a later model turn's assistant item, or a tool call at each step).
        return { kind: 'item', item: this.upsert({ ...frame.item, run_id: frame.run_id }) };
      case 'reasoning.delta': {
        let item = this.byId.get(frame.item_id);
        if (!item) item = this.upsert({ id: frame.item_id, role: 'reasoning', text: '', status: 'streaming' });
        item.text += frame.text;
        return { kind: 'delta', item };
      }
      case 'tool.delta': {
        let item = this.byId.get(frame.item_id);
        if (!item) item = this.upsert({ id: frame.item_id, role: 'tool', text: '', arguments: '', status: 'streaming' });
        item.arguments = (item.arguments || '') + frame.arguments;
        return { kind: 'delta', item };
      }
      case 'session.updated':
        this.title = frame.title || '';
        return { kind: 'meta' };
      case 'items.removed': {
        // A retry dropped these (ChatKit's "retry after item"): repaint the whole list.
        const gone = new Set(frame.item_ids || []);
        this.items = this.items.filter((i) => !gone.has(i.id));
        for (const id of gone) this.byId.delete(id);
        return { kind: 'reset' };
      }
      case 'session.deleted':
        this.deleted = true;
        this.activeRun = null;
        return { kind: 'meta' };
      default:
        return { kind: 'meta' }; // a newer hub's event type: nothing to draw yet
    }
  }

  applySnapshot(snap) {
    this.items = [];
    this.byId = new Map();
    for (const item of snap.items || []) this.upsert(item);
    // Waiting calls are not among the finished items: each goes after its turn's items.
    for (const call of snap.pending_tool_calls || []) this.insertAfterTurn(call);
    this.activeRun = null;
    if (snap.active_run) {
      const run = snap.active_run;
      this.activeRun = run.run_id;
      this.upsert({
        id: run.item_id,
        role: 'assistant',
        text: run.text || '',
        status: 'streaming',
        run_id: run.run_id,
        reply_to: run.reply_to,
      });
      if (run.reasoning) this.upsert({ ...run.reasoning, run_id: run.run_id });
    }
    this.queued = (snap.queued || []).map((q) => ({ run_id: q.run_id, reply_to: q.reply_to }));
    this.title = snap.title || '';
    this.hasMore = Boolean(snap.has_more);
    for (const item of this.items) if (item.client_msg_id) this.pending.delete(item.client_msg_id);
    return { kind: 'reset' };
  }

  applyEnd(ev) {
    this.queued = this.queued.filter((q) => q.run_id !== ev.run_id);
    if (this.activeRun === ev.run_id) this.activeRun = null;
    if (!ev.item) return { kind: 'meta' }; // a queued run was cancelled before it started
    const item = this.upsert({ ...ev.item, run_id: ev.run_id });
    if (ev.error) item.error = ev.error;
    return { kind: 'item', item };
  }

  upsert(fields) {
    const existing = this.byId.get(fields.id);
    if (existing) {
      Object.assign(existing, fields);
      return existing;
    }
    const item = { ...fields };
    // Reasoning shows above the reply it preceded (the hub creates the reply's item first).
    const before = item.role === 'reasoning' ? this.items.findIndex((i) => i.id === item.answer_id) : -1;
    if (before < 0) this.items.push(item);
    else this.items.splice(before, 0, item);
    this.byId.set(item.id, item);
    return item;
  }

  /** Adds a tool item after its parent assistant item and that turn's other calls. */
  insertAfterTurn(call) {
    if (this.byId.has(call.id)) {
      this.upsert(call);
      return;
    }
    let at = -1;
    this.items.forEach((i, n) => {
      if (i.id === call.parent_id || (call.parent_id && i.parent_id === call.parent_id)) at = n;
    });
    const item = { ...call };
    if (at < 0) this.items.push(item);
    else this.items.splice(at + 1, 0, item);
    this.byId.set(item.id, item);
  }

  /** Older items fetched with GET /v1/sessions/{id}/items go before the current ones. */
  prepend(older, hasMore) {
    const fresh = older.filter((i) => !this.byId.has(i.id));
    for (const item of fresh) this.byId.set(item.id, item);
    this.items = reasoningFirst([...fresh, ...this.items]);
    this.hasMore = hasMore;
    this.version++;
  }
}

/** `items` with each reasoning item moved above the reply it preceded, when that is among them. */
function reasoningFirst(items) {
  const out = [];
  for (const item of items) {
    const at = item.role === 'reasoning' ? out.findIndex((i) => i.id === item.answer_id) : -1;
    if (at < 0) out.push(item);
    else out.splice(at, 0, item);
  }
  return out;
}
