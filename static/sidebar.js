// The session list: open, rename in place, delete with an inline confirmation.

const PENCIL = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4"/></svg>';
const TRASH = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3"/></svg>';

export class Sidebar {
  constructor(nav, { onOpen, onRename, onDelete }) {
    this.nav = nav;
    this.handlers = { onOpen, onRename, onDelete };
    this.sessions = [];
    this.active = null;
    this.mode = new Map(); // session id -> 'edit' | 'confirm' while the user is acting on a row
  }

  setSessions(sessions) {
    this.sessions = sessions;
    this.draw();
  }

  setActive(id) {
    this.active = id;
    this.draw();
  }

  /** A live title change (from a session.updated event). */
  setTitle(id, title) {
    const s = this.sessions.find((x) => x.id === id);
    if (s && s.title !== title) {
      s.title = title;
      this.draw();
    }
  }

  draw() {
    const rows = this.sessions.map((s) => this.row(s));
    if (!rows.length) {
      const p = document.createElement('div');
      p.className = 'sessions-empty';
      p.textContent = 'No chats yet.';
      rows.push(p);
    }
    const focused = this.nav.querySelector('input');
    if (focused) return; // never yank an input out from under the user's cursor
    this.nav.replaceChildren(...rows);
  }

  row(s) {
    const row = document.createElement('div');
    row.className = `session${s.id === this.active ? ' active' : ''}`;
    row.dataset.id = s.id;
    const mode = this.mode.get(s.id);
    if (mode === 'edit') return this.editRow(row, s);
    if (mode === 'confirm') return this.confirmRow(row, s);

    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'session-open';
    if (s.id === this.active) open.setAttribute('aria-current', 'page');
    const title = document.createElement('span');
    title.className = `session-title${s.title ? '' : ' untitled'}`;
    title.textContent = s.title || 'New chat';
    const meta = document.createElement('span');
    meta.className = 'session-meta';
    meta.textContent = ago(s.updated_at || s.created_at);
    open.append(title, meta);
    open.addEventListener('click', () => this.handlers.onOpen(s.id));

    const tools = document.createElement('div');
    tools.className = 'session-tools';
    tools.append(
      iconButton(PENCIL, 'Rename chat', 'rename', () => this.setMode(s.id, 'edit')),
      iconButton(TRASH, 'Delete chat', 'delete danger', () => this.setMode(s.id, 'confirm')),
    );
    row.append(open, tools);
    return row;
  }

  editRow(row, s) {
    const input = document.createElement('input');
    input.value = s.title || '';
    input.placeholder = 'Chat title';
    input.maxLength = 200;
    input.setAttribute('aria-label', 'Chat title');
    let done = false;
    const finish = (save) => {
      if (done) return;
      done = true;
      this.mode.delete(s.id);
      const title = input.value.trim();
      input.remove(); // let draw() replace the row
      if (save && title && title !== s.title) this.handlers.onRename(s.id, title);
      this.draw();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') finish(true);
      if (e.key === 'Escape') finish(false);
    });
    input.addEventListener('blur', () => finish(true));
    row.append(input);
    queueMicrotask(() => {
      input.focus();
      input.select();
    });
    return row;
  }

  confirmRow(row, s) {
    row.classList.add('confirm');
    const text = document.createElement('span');
    text.className = 'confirm-text';
    text.textContent = 'Delete this chat?';
    const yes = document.createElement('button');
    yes.type = 'button';
    yes.className = 'link-btn danger-text';
    yes.textContent = 'Delete';
    yes.addEventListener('click', () => {
      this.mode.delete(s.id);
      this.handlers.onDelete(s.id);
      this.draw();
    });
    const no = document.createElement('button');
    no.type = 'button';
    no.className = 'link-btn';
    no.textContent = 'Keep';
    no.addEventListener('click', () => this.setMode(s.id, null));
    row.append(text, yes, no);
    queueMicrotask(() => no.focus());
    return row;
  }

  setMode(id, mode) {
    if (mode) this.mode.set(id, mode);
    else this.mode.delete(id);
    this.draw();
  }
}

function iconButton(svg, label, cls, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `icon-btn ${cls}`;
  b.setAttribute('aria-label', label);
  b.title = label;
  b.innerHTML = svg; // a constant from this file, never data
  b.addEventListener('click', (e) => {
    e.stopPropagation();
    onClick();
  });
  return b;
}

/** "just now", "5 min ago", "3 h ago", or a date. */
function ago(iso) {
  if (!iso) return '';
  const t = new Date(iso).getTime();
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString([], { month: 'short', day: 'numeric' });
}
