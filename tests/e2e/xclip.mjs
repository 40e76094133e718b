/**
 * The X clipboard of a test display, through xclip: set it (xclip -i stays running as
 * the selection owner until another client takes the clipboard, as a tracked process
 * of the environment) and read it as any X client would.
 */
import { execFile } from 'node:child_process';

let owners = 0;

/** Makes xclip the owner of the CLIPBOARD selection of `env`'s display, holding `data`. */
export function xclipSet(env, data, mime) {
  const args = ['-quiet', '-selection', 'clipboard', ...(mime ? ['-t', mime] : []), '-i'];
  const p = env.spawn(`xclip-${++owners}`, 'xclip', args,
    { env: { DISPLAY: env.display }, stdio: ['pipe', 'ignore', 'pipe'] });
  p.child.stdin.end(data);
  return p;
}

/** The CLIPBOARD selection as a Buffer (bounded: xclip gives up after its timeout). */
export function xclipGet(env, mime) {
  const args = ['-o', '-selection', 'clipboard', ...(mime ? ['-t', mime] : [])];
  return new Promise((resolve, reject) => {
    execFile('xclip', args, { env: { ...process.env, DISPLAY: env.display }, encoding: 'buffer',
      maxBuffer: 64 << 20, timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}
