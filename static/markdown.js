// A small, safe Markdown renderer for chat replies: paragraphs, fenced code, lists, headings,
// quotes, inline code, bold, italics and http(s) links. It builds DOM nodes (never innerHTML),
// so model output cannot inject markup, and it tolerates half-streamed input such as an
// unterminated code fence.

/** Renders `text` into a DocumentFragment. */
export function renderMarkdown(text) {
  const frag = document.createDocumentFragment();
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = /^\s*(```|~~~)\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i++; // the closing fence (absent while it is still streaming)
      frag.append(codeBlock(body.join('\n'), fence[2]));
      continue;
    }
    if (line.trim() === '') {
      i++;
      continue;
    }
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    if (heading) {
      const h = el(`h${Math.min(heading[1].length + 2, 6)}`);
      appendInline(h, heading[2]);
      frag.append(h);
      i++;
      continue;
    }
    if (/^\s*([-*+]|\d{1,9}[.)])\s+/.test(line)) {
      i = list(lines, i, frag);
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quote = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quote.push(lines[i++].replace(/^\s*>\s?/, ''));
      const bq = el('blockquote');
      bq.append(renderMarkdown(quote.join('\n')));
      frag.append(bq);
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() !== '' && !startsBlock(lines[i])) para.push(lines[i++]);
    const p = el('p');
    para.forEach((l, n) => {
      if (n) p.append(el('br'));
      appendInline(p, l);
    });
    frag.append(p);
  }
  return frag;
}

function startsBlock(line) {
  return /^\s*(```|~~~)|^#{1,4}\s|^\s*([-*+]|\d{1,9}[.)])\s+|^\s*>/.test(line);
}

function list(lines, start, frag) {
  const ordered = /^\s*\d/.test(lines[start]);
  const ul = el(ordered ? 'ol' : 'ul');
  if (ordered) {
    const first = parseInt(lines[start], 10);
    if (first !== 1) ul.start = first;
  }
  let i = start;
  let li = null;
  while (i < lines.length) {
    const m = /^\s*([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(lines[i]);
    if (m && /^\s*\d/.test(lines[i]) === ordered) {
      li = el('li');
      appendInline(li, m[2]);
      ul.append(li);
      i++;
    } else if (li && /^\s{2,}\S/.test(lines[i])) {
      li.append(el('br')); // a continuation line of the previous item
      appendInline(li, lines[i].trim());
      i++;
    } else {
      break;
    }
  }
  frag.append(ul);
  return i;
}

function codeBlock(code, lang) {
  const pre = el('pre');
  const c = el('code');
  if (lang) c.dataset.lang = lang;
  c.textContent = code;
  pre.append(c);
  return pre;
}

// Underscores inside a word (`page_info`, `ses_1a2b`) are not emphasis, as in CommonMark.
const INLINE = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\*\*([^*]+)\*\*|(?<![\p{L}\p{N}_])__([^_]+)__(?![\p{L}\p{N}_])|\*([^*\s][^*]*)\*|(?<![\p{L}\p{N}_])_([^_\s][^_]*)_(?![\p{L}\p{N}_])|\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/gu;

/** Appends inline-formatted `text` to `parent`. */
export function appendInline(parent, text) {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) parent.append(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1]) parent.append(el('code', m[2]));
    else if (m[3] || m[4]) parent.append(styled('strong', m[3] || m[4]));
    else if (m[5] || m[6]) parent.append(styled('em', m[5] || m[6]));
    else {
      const a = el('a', m[7]);
      a.href = m[8];
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      parent.append(a);
    }
  }
  if (last < text.length) parent.append(text.slice(last));
}

function styled(tag, text) {
  const node = el(tag);
  appendInline(node, text);
  return node;
}

function el(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}
