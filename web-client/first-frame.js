/**
 * When a <video> first shows a picture. requestVideoFrameCallback says so exactly, but
 * not every browser has it (Firefox before 132, Safari before 15.4); there the first
 * animation frame after the element has decoded a picture stands in, a frame late at most.
 */

/** Animation frames the fallback waits at most (about a minute at 60 Hz). */
const MAX_FRAMES = 3600;

/** Calls `cb` once, when `video` presents its first frame of the current stream. */
export function onFirstFrame(video, cb) {
  if (typeof video.requestVideoFrameCallback === 'function') {
    video.requestVideoFrameCallback(() => cb());
    return;
  }
  const stream = video.srcObject;
  let frames = 0;
  const check = () => {
    if (video.srcObject !== stream || ++frames > MAX_FRAMES) return; // replaced, or never
    if (video.readyState >= 2 && video.videoWidth > 0) cb();
    else requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
}
