/**
 * A small, safe Markdown renderer for the engine's reports.
 *
 * It builds DOM nodes directly (createElement + text nodes), so raw HTML in the text stays
 * text: `<script>` is shown, never run. Supported: headings, paragraphs, emphasis, strong,
 * inline code, fenced code, block quotes, ordered and unordered (nested) lists, pipe
 * tables, rules and links (http, https, mailto and relative URLs only).
 */

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^\s{0,3}>\s?/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
const ESCAPABLE = /[\\`*_{}[\]()#+\-.!|>~<]/;
const SAFE_SCHEMES = new Set(['http', 'https', 'mailto']);

/** Render `text` into a new DocumentFragment. */
export function renderMarkdown(text, doc = document) {
  const fragment = doc.createDocumentFragment();
  const lines = String(text ?? '')
    .replace(/\r\n?/g, '\n')
    .split('\n');
  for (const node of blocks(lines, doc)) fragment.append(node);
  return fragment;
}

function blocks(lines, doc) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i += 1;
    } else if (FENCE.test(line)) {
      i = codeBlock(lines, i, doc, out);
    } else if (HEADING.test(line)) {
      const [, hashes, title] = HEADING.exec(line);
      out.push(inlineInto(doc.createElement(`h${hashes.length}`), title, doc));
      i += 1;
    } else if (RULE.test(line)) {
      out.push(doc.createElement('hr'));
      i += 1;
    } else if (QUOTE.test(line)) {
      i = quote(lines, i, doc, out);
    } else if (isTableStart(lines, i)) {
      i = table(lines, i, doc, out);
    } else if (ITEM.test(line)) {
      i = list(lines, i, doc, out);
    } else {
      i = paragraph(lines, i, doc, out);
    }
  }
  return out;
}

function startsBlock(lines, i) {
  const line = lines[i];
  return (
    !line.trim() ||
    FENCE.test(line) ||
    HEADING.test(line) ||
    RULE.test(line) ||
    QUOTE.test(line) ||
    ITEM.test(line) ||
    isTableStart(lines, i)
  );
}

function paragraph(lines, start, doc, out) {
  let i = start + 1;
  while (i < lines.length && !startsBlock(lines, i)) i += 1;
  const text = lines
    .slice(start, i)
    .map((l) => l.trim())
    .join('\n');
  out.push(inlineInto(doc.createElement('p'), text, doc));
  return i;
}

function codeBlock(lines, start, doc, out) {
  const marker = FENCE.exec(lines[start])[1];
  let i = start + 1;
  const body = [];
  while (i < lines.length && !lines[i].trim().startsWith(marker)) body.push(lines[(i += 1) - 1]);
  const code = doc.createElement('code');
  code.textContent = body.join('\n');
  const pre = doc.createElement('pre');
  pre.append(code);
  out.push(pre);
  return i + 1;
}

function quote(lines, start, doc, out) {
  let i = start;
  const inner = [];
  while (i < lines.length && QUOTE.test(lines[i]))
    inner.push(lines[(i += 1) - 1].replace(QUOTE, ''));
  const element = doc.createElement('blockquote');
  element.append(...blocks(inner, doc));
  out.push(element);
  return i;
}

function indentOf(line) {
  return line.length - line.trimStart().length;
}

function list(lines, start, doc, out) {
  const [, lead, marker] = ITEM.exec(lines[start]);
  const base = lead.length;
  const items = [];
  let i = start;
  for (; i < lines.length; i += 1) {
    const line = lines[i];
    const match = ITEM.exec(line);
    const current = items[items.length - 1];
    if (match && match[1].length === base) items.push([match[3]]);
    else if (line.trim() && indentOf(line) > base)
      current.push(line.slice(Math.min(indentOf(line), base + 2)));
    else if (!line.trim() && continuesList(lines[i + 1], base)) current.push('');
    else break;
  }
  const ordered = /\d/.test(marker);
  const element = doc.createElement(ordered ? 'ol' : 'ul');
  if (ordered && parseInt(marker, 10) !== 1) element.start = parseInt(marker, 10);
  for (const item of items) element.append(listItem(item, doc));
  out.push(element);
  return i;
}

function continuesList(next, base) {
  if (next === undefined || !next.trim()) return false;
  const match = ITEM.exec(next);
  return indentOf(next) > base || Boolean(match && match[1].length === base);
}

function listItem(itemLines, doc) {
  const li = doc.createElement('li');
  const content = blocks(itemLines, doc);
  if (content.length && content[0].tagName === 'P') {
    li.append(...content[0].childNodes); // a tight item: its text without a paragraph
    content.shift();
  }
  li.append(...content);
  return li;
}

function isTableStart(lines, i) {
  return (
    i + 1 < lines.length &&
    lines[i].includes('|') &&
    TABLE_RULE.test(lines[i + 1]) &&
    lines[i + 1].includes('-')
  );
}

function cells(line) {
  const parts = [];
  let current = '';
  const text = line.trim().replace(/^\|/, '');
  for (let i = 0; i < text.length; i += 1) {
    if (text[i] === '\\' && text[i + 1] === '|') {
      current += '\\|';
      i += 1;
    } else if (text[i] === '|') {
      parts.push(current.trim());
      current = '';
    } else {
      current += text[i];
    }
  }
  if (current.trim() || !text.endsWith('|')) parts.push(current.trim());
  return parts;
}

function table(lines, start, doc, out) {
  const head = cells(lines[start]);
  const aligns = cells(lines[start + 1]).map((c) =>
    c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : '',
  );
  const element = doc.createElement('table');
  const thead = doc.createElement('thead');
  thead.append(row(head, 'th', aligns, doc));
  const tbody = doc.createElement('tbody');
  let i = start + 2;
  while (i < lines.length && lines[i].trim() && lines[i].includes('|')) {
    tbody.append(row(cells(lines[i]), 'td', aligns, doc, head.length));
    i += 1;
  }
  element.append(thead, tbody);
  const wrapper = doc.createElement('div');
  wrapper.className = 'table-scroll';
  wrapper.append(element);
  out.push(wrapper);
  return i;
}

function row(values, tag, aligns, doc, width = values.length) {
  const tr = doc.createElement('tr');
  for (let c = 0; c < width; c += 1) {
    const cell = inlineInto(doc.createElement(tag), values[c] ?? '', doc);
    if (aligns[c]) cell.className = `align-${aligns[c]}`;
    tr.append(cell);
  }
  return tr;
}

/** Inline Markdown of `text` appended to `parent` (returned). */
export function inlineInto(parent, text, doc = document) {
  let buffer = '';
  const flush = () => {
    if (buffer) parent.append(doc.createTextNode(buffer));
    buffer = '';
  };
  const wrap = (tag, inner) => {
    flush();
    parent.append(inlineInto(doc.createElement(tag), inner, doc));
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const rest = text.slice(i);
    let end;
    if (c === '\\' && ESCAPABLE.test(text[i + 1] ?? '')) {
      buffer += text[i + 1];
      i += 2;
    } else if (c === '\n') {
      buffer += ' ';
      i += 1;
    } else if (c === '`' && (end = text.indexOf('`', i + 1)) > i) {
      flush();
      const code = doc.createElement('code');
      code.textContent = text.slice(i + 1, end);
      parent.append(code);
      i = end + 1;
    } else if (
      (rest.startsWith('**') || rest.startsWith('__')) &&
      (end = closing(text, i, c + c)) > 0
    ) {
      wrap('strong', text.slice(i + 2, end));
      i = end + 2;
    } else if (
      (c === '*' || c === '_') &&
      opensEmphasis(text, i) &&
      (end = closing(text, i, c)) > 0
    ) {
      wrap('em', text.slice(i + 1, end));
      i = end + 1;
    } else if (c === '[' && (end = link(text, i, parent, doc, flush)) > 0) {
      i = end;
    } else {
      buffer += c;
      i += 1;
    }
  }
  flush();
  return parent;
}

function opensEmphasis(text, i) {
  const next = text[i + 1] ?? '';
  if (!next.trim() || next === text[i]) return false;
  return text[i] === '*' || !/\w/.test(text[i - 1] ?? ''); // snake_case stays as it is
}

/** Index of the marker closing the one at `i`, or -1 (never empty, never across escapes). */
function closing(text, i, marker) {
  let j = i + marker.length + 1;
  while ((j = text.indexOf(marker, j)) > 0) {
    const escaped = text[j - 1] === '\\';
    const afterWord = marker[0] === '_' && /\w/.test(text[j + marker.length] ?? '');
    if (!escaped && !afterWord && text[j - 1].trim() && text[j + marker.length] !== marker[0]) {
      return j;
    }
    j += 1;
  }
  return -1;
}

function link(text, i, parent, doc, flush) {
  const close = text.indexOf('](', i + 1);
  if (close < 0) return -1;
  const end = text.indexOf(')', close + 2);
  if (end < 0) return -1;
  const label = text.slice(i + 1, close);
  const href = text
    .slice(close + 2, end)
    .trim()
    .split(/\s+/)[0];
  if (!safeHref(href)) return -1;
  flush();
  const anchor = inlineInto(doc.createElement('a'), label, doc);
  anchor.href = href;
  anchor.rel = 'noopener noreferrer';
  anchor.target = '_blank';
  parent.append(anchor);
  return end + 1;
}

/** http(s), mailto and relative URLs; nothing a browser could run (javascript:, data:...). */
export function safeHref(href) {
  if (!href || /[\u0000-\u0020\u007f]/.test(href) || href.startsWith('//')) return false;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(href);
  return scheme ? SAFE_SCHEMES.has(scheme[1].toLowerCase()) : !href.includes(':');
}
