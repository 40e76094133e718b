/**
 * One panel system for the toolbar's panels (Settings, Files, Clipboard, People, Stats):
 * one open at a time; each a labelled dialog with a × button; Esc (with the keyboard in
 * the panel or on its button) or a click outside closes it, and after Esc or × the
 * keyboard goes back to the panel's button; the button tells its state with
 * `aria-expanded`. A click outside only closes the panel: it does not reach the desktop.
 * Ctrl+Shift+M takes the keyboard from the desktop to the toolbar (as Selkies' menu key);
 * Tab then reaches every control.
 *
 * Each module keeps its own opening and closing (timers, refreshes) and registers it
 * here; this module only coordinates. Keys typed in a panel stay in the page (dom.js
 * keepKeys, which every panel uses).
 */
import { el } from './dom.js';

const entries = [];
/** The pointer whose press closed a panel: its release and click are swallowed too. */
let swallowedPointer = null;
let swallowClick = false;

/**
 * Registers a panel: `panel` (a section), `button` (its toolbar button), `label` (its
 * accessible name), `setOpen(open)` (the module's own), `isOpen()` (default: not hidden).
 * `headsUp`: a panel meant to stay open while the desktop is used (Stats): a region, not
 * a dialog, that clicks on the desktop leave open. Returns {open(), close({focus}), get isOpen}.
 */
export function registerPanel({ panel, button, label, setOpen, isOpen = () => !panel.hidden, headsUp = false }) {
  panel.setAttribute('role', headsUp ? 'region' : 'dialog');
  if (!panel.hasAttribute('aria-label') && !panel.hasAttribute('aria-labelledby')) panel.setAttribute('aria-label', label);
  if (panel.tabIndex < 0 && !panel.hasAttribute('tabindex')) panel.tabIndex = -1;
  button.setAttribute('aria-controls', panel.id);
  button.removeAttribute('aria-pressed');
  // A glyph (⚙) is no name: say what it opens.
  if (!button.hasAttribute('aria-label') && !/[A-Za-z]/.test(button.textContent)) button.setAttribute('aria-label', label);
  let close = panel.querySelector('.panel-close');
  if (!close) {
    close = el('button', { type: 'button', className: 'panel-close', textContent: '×', 'aria-label': `Close ${label}` });
    const heading = panel.querySelector('h2');
    if (heading) heading.append(close);
    else panel.prepend(close);
  }
  const entry = { panel, button, label, setOpen, isOpen, headsUp };
  entries.push(entry);
  close.addEventListener('click', () => closeEntry(entry, { focus: true }));
  // Whoever opened it (the button, a shortcut, the module itself), the others close.
  new MutationObserver(() => sync(entry)).observe(panel, { attributes: true, attributeFilter: ['hidden'] });
  sync(entry);
  return {
    open: () => setOpen(true),
    close: (opts) => closeEntry(entry, opts),
    get isOpen() { return isOpen(); },
  };
}

function sync(entry) {
  const open = entry.isOpen();
  entry.button.setAttribute('aria-expanded', String(open));
  if (!open) return;
  for (const other of entries) if (other !== entry && other.isOpen()) other.setOpen(false);
}

function closeEntry(entry, { focus = false } = {}) {
  if (!entry.isOpen()) return;
  entry.setOpen(false);
  if (focus && !entry.button.hidden) entry.button.focus({ preventScroll: true });
}

/** The open panel, if any. */
export function openPanel() {
  return entries.find((e) => e.isOpen()) ?? null;
}

/**
 * The page-wide keys and clicks: Esc and clicks outside close the open panel, and
 * Ctrl+Shift+M (through the keyboard's shortcuts, so it never reaches the desktop) puts
 * the keyboard on the toolbar's first button.
 */
export function attachPanels({ keyboard, toolbar }) {
  window.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    const open = openPanel();
    if (!open) return;
    const at = document.activeElement;
    if (!(open.panel.contains(at) || open.button === at || toolbar?.contains(at))) return;
    ev.preventDefault();
    ev.stopPropagation();
    closeEntry(open, { focus: true });
  }, true);
  window.addEventListener('pointerdown', (ev) => {
    swallowClick = false;
    const open = openPanel();
    if (!open || open.headsUp || open.panel.contains(ev.target) || toolbar?.contains(ev.target)) return;
    // Another of the page's own overlays (a notice, the connection box) is not "outside".
    if (ev.target instanceof Element && ev.target.closest('.panel, .connection, .notice')) return;
    ev.preventDefault();
    ev.stopPropagation();
    swallowedPointer = ev.pointerId;
    swallowClick = true;
    closeEntry(open);
  }, true);
  window.addEventListener('pointerup', (ev) => {
    if (ev.pointerId !== swallowedPointer) return;
    swallowedPointer = null;
    ev.preventDefault();
    ev.stopPropagation();
  }, true);
  window.addEventListener('click', (ev) => {
    if (!swallowClick) return;
    swallowClick = false;
    ev.preventDefault();
    ev.stopPropagation();
  }, true);
  keyboard?.addShortcut?.((ev) => {
    if (!(ev.ctrlKey && ev.shiftKey && !ev.altKey && ev.code === 'KeyM')) return false;
    const first = [...(toolbar?.querySelectorAll('button, input, select') ?? [])].find((b) => !b.hidden && !b.disabled);
    first?.focus({ preventScroll: true });
    return true;
  });
}
