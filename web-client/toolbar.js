/**
 * The toolbar gets out of the way: its handle (☰, first on the toolbar) collapses it to
 * that one small button on a screen edge the user picks (left, right, bottom or top;
 * left by default, away from where desktops keep their top panels and clocks). Collapsed,
 * nothing but the handle takes clicks, so the desktop's own edge is the desktop's again.
 * Both choices are remembered in this browser.
 */
import { el } from './dom.js';

const STORE_KEY = 'kelpie.toolbar';
export const EDGES = ['left', 'right', 'bottom', 'top'];

/** The remembered state, validated: {collapsed: bool, edge}. */
export function loadToolbar(storage = globalThis.localStorage) {
  let stored = {};
  try {
    stored = JSON.parse(storage?.getItem(STORE_KEY) || '{}') || {};
  } catch { /* corrupt or blocked storage: defaults */ }
  return {
    collapsed: stored.collapsed === true,
    edge: EDGES.includes(stored.edge) ? stored.edge : 'left',
  };
}

function saveToolbar(state, storage = globalThis.localStorage) {
  try {
    storage?.setItem(STORE_KEY, JSON.stringify(state));
  } catch { /* private mode: not remembered */ }
}

/**
 * Wires the handle into `toolbar`, and the edge choice into `settingsPanel` (when given);
 * returns {collapse(bool), setEdge(edge), state}.
 */
export function attachToolbar(toolbar, { settingsPanel = null } = {}) {
  const state = loadToolbar();
  const handle = el('button', { type: 'button', id: 'toolbar-handle', textContent: '☰', 'aria-label': 'Toolbar',
    title: 'Show or hide the toolbar' });
  toolbar.prepend(handle);

  function render() {
    toolbar.dataset.collapsed = String(state.collapsed);
    toolbar.dataset.edge = state.edge;
    handle.setAttribute('aria-expanded', String(!state.collapsed));
  }
  function collapse(on) {
    state.collapsed = !!on;
    saveToolbar(state);
    render();
  }
  function setEdge(edge) {
    if (!EDGES.includes(edge)) return;
    state.edge = edge;
    saveToolbar(state);
    render();
  }
  handle.addEventListener('click', () => collapse(!state.collapsed));
  if (settingsPanel) {
    const edge = el('select', { name: 'toolbar-edge' });
    for (const e of EDGES) edge.append(el('option', { value: e, textContent: e }));
    edge.value = state.edge;
    edge.addEventListener('change', () => setEdge(edge.value));
    const hint = settingsPanel.querySelector('p.hint:last-of-type');
    settingsPanel.insertBefore(el('label', {}, ['Toolbar, when hidden with ☰', edge]), hint);
  }
  render();
  return { collapse, setEdge, get state() { return { ...state }; } };
}
