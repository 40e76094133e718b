/**
 * Which of the page's two ways of decoding the desktop's H.264 video this browser has:
 * WebRTC's (every Chromium and Safari, Firefox once its OpenH264 plugin is installed) and
 * WebCodecs', which the WebSocket transport uses (secure pages only).
 *
 * Firefox downloads OpenH264 on first run; where that download is blocked (offline sites,
 * filtering proxies) its WebRTC offers VP8, VP9 and AV1 only and would reject the video.
 * The page finds that out before asking for WebRTC, and when neither way exists it says
 * what to do instead of retrying a connection that cannot work.
 */

/** A Constrained Baseline level 3.1 stream: what any H.264 decoder must take. */
const PROBE_CODEC = 'avc1.42e01f';

/**
 * Whether WebRTC here can receive H.264: false without WebRTC at all (WebKitGTK as
 * Debian builds it), true when the browser has it but does not list codecs (try it).
 */
export function webrtcDecodesH264(receiver = globalThis.RTCRtpReceiver, peer = globalThis.RTCPeerConnection) {
  if (typeof peer !== 'function') return false;
  const caps = receiver?.getCapabilities?.('video');
  if (!caps || !Array.isArray(caps.codecs)) return true;
  return caps.codecs.some((c) => typeof c.mimeType === 'string' && c.mimeType.toLowerCase() === 'video/h264');
}

/** Whether WebCodecs here decodes H.264 (it is withheld from insecure pages). */
export async function webcodecsDecodesH264(decoder = globalThis.VideoDecoder) {
  if (typeof decoder !== 'function' || typeof decoder.isConfigSupported !== 'function') return false;
  try {
    const { supported } = await decoder.isConfigSupported({ codec: PROBE_CODEC, optimizeForLatency: true });
    return supported === true;
  } catch {
    return false;
  }
}

/** Whether an SDP answer rejects its video section (port 0, as Firefox answers a codec it lacks). */
export function answerRejectsVideo(sdp) {
  return /^m=video 0 /m.test(sdp);
}

/**
 * What the page says when it cannot show the desktop: why, and what the person can do.
 * `secure`: the page is a secure context; `firefox`: the browser is Firefox;
 * `socketOffered`: the server offers the WebSocket transport at all.
 */
export function cannotDecodeText({ secure, firefox, socketOffered = true }) {
  const fixes = [];
  if (socketOffered && !secure) fixes.push('open Kelpie over https:// (or on localhost), where the browser decodes it itself');
  if (firefox) fixes.push("enable the OpenH264 plugin in Firefox's add-ons (Add-ons and themes, Plugins, OpenH264: Always Activate)");
  if (!socketOffered) fixes.push('ask the administrator to allow the WebSocket transport (--transport auto)');
  if (!fixes.length) fixes.push('use a current Chrome, Edge, Firefox or Safari');
  return `This browser cannot decode H.264, the desktop's video: ${fixes.join(', or ')}.`;
}

/** The page's two ways, probed once: {webrtc, websocket}. */
export async function probeCodecs(socketMediaSupported) {
  const webrtc = webrtcDecodesH264();
  const websocket = socketMediaSupported && await webcodecsDecodesH264();
  return { webrtc, websocket };
}

/** Whether this is Firefox (its own fix, OpenH264, is named in the message). */
export function isFirefox(ua = globalThis.navigator?.userAgent || '') {
  return /\bFirefox\//.test(ua) && !/\bSeamonkey\//i.test(ua);
}
