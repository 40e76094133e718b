/**
 * Touch gestures on phones and tablets, turned into what a mouse would have done:
 *
 * | gesture | remote effect |
 * |---|---|
 * | tap | left click where the finger was |
 * | drag (one finger moves > 10 px) | left button held while moving |
 * | long press (600 ms without moving) | right click |
 * | two fingers moving together | wheel scroll, both axes, smooth |
 * | two fingers pinching | zoom of the local view (the remote screen is unchanged) |
 *
 * The view zoom is a CSS transform on the video; input.js maps positions through
 * getBoundingClientRect, which includes it, so taps land right when zoomed in.
 */

const DRAG_START_PX = 10;
const LONG_PRESS_MS = 600;
/** CSS pixels of two-finger travel per wheel notch. */
const SCROLL_PX_PER_NOTCH = 40;
/** A change of finger distance beyond this ratio makes a two-finger gesture a pinch. */
const PINCH_START_RATIO = 0.12;
const MAX_ZOOM = 5;

const LEFT = 0;
const RIGHT = 2;

export function attachTouch(video, send, pointer) {
  /** pointerId → {x, y} in client pixels, for fingers on the screen. */
  const fingers = new Map();
  let single = null; // {start, last, state: 'pending'|'drag'|'done', timer}
  let pair = null; // {mid, dist, mode: 'undecided'|'scroll'|'pinch', zoom0, origin}
  const view = { zoom: 1, x: 0, y: 0 };

  const point = (ev) => ({ x: ev.clientX, y: ev.clientY });
  const dist = (a, b) => Math.hypot(a.x - b.x, a.y - b.y);
  const remote = (p) => pointer.position({ clientX: p.x, clientY: p.y });

  function applyView() {
    if (view.zoom <= 1.001) Object.assign(view, { zoom: 1, x: 0, y: 0 });
    video.style.transformOrigin = '0 0';
    video.style.transform = view.zoom === 1 ? '' : `translate(${view.x}px, ${view.y}px) scale(${view.zoom})`;
  }

  function click(p, button) {
    const r = remote(p);
    if (!r) return;
    pointer.moveTo(r);
    pointer.button(button, true);
    pointer.button(button, false);
  }

  function cancelSingle() {
    if (!single) return;
    clearTimeout(single.timer);
    if (single.state === 'drag') pointer.button(LEFT, false);
    single = null;
  }

  function pairState() {
    const [a, b] = [...fingers.values()];
    return { mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }, dist: Math.max(1, dist(a, b)) };
  }

  video.addEventListener('pointerdown', (ev) => {
    if (ev.pointerType !== 'touch') return;
    ev.preventDefault();
    try { video.setPointerCapture(ev.pointerId); } catch { /* synthetic */ }
    fingers.set(ev.pointerId, point(ev));
    if (fingers.size === 1) {
      const start = point(ev);
      single = { start, last: start, state: 'pending', timer: 0 };
      single.timer = setTimeout(() => {
        if (single?.state === 'pending') {
          click(single.start, RIGHT);
          single.state = 'done';
        }
      }, LONG_PRESS_MS);
      const r = remote(start);
      if (r) pointer.moveTo(r); // hover effects where the finger is
    } else if (fingers.size === 2) {
      cancelSingle();
      const s = pairState();
      pair = { ...s, mode: 'undecided', dist0: s.dist, zoom0: view.zoom, scrolled: { x: 0, y: 0 } };
    }
  });

  video.addEventListener('pointermove', (ev) => {
    if (ev.pointerType !== 'touch' || !fingers.has(ev.pointerId)) return;
    ev.preventDefault();
    fingers.set(ev.pointerId, point(ev));
    if (fingers.size === 1 && single) {
      const p = point(ev);
      single.last = p;
      if (single.state === 'pending' && dist(p, single.start) > DRAG_START_PX) {
        clearTimeout(single.timer);
        const r0 = remote(single.start);
        if (r0) {
          pointer.moveTo(r0);
          pointer.button(LEFT, true);
          single.state = 'drag';
        }
      }
      if (single.state === 'drag') {
        const r = remote(p);
        if (r) pointer.moveTo(r);
      }
    } else if (fingers.size === 2 && pair) {
      const s = pairState();
      if (pair.mode === 'undecided') {
        if (Math.abs(s.dist / pair.dist0 - 1) > PINCH_START_RATIO) pair.mode = 'pinch';
        else if (dist(s.mid, pair.mid) > DRAG_START_PX / 2) pair.mode = 'scroll';
      }
      if (pair.mode === 'scroll') {
        // Content follows the fingers: moving them up scrolls down, like a phone.
        const dx = -(s.mid.x - pair.mid.x) / SCROLL_PX_PER_NOTCH;
        const dy = -(s.mid.y - pair.mid.y) / SCROLL_PX_PER_NOTCH;
        if (dx || dy) send({ t: 'w', dx, dy });
      } else if (pair.mode === 'pinch') {
        const zoom = Math.min(MAX_ZOOM, Math.max(1, pair.zoom0 * (s.dist / pair.dist0)));
        // Keep the content under the old midpoint under the new one (zoom and pan).
        const lx = (pair.mid.x - view.x) / view.zoom;
        const ly = (pair.mid.y - view.y) / view.zoom;
        view.zoom = zoom;
        view.x = s.mid.x - lx * zoom;
        view.y = s.mid.y - ly * zoom;
        applyView();
      }
      // While undecided, motion is measured from where the fingers started, so slow
      // gestures still decide and no scroll or pan is lost.
      if (pair.mode !== 'undecided') pair.mid = s.mid;
    }
  });

  const lift = (ev) => {
    if (ev.pointerType !== 'touch' || !fingers.has(ev.pointerId)) return;
    ev.preventDefault();
    fingers.delete(ev.pointerId);
    if (single && fingers.size === 0) {
      clearTimeout(single.timer);
      if (ev.type === 'pointercancel') {
        cancelSingle();
      } else if (single.state === 'pending') {
        click(single.start, LEFT);
      } else if (single.state === 'drag') {
        const r = remote(point(ev));
        if (r) pointer.moveTo(r);
        pointer.button(LEFT, false);
      }
      single = null;
    }
    if (fingers.size < 2) pair = null;
  };
  video.addEventListener('pointerup', lift);
  video.addEventListener('pointercancel', lift);

  return {
    /** Back to the whole screen (settings panel, double-tap with two fingers later). */
    resetZoom() {
      Object.assign(view, { zoom: 1, x: 0, y: 0 });
      applyView();
    },
    get zoom() { return view.zoom; },
  };
}
