/**
 * Building the page from data without ever parsing HTML: every text goes through
 * textContent, so nothing the engine or a user sends can become markup.
 */

/**
 * Create an element. `props`: `class`, `text`, `dataset`, `attrs`, `on` (event handlers)
 * and plain properties (`type`, `value`, `disabled`, ...). Children: nodes or strings.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (name === 'class') element.className = value;
    else if (name === 'text') element.textContent = String(value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name === 'attrs')
      for (const [k, v] of Object.entries(value)) element.setAttribute(k, v);
    else if (name === 'on')
      for (const [k, v] of Object.entries(value)) element.addEventListener(k, v);
    else element[name] = value;
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`The page has no #${id}`);
  return element;
}

/** A progress bar the way assistive technology reads it (role, aria-valuenow). */
export function progressBar(percent, label) {
  const fill = h('div', { class: 'progress-fill' });
  const bar = h(
    'div',
    { class: 'progress', attrs: { role: 'progressbar', 'aria-label': label } },
    fill,
  );
  setProgress(bar, percent);
  return bar;
}

export function setProgress(bar, percent) {
  const value = Math.max(0, Math.min(100, Math.round(Number(percent) || 0)));
  bar.setAttribute('aria-valuemin', '0');
  bar.setAttribute('aria-valuemax', '100');
  bar.setAttribute('aria-valuenow', String(value));
  bar.firstElementChild.style.width = `${value}%`; // CSSOM, allowed by the page's CSP
}
