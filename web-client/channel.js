/**
 * The `input` data channel as the rest of the client sees it: `send` a protocol message
 * (dropped while disconnected, never queued: stale input is worse than none), `on` a
 * server message type (cursor, clipboard, ...), and `onOpen` to (re)send state whenever a
 * fresh channel opens after a reconnect. Several modules may listen to one type.
 */

let channel = null;
const handlers = new Map();
const openHooks = [];

/** Sends one message; returns false when it could not go out. */
export function send(msg) {
  if (!channel || channel.readyState !== 'open') return false;
  channel.send(JSON.stringify(msg));
  return true;
}

/** Bytes the browser still holds for the channel (large transfers pace on this). */
export function buffered() {
  return channel && channel.readyState === 'open' ? channel.bufferedAmount : Infinity;
}

export function isOpen() {
  return !!channel && channel.readyState === 'open';
}

/**
 * Calls `fn(msg, text)` for every server message with `t === type`; `text` is the message
 * as it arrived (its size is what a bandwidth probe counts). Returns a function that
 * removes the listener again.
 */
export function on(type, fn) {
  if (!handlers.has(type)) handlers.set(type, new Set());
  handlers.get(type).add(fn);
  return () => handlers.get(type)?.delete(fn);
}

export function onOpen(fn) {
  openHooks.push(fn);
  if (isOpen()) fn();
}

function dispatch(ev) {
  let msg;
  try {
    msg = JSON.parse(ev.data);
  } catch {
    console.warn('kelpie: ignoring a data-channel message that is not JSON');
    return;
  }
  for (const fn of (msg && handlers.get(msg.t)) || []) {
    try {
      fn(msg, ev.data);
    } catch (err) {
      console.error(`kelpie: handling '${msg.t}' failed`, err);
    }
  }
}

/** Called by the signalling session whenever the channel changes (null when gone). */
export function setChannel(c) {
  channel = c;
  if (!c) return;
  c.addEventListener('message', dispatch);
  const opened = () => openHooks.forEach((fn) => fn());
  if (c.readyState === 'open') opened();
  else c.addEventListener('open', opened);
}

export function current() {
  return channel;
}
