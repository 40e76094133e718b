/**
 * Share links (owners only): `POST share` next to the page asks the server for a signed,
 * expiring token for a role, and the link is the page's own address with `#token=` (a
 * fragment: it never reaches proxy logs; login.js swaps it for the login cookie).
 * The server is the authority on who may share and what it accepts; this module checks
 * the name first only so the user hears why in words rather than as a 400.
 * No DOM: the People panel (people.js) shows it, the unit tests call it with a fake fetch.
 */

/** Expiry choices offered, in seconds, with their labels. Short by default: links leak. */
export const SHARE_TTLS = Object.freeze([
  [3600, '1 hour'],
  [28800, '8 hours'],
  [86400, '1 day'],
  [604800, '7 days'],
]);

/** Roles a link may carry (never `owner`: owners come from the server's own login). */
export const SHARE_ROLES = Object.freeze([
  ['viewer', 'View only'],
  ['guest', 'Guest (can be given control)'],
]);

/** What the server accepts as a display name: it shows in logs and in everyone's People list. */
const NAME_RE = /^[A-Za-z0-9._@-]{1,64}$/;

/**
 * Checks the optional display name. Returns `{ ok: true, name }` (name null when empty) or
 * `{ ok: false, why, suggestion }` with a name the server would accept, when there is one.
 */
export function checkShareName(raw) {
  const name = String(raw ?? '').trim();
  if (!name) return { ok: true, name: null };
  if (NAME_RE.test(name)) return { ok: true, name };
  const suggestion = name.replace(/[^A-Za-z0-9._@-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 64) || null;
  const why = name.length > 64
    ? 'The name is longer than 64 characters.'
    : 'A name may only use letters A–Z, digits and . _ @ - (no spaces or accents): it appears in logs and people lists.';
  return { ok: false, why, suggestion: suggestion !== name ? suggestion : null };
}

/** The link for `token`: the page's base address (its own query and fragment dropped). */
export function shareUrl(href, token) {
  const base = new URL(href);
  base.search = '';
  base.hash = '';
  return new URL(`./#token=${encodeURIComponent(token)}`, base).href;
}

/**
 * Asks the server for a link. Resolves to `{ ok: true, url, expires, role }` or
 * `{ ok: false, error }` with a sentence to show (the server's own text when it gave one).
 */
export async function createShare({ role, ttl, name }, { href = globalThis.location?.href, fetch = globalThis.fetch } = {}) {
  const checked = checkShareName(name);
  if (!checked.ok) return { ok: false, error: checked.suggestion ? `${checked.why} Try "${checked.suggestion}".` : checked.why };
  const body = { role, ttl: Number(ttl) };
  if (checked.name) body.name = checked.name;
  let res;
  try {
    // Relative: behind a proxy the page lives under a base path, and so does `share`.
    res = await fetch('share', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (err) {
    return { ok: false, error: `Cannot reach the server: ${err.message || err}` };
  }
  if (res.status !== 200) {
    const text = (await res.text().catch(() => '')).trim();
    const fallback = {
      403: 'Only owners may share this desktop.',
      404: 'Sharing is not available on this server.',
    }[res.status] || 'The server refused the request.';
    return { ok: false, error: `${text || fallback} (HTTP ${res.status})` };
  }
  let answer;
  try {
    answer = await res.json();
  } catch {
    return { ok: false, error: 'The server answered with something that is not a share link.' };
  }
  if (typeof answer?.token !== 'string' || !answer.token) {
    return { ok: false, error: 'The server answered without a token.' };
  }
  return { ok: true, url: shareUrl(href, answer.token), expires: Number(answer.expires) || null, role: answer.role || role };
}

/** "View only link, valid until 14:05 on 3 May" style description of a created link. */
export function describeShare({ role, expires }, locale = undefined) {
  const label = (SHARE_ROLES.find(([r]) => r === role) || [role, role])[1];
  if (!expires) return `${label} link created.`;
  const when = new Date(expires * 1000).toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
  return `${label} link, valid until ${when}. Anyone with it can join as long as it is valid.`;
}
