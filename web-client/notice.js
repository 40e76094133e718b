/**
 * The page's one transient notice: a short line at the bottom for events the user should
 * see but need not act on at once (someone asks for control, the clipboard was blocked).
 * A polite live region, so screen readers read it without interrupting; each notice
 * replaces the previous one, and it hides itself again after a few seconds.
 */
import { el } from './dom.js';

/** Long enough to read a sentence, short enough not to cover the desktop for long. */
const SHOW_MS = 5000;

let box = null;
let timer = 0;

export function showNotice(text, ms = SHOW_MS) {
  if (!box) {
    box = el('div', { id: 'notice', className: 'notice', hidden: true, role: 'status', 'aria-live': 'polite' });
    document.body.append(box);
  }
  box.textContent = text;
  box.hidden = false;
  clearTimeout(timer);
  timer = setTimeout(() => { box.hidden = true; }, ms);
}
