// The message list: draws a SessionView, repainting only what changed, and keeps the reader
// pinned to the newest text unless they scrolled up to read.

import { renderMarkdown } from './markdown.js';
import { paintThinking, thinkingShell, thinkingSignature } from './thinking.js';
import { paintTool, toolShell, toolSignature } from './tool-card.js';

const STATUS_BADGE = {
  cancelled: ['stopped', 'Stopped'],
  failed: ['failed', 'Failed'],
  interrupted: ['stopped', 'Interrupted'],
};

export class ChatList {
  constructor({ list, scroller, jump, onCancelQueued, onLoadOlder, onDecide }) {
    this.list = list;
    this.scroller = scroller;
    this.jump = jump;
    this.onCancelQueued = onCancelQueued;
    this.onLoadOlder = onLoadOlder;
    this.onDecide = onDecide;
    /** call_id -> the approval this tab sent (true) or the denial (false), until the hub answers. */
    this.deciding = new Map();
    this.nodes = new Map(); // item key -> { node, sig }
    this.dirty = new Set();
    this.frame = 0;
    this.online = true;
    scroller.addEventListener('scroll', () => {
      if (this.atBottom()) this.jump.hidden = true;
    });
    jump.addEventListener('click', () => this.scrollToEnd());
  }

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  scrollToEnd() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.jump.hidden = true;
  }

  clear() {
    this.view = null;
    this.nodes.clear();
    this.list.replaceChildren();
    this.jump.hidden = true;
  }

  /** Draws `view` after `change` (as returned by SessionView.apply; omitted = everything). */
  render(view, change) {
    this.view = view;
    if (change?.kind === 'delta') {
      this.dirty.add(change.item.id);
      this.schedule();
      return;
    }
    this.dirty.clear();
    this.sync();
  }

  /** Streaming text is painted at most once per frame; a hidden tab paints on a timer. */
  schedule() {
    if (this.frame) return;
    const paint = () => {
      this.frame = 0;
      const stick = this.atBottom();
      for (const id of this.dirty) {
        const item = this.view?.byId.get(id);
        if (item) this.paintItem(item);
      }
      this.dirty.clear();
      this.afterPaint(stick, false);
    };
    this.frame = document.hidden ? setTimeout(paint, 100) : requestAnimationFrame(paint);
  }

  setOnline(online) {
    if (this.online === online) return;
    this.online = online;
    if (this.view) this.sync();
  }

  /** Rebuilds the order of nodes and repaints items whose content changed. */
  sync() {
    const view = this.view;
    if (!view) return;
    const stick = this.atBottom();
    const wanted = [];
    if (view.hasMore) wanted.push(this.olderButton());
    for (const item of view.items) wanted.push(this.paintItem(item));
    for (const [cmid, text] of view.pending) {
      wanted.push(this.paintItem({ id: `pending:${cmid}`, role: 'user', text, status: 'sending' }));
    }
    const keep = new Set(wanted);
    for (const [key, entry] of this.nodes) {
      if (!keep.has(entry.node)) this.nodes.delete(key);
    }
    // Move nodes only where the order differs, so text selection survives a repaint.
    let cursor = this.list.firstChild;
    for (const node of wanted) {
      if (node === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    this.afterPaint(stick, true);
  }

  afterPaint(stick, structural) {
    if (stick) this.scrollToEnd();
    else if (structural || this.dirty.size === 0) this.jump.hidden = this.atBottom();
  }

  olderButton() {
    let entry = this.nodes.get('older');
    if (!entry) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'older';
      b.textContent = 'Show earlier messages';
      b.addEventListener('click', () => this.onLoadOlder());
      entry = { node: b, sig: '' };
      this.nodes.set('older', entry);
    }
    return entry.node;
  }

  paintItem(item) {
    if (item.role === 'tool') return this.paintToolItem(item);
    if (item.role === 'reasoning') return this.paintThinkingItem(item);
    const queuedRun = item.role === 'user' ? this.view.queuedRunFor(item.id) : null;
    const sig = `${item.status}|${item.text.length}|${queuedRun}|${item.error?.message}|${this.online}`;
    let entry = this.nodes.get(item.id);
    if (entry && entry.sig === sig) return entry.node;
    if (!entry) {
      entry = { node: this.shell(item), sig: '' };
      this.nodes.set(item.id, entry);
    }
    entry.sig = sig;
    const { node } = entry;
    node.dataset.status = item.status;
    node.classList.toggle('streaming', item.status === 'streaming');
    node.classList.toggle('pending', item.status === 'sending');
    // A model turn that only called tools has no text: its calls say everything.
    node.hidden = item.role === 'assistant' && item.status === 'complete' && !item.text;
    const body = node.querySelector('.msg-body');
    if (item.role === 'assistant') body.replaceChildren(renderMarkdown(item.text));
    else body.textContent = item.text;
    this.paintFoot(node.querySelector('.msg-foot'), item, queuedRun);
    return node;
  }

  paintThinkingItem(item) {
    const sig = thinkingSignature(item);
    let entry = this.nodes.get(item.id);
    if (entry && entry.sig === sig) return entry.node;
    if (!entry) {
      entry = { node: thinkingShell(item), sig: '' };
      this.nodes.set(item.id, entry);
    }
    entry.sig = sig;
    paintThinking(entry.node, item);
    return entry.node;
  }

  paintToolItem(item) {
    if (item.status !== 'awaiting_approval') this.deciding.delete(item.call_id);
    const deciding = this.deciding.get(item.call_id);
    const sig = toolSignature(item, deciding);
    let entry = this.nodes.get(item.id);
    if (entry && entry.sig === sig) return entry.node;
    if (!entry) {
      entry = { node: toolShell(item), sig: '' };
      this.nodes.set(item.id, entry);
    }
    entry.sig = sig;
    paintTool(entry.node, item, deciding, (it, approved) => this.decide(it, approved));
    return entry.node;
  }

  /** Approve or deny from this tab: the buttons wait until the hub answers, then the event repaints. */
  decide(item, approved) {
    const callId = item.call_id;
    this.deciding.set(callId, approved);
    this.paintToolItem(item);
    Promise.resolve(this.onDecide(item, approved)).finally(() => {
      this.deciding.delete(callId);
      const current = this.view?.items.find((i) => i.call_id === callId);
      if (current) this.paintToolItem(current);
    });
  }

  shell(item) {
    const node = document.createElement('article');
    node.className = `msg ${item.role === 'user' ? 'user' : 'assistant'}`;
    node.dataset.id = item.id;
    node.dataset.role = item.role;
    if (item.role !== 'user') {
      const avatar = document.createElement('div');
      avatar.className = 'avatar';
      avatar.textContent = 'AI';
      avatar.setAttribute('aria-hidden', 'true');
      node.append(avatar);
    }
    const col = document.createElement('div');
    col.className = 'col';
    const bubble = document.createElement('div');
    bubble.className = 'bubble';
    const body = document.createElement('div');
    body.className = 'msg-body';
    bubble.append(body);
    const foot = document.createElement('div');
    foot.className = 'msg-foot';
    col.append(bubble, foot);
    node.append(col);
    return node;
  }

  paintFoot(foot, item, queuedRun) {
    foot.replaceChildren();
    foot.parentNode.querySelector('.msg-error')?.remove();
    if (item.status === 'sending') {
      foot.append(badge('sending', this.online ? 'Sending…' : 'Waiting for the connection…'));
      return;
    }
    if (queuedRun) {
      foot.append(badge('queued', 'Queued'));
      const cancel = document.createElement('button');
      cancel.type = 'button';
      cancel.className = 'link-btn';
      cancel.textContent = 'Cancel';
      cancel.addEventListener('click', () => this.onCancelQueued(queuedRun));
      foot.append(cancel);
    }
    const [cls, label] = STATUS_BADGE[item.status] || [];
    if (cls) foot.append(badge(cls, label));
    if (item.created_at && item.status !== 'streaming') {
      const t = document.createElement('time');
      t.dateTime = item.created_at;
      t.textContent = new Date(item.created_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      foot.append(t);
    }
    if (item.status === 'failed' && item.error?.message) {
      const e = document.createElement('div');
      e.className = 'msg-error';
      e.textContent = item.error.message;
      foot.after(e);
    }
  }
}

function badge(cls, text) {
  const b = document.createElement('span');
  b.className = `badge ${cls}`;
  b.textContent = text;
  return b;
}
