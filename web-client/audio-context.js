/**
 * The one way the page opens a Web Audio context (socket playback and microphone capture
 * both need one): at 48 kHz, Opus's own rate, so decoded and captured PCM reaches the
 * worklet without resampling of ours (the browser converts to the device's rate), with
 * the interactive latency hint, and with our worklet module loading.
 *
 * The worklet's URL is resolved against this module, not the page, so it is found under
 * any base path a proxy puts the page at.
 */

/** Opus always decodes at 48 kHz (RFC 7587); the worklet's targets assume this rate. */
export const OPUS_RATE = 48_000;

const WORKLET_URL = new URL('./audio-worklet.js', import.meta.url).href;

/** Web Audio with worklets is there (all current browsers, secure or not). */
export function audioWorkletSupported() {
  return typeof AudioContext === 'function' && typeof AudioWorkletNode === 'function';
}

/**
 * A new context and the promise of its worklet module. The context may start suspended
 * (autoplay rules): the caller decides what to do about that. Throws when the browser
 * cannot run a context at 48 kHz (then it would play Opus at the wrong speed).
 */
export function openAudioContext(latencyHint = 'interactive') {
  const context = new AudioContext({ sampleRate: OPUS_RATE, latencyHint });
  if (context.sampleRate !== OPUS_RATE) {
    context.close().catch(() => {});
    throw new Error(`this browser runs audio at ${context.sampleRate} Hz only`);
  }
  return { context, ready: context.audioWorklet.addModule(WORKLET_URL) };
}
