/**
 * Who is watching the desktop and who holds its keyboard and mouse ("control"), as the
 * server last told us in its `room` message (docs/protocol.md). The server is the
 * authority: this module only remembers its answer, derives what this page may do from
 * it, and tells the rest of the client when that changes. No DOM and no I/O, so every
 * rule here is unit-tested in node.
 *
 * Roles: `owner` (controls, changes settings, gives and takes control, shares links),
 * `guest` (watches, may be given control), `viewer` (only watches; no clipboard, no files).
 */

export const ROLES = Object.freeze(['owner', 'guest', 'viewer']);

/**
 * Data-channel messages the server refuses (and counts) from a participant without
 * control. Everything else (`kf`, a keyframe request, today) may always go out.
 */
export const CONTROL_ONLY = Object.freeze(new Set(['m', 'b', 'w', 'k', 'r', 'txt', 'rm', 'clip', 'resize', 'set', 'lock', 'gp', 'gpoff']));

/** Whether `msg` may be sent by a participant who does not hold control. */
export function allowedWithoutControl(msg) {
  return !CONTROL_ONLY.has(msg?.t);
}

/**
 * `send` that lets only what the server would accept through: control-only messages go
 * out while `hasControl()` says so, and are otherwise dropped (returning false, like a
 * closed channel) and reported to `onRefused(msg)`.
 */
export function gateSend(send, hasControl, onRefused = () => {}) {
  const gated = (msg) => {
    if (allowedWithoutControl(msg) || hasControl()) return send(msg);
    onRefused(msg);
    return false;
  };
  /** True while messages of kind `t` would be held back (no control), so callers can
   *  leave the browser's own handling alone (a watcher's F5 or Ctrl+F still work). */
  gated.holdsBack = (t) => !allowedWithoutControl({ t }) && !hasControl();
  return gated;
}

/**
 * A `room` message as we keep it: malformed participants dropped, fields coerced, so the
 * rest of the client never has to second-guess data from the network. Null when the
 * message is not a room at all.
 */
export function normaliseRoom(msg) {
  if (!msg || typeof msg.you !== 'string' || !Array.isArray(msg.participants)) return null;
  const participants = msg.participants
    .filter((p) => p && typeof p.id === 'string' && ROLES.includes(p.role))
    .map((p) => ({
      id: p.id,
      user: typeof p.user === 'string' && p.user ? p.user : p.id,
      role: p.role,
      requesting: p.requesting === true,
    }));
  const control = typeof msg.control === 'string' && participants.some((p) => p.id === msg.control)
    ? msg.control : null;
  for (const p of participants) p.control = p.id === control;
  return { you: msg.you, control, participants };
}

/** Whether the page that got `room` holds control. */
export function holdsControl(room) {
  return !!room && room.control !== null && room.control === room.you;
}

/** The participant holding control, or null. */
export function controller(room) {
  return room?.participants.find((p) => p.id === room.control) || null;
}

/** This page's own participant entry, or null. */
export function me(room) {
  return room?.participants.find((p) => p.id === room.you) || null;
}

/**
 * What the People panel offers this page, given the room and our role from the welcome
 * (our own entry in the room wins: it is newer):
 * - `request`: ask for control (owners and guests without it); `waiting` while the
 *   request is unanswered, so it is not sent twice;
 * - `release`: give control up (whoever holds it);
 * - `take`: take control at once (owners without it);
 * - `grant`: ids of the others an owner may give control to (owners and guests not in
 *   control; viewers can never hold it);
 * - `share`: create share links (owners).
 */
export function availableActions(room, role) {
  const self = me(room);
  const myRole = self?.role || role;
  const mine = holdsControl(room);
  const canHold = myRole === 'owner' || myRole === 'guest';
  const owner = myRole === 'owner';
  return {
    request: !!room && canHold && !mine,
    waiting: !!self?.requesting && !mine,
    release: mine,
    take: !!room && owner && !mine,
    grant: owner && room
      ? room.participants.filter((p) => p.id !== room.you && p.role !== 'viewer' && !p.control).map((p) => p.id)
      : [],
    share: owner,
  };
}

/** The status badge's text once connected: who can act on the desktop. */
export function badgeText(room, role) {
  if ((me(room)?.role || role) === 'viewer') return 'connected · view only';
  if (!room || holdsControl(room)) return 'connected';
  const c = controller(room);
  return c ? `connected · ${c.user} has control` : 'connected · no one has control';
}

/**
 * A short hint for input dropped because we lack control, or null when the dropped
 * message was not a deliberate action (pointer motion, releases happen all the time).
 */
export function refusedHint(msg, role) {
  const deliberate = (msg.t === 'b' || msg.t === 'k') ? msg.d === true : ['w', 'txt'].includes(msg.t);
  if (!deliberate) return null;
  return role === 'viewer'
    ? 'View only: your keyboard and mouse do not reach this desktop.'
    : 'You are watching: ask for control in "People" to use the keyboard and mouse.';
}

/**
 * The room state of this page. `setWelcome` starts a new connection (its role; no room
 * yet), `update` stores a `room` message, `clear` forgets it when the connection is
 * gone. Listeners get `(room, { gained, lost })`, where gained/lost say whether this
 * page just got or lost control.
 */
export class Room {
  #room = null;
  #role = null;
  #listeners = [];

  get room() { return this.#room; }
  get role() { return me(this.#room)?.role || this.#role; }
  hasControl() { return holdsControl(this.#room); }

  onChange(fn) { this.#listeners.push(fn); }

  setWelcome(welcome) {
    this.#role = ROLES.includes(welcome?.role) ? welcome.role : null;
    this.#set(null);
  }

  /** Stores a `room` message; returns false (and keeps the last one) if it is malformed. */
  update(msg) {
    const room = normaliseRoom(msg);
    if (!room) return false;
    this.#set(room);
    return true;
  }

  clear() {
    if (this.#room) this.#set(null);
  }

  #set(room) {
    const had = this.hasControl();
    this.#room = room;
    const has = this.hasControl();
    const change = { gained: has && !had, lost: had && !has };
    for (const fn of this.#listeners) {
      try {
        fn(this, change);
      } catch (err) {
        console.error('kelpie: a room listener failed', err);
      }
    }
  }
}
