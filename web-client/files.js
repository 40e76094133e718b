/**
 * File transfer: upload by drag-and-drop or the Files panel's picker into the server's
 * files folder (by default the remote ~/Desktop), with a progress bar per file, and
 * download from the folder's list.
 *
 * Plain HTTP next to the WebRTC session (`files/` relative to the page, so base paths
 * and the page's credentials just work): XMLHttpRequest because fetch still cannot
 * report upload progress. The server is the authority on names, limits and conflicts;
 * this module only explains its answers (see docs/protocol.md, "File transfer").
 *
 * A `viewer` (room.js) may not use files at all (the server answers 403): app.js calls
 * `setRole` with the welcome's role, which hides everything for viewers and otherwise
 * makes the first request, so a viewer's page never asks.
 */
import { el, keepKeys } from './dom.js';
import { registerPanel } from './panels.js';

const BASE = 'files/';

const state = {
  /** Names in the folder at the last refresh (to ask before replacing). */
  names: new Set(),
  /** Upload limit in bytes announced by the server (null until known). */
  maxBytes: null,
  /** False when the server turned transfers off (404) or our role may not use them. */
  enabled: true,
  /** Our role, from the welcome (null until known). */
  role: null,
  /** Whether the server turned transfers off (it answered 404). */
  off: false,
  /** Every upload of this page: {name, status, percent, message, row}. */
  uploads: [],
};

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = '';
  for (const unit of units) {
    v /= 1024;
    u = unit;
    if (v < 1024) break;
  }
  return `${v.toFixed(1).replace(/\.0$/, '')} ${u}`;
}

// --- the panel -----------------------------------------------------------------------

const panel = el('section', { id: 'files-panel', className: 'panel files-panel', hidden: true });
panel.setAttribute('role', 'dialog');
panel.setAttribute('aria-label', 'File transfer');
const closeButton = el('button', { type: 'button', className: 'panel-close files-close', textContent: '×', title: 'Close' });
closeButton.setAttribute('aria-label', 'Close Files');
const picker = el('input', { type: 'file', id: 'files-input', multiple: true });
const pickLabel = el('label', { className: 'files-pick' }, ['Upload files…', picker]);
const note = el('p', { className: 'files-note', id: 'files-note' });
const message = el('p', { className: 'files-message', id: 'files-message' });
message.setAttribute('role', 'status');
const uploadList = el('ul', { className: 'files-uploads', id: 'files-uploads' });
const fileList = el('ul', { className: 'files-list', id: 'files-list' });
panel.append(
  el('h2', {}, ['Files', closeButton]),
  pickLabel, note, uploadList, message,
  el('h3', { textContent: 'In the folder' }), fileList,
);
const button = el('button', { type: 'button', id: 'files-button', textContent: 'Files', title: 'Upload and download files' });
const dropOverlay = el('div', { id: 'files-drop', className: 'files-drop', hidden: true, textContent: 'Drop files to upload' });

function showMessage(text) {
  message.textContent = text || '';
}

export function open() {
  if (!state.enabled) return Promise.resolve(null);
  panel.hidden = false;
  return refresh();
}

export function close() {
  panel.hidden = true;
}

function toggle() {
  if (panel.hidden) open();
  else close();
}

// --- the list ------------------------------------------------------------------------

/** Fetches the folder's list and shows it; resolves to the entries (or null). */
export async function refresh() {
  let res;
  try {
    res = await fetch(BASE, { cache: 'no-store', credentials: 'same-origin' });
  } catch {
    // The browser's own words ("Failed to fetch") say nothing a person can act on.
    showMessage('Cannot reach Kelpie to list the folder (the connection is down). Open the panel again once the desktop is back.');
    fileList.replaceChildren();
    return null;
  }
  if (res.status === 404) {
    state.off = true;
    state.enabled = false;
    note.textContent = (await res.text()).trim() || 'File transfer is turned off on this server.';
    pickLabel.hidden = true;
    fileList.replaceChildren();
    return null;
  }
  if (!res.ok) {
    showMessage(`Cannot list the files (${res.status}): ${(await res.text()).trim()}`);
    return null;
  }
  const max = Number(res.headers.get('x-kelpie-upload-max'));
  if (max > 0) state.maxBytes = max;
  note.textContent = `Uploads go to the remote files folder${state.maxBytes ? ` (up to ${formatSize(state.maxBytes)} each)` : ''}. You can also drop files anywhere on the page.`;
  const entries = await res.json();
  state.names = new Set(entries.map((e) => e.name));
  fileList.replaceChildren(...entries.map((e) => {
    const link = el('a', { href: BASE + encodeURIComponent(e.name), textContent: e.name });
    link.setAttribute('download', e.name);
    return el('li', {}, [link, el('span', { className: 'files-size', textContent: formatSize(e.size) })]);
  }));
  if (!entries.length) fileList.append(el('li', { className: 'files-empty', textContent: 'No files yet.' }));
  return entries;
}

// --- uploads -------------------------------------------------------------------------

/** Explains a refused upload in words a user can act on. */
function explain(status, body, file) {
  const detail = body.trim();
  switch (status) {
    case 400: return `Refused: ${detail || 'unsafe file name'}. Rename the file and try again.`;
    case 403: return `Refused: ${detail || 'not allowed'}.`;
    case 409: return `${file.name} already exists in the folder.`;
    case 413: return `Too large: ${detail || 'over the server\'s upload limit'}.`;
    case 507: return `The remote disk is full: ${detail}`;
    default: return `Upload failed (${status}): ${detail}`;
  }
}

function uploadRow(file) {
  const progress = el('progress', { max: 100, value: 0 });
  const label = el('span', { className: 'files-upload-name', textContent: file.name });
  const status = el('span', { className: 'files-upload-status', textContent: 'waiting' });
  const actions = el('span', { className: 'files-upload-actions' });
  const row = el('li', { className: 'files-upload' }, [label, progress, status, actions]);
  uploadList.prepend(row);
  return { row, progress, status, actions };
}

/**
 * Uploads one File. Resolves to the upload's record once it finished one way or the
 * other: `status` is 'done', 'conflict' (waiting for Replace/Skip), 'skipped' or 'failed'.
 */
export function upload(file, { overwrite = false, name = file.name } = {}) {
  const ui = uploadRow(file);
  // `seen`: every distinct percentage shown, in order (at most 101), so a test can check
  // the bar moved through intermediate values from the events themselves.
  const record = { name, status: 'sending', percent: 0, seen: [0], message: '', row: ui.row, httpStatus: 0 };
  state.uploads.push(record);
  ui.row.dataset.status = record.status;
  const set = (status, text) => {
    record.status = status;
    record.message = text;
    ui.row.dataset.status = status;
    ui.status.textContent = text;
  };
  const setPercent = (p) => {
    record.percent = p;
    if (record.seen.at(-1) !== p) record.seen.push(p);
    ui.progress.value = p;
    ui.row.dataset.percent = String(p);
  };
  set('sending', '0 %');
  if (/^\.+$/.test(name)) {
    // A URL cannot carry a dot-only name: the browser would resolve `files/..` to the
    // page's parent (WHATWG URL treats %2E%2E alike). Such names are never valid anyway.
    const text = `Refused: ${JSON.stringify(name)} is not a file name.`;
    showMessage(text);
    set('failed', text);
    return Promise.resolve(record);
  }
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', BASE + encodeURIComponent(name) + (overwrite ? '?overwrite=1' : ''));
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable || !e.total) return;
      const p = Math.floor((e.loaded / e.total) * 100);
      setPercent(p);
      ui.status.textContent = `${p} %`;
    };
    xhr.onload = () => {
      record.httpStatus = xhr.status;
      if (xhr.status === 200 || xhr.status === 201) {
        setPercent(100);
        set('done', `done (${formatSize(file.size)})`);
        refresh().finally(() => resolve(record));
        return;
      }
      const text = explain(xhr.status, xhr.responseText || '', file);
      showMessage(text);
      if (xhr.status === 409) {
        set('conflict', `${text} Replace it?`);
        const replace = el('button', { type: 'button', className: 'files-replace', textContent: 'Replace' });
        const skip = el('button', { type: 'button', className: 'files-skip', textContent: 'Skip' });
        replace.onclick = () => {
          ui.row.remove();
          upload(file, { overwrite: true, name });
        };
        skip.onclick = () => {
          set('skipped', 'skipped');
          ui.actions.replaceChildren();
        };
        ui.actions.replaceChildren(replace, skip);
      } else {
        set('failed', text);
      }
      resolve(record);
    };
    xhr.onerror = () => {
      // A server refusing a huge upload closes the connection while we still send.
      const over = state.maxBytes && file.size > state.maxBytes;
      const text = over
        ? `Too large: ${file.name} is ${formatSize(file.size)}; the server's upload limit is ${formatSize(state.maxBytes)}.`
        : `Upload of ${file.name} failed: the connection was lost.`;
      showMessage(text);
      set('failed', text);
      resolve(record);
    };
    xhr.send(file);
  });
}

/** Uploads files one after another (parallel uploads would only share the same link). */
export async function uploadAll(files) {
  await open();
  showMessage('');
  const results = [];
  for (const file of files) {
    if (state.names.has(file.name)) {
      // Ask before sending a possibly large file only to hear 409; the server still checks.
      const record = { name: file.name };
      const ui = uploadRow(file);
      ui.row.dataset.status = 'conflict';
      ui.status.textContent = `${file.name} already exists in the folder. Replace it?`;
      const replace = el('button', { type: 'button', className: 'files-replace', textContent: 'Replace' });
      const skip = el('button', { type: 'button', className: 'files-skip', textContent: 'Skip' });
      replace.onclick = () => { ui.row.remove(); upload(file, { overwrite: true }); };
      skip.onclick = () => { ui.row.dataset.status = 'skipped'; ui.status.textContent = 'skipped'; ui.actions.replaceChildren(); };
      ui.actions.replaceChildren(replace, skip);
      record.status = 'conflict';
      results.push(record);
      continue;
    }
    results.push(await upload(file));
  }
  return results;
}

picker.addEventListener('change', () => {
  const files = [...picker.files];
  picker.value = '';
  if (files.length) uploadAll(files);
});
registerPanel({ panel, button, label: 'Files', setOpen: (o) => (o ? open() : close()) });

// --- drag and drop -------------------------------------------------------------------

const carriesFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
let dragDepth = 0;

window.addEventListener('dragenter', (e) => {
  if (!carriesFiles(e)) return;
  e.preventDefault();
  dragDepth += 1;
  dropOverlay.hidden = !state.enabled;
});
window.addEventListener('dragover', (e) => {
  if (!carriesFiles(e)) return;
  // Without this the browser would navigate to the dropped file.
  e.preventDefault();
  e.dataTransfer.dropEffect = state.enabled ? 'copy' : 'none';
});
window.addEventListener('dragleave', (e) => {
  if (!carriesFiles(e)) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) dropOverlay.hidden = true;
});
window.addEventListener('drop', (e) => {
  if (!carriesFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  dropOverlay.hidden = true;
  const files = [...e.dataTransfer.files];
  if (files.length && state.enabled) uploadAll(files);
});

// --- boot ----------------------------------------------------------------------------

button.addEventListener('click', toggle);
// Hidden until the welcome tells us our role (setRole).
button.hidden = true;
document.getElementById('toolbar')?.append(button);
document.body.append(panel, dropOverlay);
keepKeys(panel); // Tab and Enter in the panel are for its controls, not the desktop

/**
 * Our role from the welcome (on every connection; it only changes with a new login).
 * Viewers get neither button, panel nor drop target; others learn the upload limit (and
 * whether transfers are on at all) before the first drop.
 */
export function setRole(role) {
  if (role === state.role) return;
  state.role = role;
  state.enabled = role !== 'viewer' && !state.off;
  if (!state.enabled) {
    close();
    button.hidden = true;
    return;
  }
  button.hidden = false;
  refresh().then(() => { button.hidden = !state.enabled; });
}

export { state };
