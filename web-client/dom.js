/**
 * The one helper the client's modules build their elements with, and the one way a part
 * of the page claims the keyboard for itself. Nothing here touches the document at import,
 * so modules that use it can still be imported by the unit tests (no DOM there).
 */

/**
 * `<tag>` with `props` set as properties, except ARIA/data attributes and `role`
 * (`aria-label`, `data-action`, ...), which only exist as attributes in every browser.
 */
export function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'role' || key.includes('-')) e.setAttribute(key, value);
    else e[key] = value;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/**
 * Keys typed while focus is inside `element` are for it (a text field, a button, Tab
 * between controls), not for the remote desktop: keyboard.js listens on window and
 * prevents the browser's default for every key it sends.
 */
export function keepKeys(element) {
  for (const type of ['keydown', 'keyup', 'keypress']) element.addEventListener(type, (ev) => ev.stopPropagation());
}

/**
 * Runs `fn` now if the page has finished loading, else on its load event. For handing a
 * stream to a media element: an element with a stream and no data yet delays the
 * document's load event until its first frame, and the offer can arrive before the page
 * has loaded (the socket is opened early, early-socket.js); where media cannot get
 * through, the tab would then show "loading" for ever.
 */
export function afterLoad(fn, doc = globalThis.document, win = globalThis) {
  if (doc.readyState === 'complete') fn();
  else win.addEventListener('load', () => fn(), { once: true });
}
