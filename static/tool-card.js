// A tool call drawn inline in the transcript: its name, who runs it, its status, its arguments
// and its output (long ones collapsed), and Approve / Deny while it awaits a person.

const STATUS = {
  streaming: ['busy', 'Preparing the call…'],
  running: ['busy', 'Running…'],
  pending: ['waiting', 'Waiting for the page'],
  awaiting_approval: ['waiting', 'Needs your approval'],
  complete: ['ok', 'Done'],
  failed: ['failed', 'Failed'],
  denied: ['stopped', 'Denied'],
  cancelled: ['stopped', 'Cancelled'],
  interrupted: ['stopped', 'Interrupted'],
};

/** Longer than this (characters or lines) and a block starts collapsed. */
const LONG_CHARS = 240;
const LONG_LINES = 6;

/** What a repaint depends on: a card whose signature is unchanged is left alone. */
export function toolSignature(item, deciding) {
  return `${item.status}|${(item.arguments || '').length}|${(item.output || '').length}|${deciding}`;
}

export function toolShell(item) {
  const node = document.createElement('article');
  node.className = 'msg tool';
  node.dataset.id = item.id;
  node.dataset.role = 'tool';
  const card = document.createElement('div');
  card.className = 'tool-card';
  node.append(card);
  return node;
}

/**
 * Paints `item` into `node`. `deciding` is the approval this tab sent and awaits (true, false
 * or undefined); `onDecide(item, approved)` is called by the buttons.
 */
export function paintTool(node, item, deciding, onDecide) {
  node.dataset.status = item.status;
  node.dataset.callId = item.call_id || '';
  node.dataset.name = item.name || '';
  const [cls, label] = STATUS[item.status] || ['', item.status];
  const head = el('div', 'tool-head');
  const icon = el('span', 'tool-icon');
  icon.setAttribute('aria-hidden', 'true');
  icon.innerHTML = '<svg viewBox="0 0 24 24"><path d="M14.7 6.3a4 4 0 0 0-5.4 5.4L4 17v3h3l5.3-5.3a4 4 0 0 0 5.4-5.4l-2.5 2.5-2.4-.6-.6-2.4z"/></svg>';
  const name = el('code', 'tool-name', item.name || 'tool');
  const who = el('span', 'tool-who', item.executor === 'client' ? 'runs in the page' : 'runs on the hub');
  const status = el('span', `badge tool-status ${cls}`, deciding === undefined ? label : deciding ? 'Approving…' : 'Denying…');
  head.append(icon, name, who, status);
  const parts = [head];
  parts.push(block('Arguments', pretty(item.arguments), 'tool-args', item.status === 'streaming'));
  if (item.output !== undefined && item.output !== null) {
    parts.push(block(item.status === 'failed' ? 'Error' : 'Output', pretty(item.output), 'tool-output', false));
  }
  if (item.status === 'awaiting_approval') {
    const actions = el('div', 'tool-actions');
    const approve = button('primary small tool-approve', 'Approve', () => onDecide(item, true));
    const deny = button('secondary small tool-deny', 'Deny', () => onDecide(item, false));
    approve.disabled = deny.disabled = deciding !== undefined;
    actions.append(approve, deny);
    parts.push(actions);
  }
  node.firstChild.replaceChildren(...parts);
}

/** A labelled block of text: shown whole when short, collapsed behind its label when long. */
function block(label, text, cls, live) {
  const pre = el('pre', '', text || (cls === 'tool-args' ? '{}' : ''));
  const long = text.length > LONG_CHARS || text.split('\n').length > LONG_LINES;
  if (!long || live) {
    const box = el('div', `tool-block ${cls}`);
    box.append(el('div', 'tool-label', label), pre);
    return box;
  }
  const details = el('details', `tool-block ${cls}`);
  const summary = el('summary', 'tool-label', `${label} · ${text.length.toLocaleString()} characters`);
  details.append(summary, pre);
  return details;
}

/** JSON text indented for reading; anything else as it is. */
function pretty(text) {
  if (!text) return '';
  try {
    const value = JSON.parse(text);
    if (value !== null && typeof value === 'object') return JSON.stringify(value, null, 2);
  } catch {
    // Not JSON (or still streaming): show it raw.
  }
  return text;
}

function button(cls, text, onClick) {
  const b = el('button', cls, text);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}
