/**
 * Logs in with a `#token=` link: takes the token out of the address at once, posts it to
 * `login` (which answers with the HttpOnly cookie), then reloads the page clean.
 *
 * Why a fragment: it never leaves the browser, so unlike `?token=` the token does not
 * reach proxy access logs, Referer headers or the server's own request line. It runs as
 * a classic script, before the app's modules, both on the page and on the 401 page a
 * browser without the cookie gets. On the page, `window.kelpieLogin` holds the app back
 * until the swap is done (it never settles when the page reloads).
 */
(function () {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!match) return;
  let token;
  try {
    token = decodeURIComponent(match[1]);
  } catch {
    token = match[1];
  }
  const rest = location.hash.slice(1).split('&').filter((kv) => !kv.startsWith('token=')).join('&');
  history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  const say = (title, advice) => {
    const h = document.getElementById('title');
    const p = document.getElementById('advice');
    if (h) h.textContent = title;
    if (p) p.textContent = advice;
  };
  window.kelpieLogin = fetch('login', {
    method: 'POST',
    body: token,
    credentials: 'same-origin',
    headers: { 'content-type': 'text/plain' },
    cache: 'no-store',
  }).then((r) => {
    if (r.ok) {
      location.reload();
      return new Promise(() => {});
    }
    const why = r.headers.get('x-kelpie-denied');
    window.kelpieLoginRefused = why || String(r.status);
    if (why === 'expired') say('This link has expired', 'Ask whoever shared the desktop for a new link, then open it.');
    else say('This link does not open this desktop', 'Check that the whole link was copied, or ask for a new one.');
    return undefined;
  }, () => {
    say('The desktop cannot be reached', 'Check the connection, then reload the page.');
    return undefined;
  });
}());
