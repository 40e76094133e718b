/**
 * The People panel: who is watching, who holds control, and the buttons to ask for,
 * release, take or give control; for owners also a section that creates share links.
 * It only shows room.js's state and calls `act(action, to)`; the server decides and
 * answers with a new room, which re-renders the panel.
 *
 * Stable selectors (tests and docs): `#people-button`, `#people-panel`, `#people-list`,
 * `button[data-action="request"|"release"|"take"]`, `button[data-action="grant"][data-to=ID]`,
 * `#share-role`, `#share-ttl`, `#share-name`, `#share-create`, `#share-url`, `#share-copy`,
 * `#share-status`.
 */
import { el, keepKeys } from './dom.js';
import { registerPanel } from './panels.js';
import { availableActions, holdsControl } from './room.js';
import { SHARE_ROLES, SHARE_TTLS, checkShareName, createShare, describeShare } from './share.js';

const ROLE_LABELS = { owner: 'owner', guest: 'guest', viewer: 'viewer' };

function select(id, options) {
  const s = el('select', { id });
  for (const [value, label] of options) s.append(el('option', { value: String(value), textContent: label }));
  return s;
}

/** The share-link section (owners only). */
function shareSection() {
  const role = select('share-role', SHARE_ROLES);
  const ttl = select('share-ttl', SHARE_TTLS);
  const name = el('input', { id: 'share-name', type: 'text', maxLength: 64, autocomplete: 'off', spellcheck: false,
    placeholder: 'optional, e.g. bob', 'aria-describedby': 'share-name-hint' });
  const create = el('button', { type: 'button', id: 'share-create', textContent: 'Create link' });
  const url = el('input', { id: 'share-url', type: 'text', readOnly: true, 'aria-label': 'Share link', hidden: true });
  const copy = el('button', { type: 'button', id: 'share-copy', textContent: 'Copy', hidden: true });
  const status = el('p', { id: 'share-status', className: 'hint', role: 'status', 'aria-live': 'polite' });
  const section = el('section', { className: 'people-share', 'aria-label': 'Share a link' }, [
    el('h3', { textContent: 'Share a link' }),
    el('label', {}, ['Role', role]),
    el('label', {}, ['Valid for', ttl]),
    el('label', {}, ['Name', name]),
    el('p', { id: 'share-name-hint', className: 'hint',
      textContent: 'Shown to everyone in this list. Letters A–Z, digits and . _ @ - only.' }),
    el('div', { className: 'row' }, [create]),
    el('div', { className: 'row' }, [url, copy]),
    status,
  ]);

  const say = (text, isError = false) => {
    status.textContent = text;
    status.classList.toggle('error', isError);
  };
  name.addEventListener('input', () => {
    const checked = checkShareName(name.value);
    name.setAttribute('aria-invalid', String(!checked.ok));
  });
  create.addEventListener('click', async () => {
    create.disabled = true;
    say('Creating a link…');
    try {
      const result = await createShare({ role: role.value, ttl: Number(ttl.value), name: name.value });
      if (!result.ok) {
        say(result.error, true);
        return;
      }
      url.value = result.url;
      url.hidden = copy.hidden = false;
      url.select();
      say(describeShare(result));
    } finally {
      create.disabled = false;
    }
  });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(url.value);
      say('Link copied.');
    } catch {
      // Plain HTTP or a refused permission: the user copies the selected text themselves.
      url.focus();
      url.select();
      say('Copying was refused here: the link is selected, press Ctrl+C (⌘C) to copy it.');
    }
  });
  return section;
}

/**
 * Builds the panel and its toolbar button. `room` is a room.js Room; `act(action, to)`
 * sends a control request and returns false when it could not go out.
 */
export function attachPeople({ room, act }) {
  const panel = el('section', { id: 'people-panel', className: 'panel people-panel', hidden: true,
    role: 'dialog', 'aria-label': 'People and control', tabIndex: -1 });
  const button = el('button', { type: 'button', id: 'people-button', title: 'People watching, and who has control',
    'aria-expanded': 'false', 'aria-controls': panel.id }, ['People']);
  const count = el('span', { className: 'people-count', 'aria-hidden': 'true' });
  button.append(count);

  const closeButton = el('button', { type: 'button', className: 'panel-close', textContent: '×', 'aria-label': 'Close' });
  const summary = el('p', { id: 'people-summary' });
  const request = el('button', { type: 'button', 'data-action': 'request', textContent: 'Ask for control' });
  const release = el('button', { type: 'button', 'data-action': 'release', textContent: 'Release control' });
  const take = el('button', { type: 'button', 'data-action': 'take', textContent: 'Take control' });
  const status = el('p', { id: 'people-status', className: 'hint', role: 'status', 'aria-live': 'polite' });
  const list = el('ul', { id: 'people-list', className: 'people-list' });
  const share = shareSection();
  panel.append(
    el('h2', {}, ['People', closeButton]),
    summary,
    el('div', { className: 'row people-actions' }, [request, release, take]),
    status,
    list,
    share,
  );
  document.body.append(panel);
  document.getElementById('toolbar')?.append(button);
  // Typing a share name or pressing Enter on a button is for the panel, not the desktop
  // (app.js does the same for the whole toolbar).
  keepKeys(panel);

  // panels.js keeps aria-expanded and closes the panel on ×, Esc and clicks outside.
  function setOpen(open) {
    panel.hidden = !open;
    if (open) panel.focus({ preventScroll: true });
  }
  button.addEventListener('click', () => setOpen(panel.hidden));
  registerPanel({ panel, button, label: 'People', setOpen });

  function run(action, to) {
    const sent = act(action, to);
    status.textContent = sent ? '' : 'Not connected: try again once the desktop is back.';
  }
  request.addEventListener('click', () => run('request'));
  release.addEventListener('click', () => run('release'));
  take.addEventListener('click', () => run('take'));
  list.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-action="grant"]');
    if (b) run('grant', b.dataset.to);
  });

  function row(p, state, actions) {
    const markers = [];
    if (p.id === state.you) markers.push(el('span', { className: 'people-you', textContent: '(you)' }));
    if (p.control) markers.push(el('span', { className: 'people-marker people-control', textContent: 'in control' }));
    if (p.requesting) markers.push(el('span', { className: 'people-marker people-asks', textContent: 'asks for control' }));
    const li = el('li', { 'data-id': p.id, 'data-role': p.role }, [
      el('span', { className: 'people-name', textContent: p.user }),
      el('span', { className: 'people-role', textContent: ROLE_LABELS[p.role] }),
      ...markers,
    ]);
    if (actions.grant.includes(p.id)) {
      li.append(el('button', { type: 'button', 'data-action': 'grant', 'data-to': p.id,
        className: p.requesting ? 'attention' : '', textContent: 'Give control',
        'aria-label': `Give control to ${p.user}` }));
    }
    return li;
  }

  function render() {
    const state = room.room;
    const actions = availableActions(state, room.role);
    // Re-rendering replaces the rows: keep keyboard focus on the same control if it survives.
    const focused = panel.contains(document.activeElement) ? document.activeElement : null;
    const focusKey = focused?.dataset?.action ? [focused.dataset.action, focused.dataset.to] : null;

    request.hidden = !actions.request;
    request.disabled = actions.waiting;
    request.textContent = actions.waiting ? 'Asked for control…' : 'Ask for control';
    release.hidden = !actions.release;
    take.hidden = !actions.take;
    share.hidden = !actions.share;
    if (!state) {
      summary.textContent = 'Waiting for the server\'s list of participants…';
      list.replaceChildren();
    } else {
      const c = state.participants.find((p) => p.control);
      summary.textContent = holdsControl(state) ? 'You have control of the keyboard and mouse.'
        : c ? `${c.user} has control of the keyboard and mouse.` : 'No one has control of the keyboard and mouse.';
      list.replaceChildren(...state.participants.map((p) => row(p, state, actions)));
    }
    const requests = state?.participants.filter((p) => p.requesting).length || 0;
    count.textContent = state ? ` ${state.participants.length}` : '';
    // Owners see pending requests on the toolbar button, so they notice with the panel closed.
    button.dataset.requests = String(actions.share ? requests : 0);

    if (focused && (!focused.isConnected || focused.hidden || focused.disabled)) {
      const again = focusKey && panel.querySelector(`button[data-action="${focusKey[0]}"]${focusKey[1] ? `[data-to="${CSS.escape(focusKey[1])}"]` : ''}`);
      (again && !again.hidden && !again.disabled ? again : panel).focus({ preventScroll: true });
    }
  }
  room.onChange(render);
  render();

  return {
    panel,
    open: () => setOpen(true),
    close: () => setOpen(false),
  };
}
