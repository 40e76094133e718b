//! Who may watch and control the desktop.
//!
//! The decision is pure ([`Auth::check`]): the HTTP layer gathers what the request carries
//! (headers, cookie, `?token=`, peer address) and acts on the [`Verdict`]. `/health` and
//! `/metrics` stay open so that probes and Prometheus need no credentials.

pub mod cidr;
pub mod limiter;
pub mod role;
pub mod token;

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::digest;

pub use cidr::Cidr;
pub use role::Role;
pub use token::{Claims, TokenError, TokenKey};

/// Name of the session cookie a `?token=` is exchanged for.
pub const COOKIE: &str = "kelpie_token";

/// How requests prove who they are (`--auth`).
#[derive(Debug)]
pub enum Mode {
    None,
    Basic {
        user: String,
        password: Secret,
    },
    /// Only tokens signed with the configured secret.
    Token,
    TrustedHeader {
        header: String,
        proxies: Vec<Cidr>,
        /// Header in which the proxy may pass the user's role (owner when absent).
        role_header: Option<String>,
    },
}

/// The configured authentication: the mode, plus the key that signs share links.
///
/// Every mode accepts tokens signed with `tokens`, so that an owner can share a
/// view-only or guest link whatever the mode: with `--auth token` the key is the
/// configured secret; otherwise it is a per-run secret, and links die with the process.
#[derive(Debug)]
pub struct Auth {
    pub mode: Mode,
    pub tokens: TokenKey,
    /// Whether `tokens` is a per-run secret (links stop working when Kelpie restarts).
    pub tokens_per_run: bool,
    /// The desktop id tokens must name (`--desktop-id`).
    pub desktop: String,
}

/// Who a request (and so a participant) is, as its credentials said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub role: Role,
}

impl Identity {
    /// Probes, and everyone when `--auth none` (loopback only): owners named `kelpie`.
    pub fn anonymous_owner() -> Self {
        Self { user: "kelpie".into(), role: Role::Owner }
    }
}

/// A secret that never prints.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// What a request presents.
#[derive(Debug, Default, Clone, Copy)]
pub struct Presented<'a> {
    pub peer: Option<IpAddr>,
    pub authorization: Option<&'a str>,
    pub cookie_token: Option<&'a str>,
    pub query_token: Option<&'a str>,
    pub trusted_header: Option<&'a str>,
    pub trusted_role: Option<&'a str>,
}

impl Presented<'_> {
    /// Whether the request tried to authenticate at all. Only wrong credentials count
    /// towards the failed-login limit: otherwise anyone on a shared proxy address (every
    /// request through jupyter-server-proxy comes from 127.0.0.1) could lock the real user
    /// out just by asking without credentials.
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some() || self.cookie_token.is_some() || self.query_token.is_some()
    }
}

/// How an allowed request proved itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Nothing,
    Header,
    Cookie,
    /// A `?token=` in the URL: the page load should swap it for a cookie.
    QueryToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow { user: String, role: Role, via: Via },
    Deny(String),
}

/// Hashes before comparing, so the comparison is constant-time and length-independent.
fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (digest::digest(&digest::SHA256, a), digest::digest(&digest::SHA256, b));
    a.as_ref().iter().zip(b.as_ref()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Authentication with `mode` whose share links are signed with `tokens`.
    pub fn new(mode: Mode, tokens: TokenKey, tokens_per_run: bool, desktop: String) -> Self {
        Self { mode, tokens, tokens_per_run, desktop }
    }

    pub fn is_none(&self) -> bool {
        matches!(self.mode, Mode::None)
    }

    pub fn realm_header(&self) -> Option<&'static str> {
        matches!(self.mode, Mode::Basic { .. }).then_some("Basic realm=\"Kelpie\", charset=\"UTF-8\"")
    }

    /// A token for `claims` (which must name this desktop).
    pub fn mint(&self, user: &str, role: Role, expires_unix: u64) -> Result<String, TokenError> {
        self.tokens.mint(&Claims { user: user.to_owned(), role, desktop: self.desktop.clone(), expires_unix })
    }

    /// Decides a request at time `now_unix`.
    ///
    /// Order: a `?token=` (the link just opened says who this is), then the
    /// Authorization header (Basic or Bearer), then the token cookie (an earlier link),
    /// then the mode's own proof (trusted header, or none at all).
    pub fn check(&self, p: &Presented<'_>, now_unix: u64) -> Verdict {
        let mut why = None;
        let token =
            |tok: &str, via: Via, why: &mut Option<String>| match self.tokens.verify(tok, now_unix, &self.desktop) {
                Ok(c) => Some(Verdict::Allow { user: c.user, role: c.role, via }),
                Err(e) => {
                    *why = Some(e.to_string());
                    None
                }
            };
        if let Some(v) = p.query_token.and_then(|t| token(t, Via::QueryToken, &mut why)) {
            return v;
        }
        if let Some(auth) = p.authorization {
            if let Some(value) = auth.strip_prefix("Basic ") {
                match &self.mode {
                    Mode::Basic { user, password } => match basic_matches(value, user, password) {
                        Ok(()) => return Verdict::Allow { user: user.clone(), role: Role::Owner, via: Via::Header },
                        Err(e) => why = Some(e.into()),
                    },
                    _ => why = Some("Basic credentials are not accepted here".into()),
                }
            } else if let Some(v) = auth.strip_prefix("Bearer ").and_then(|t| token(t.trim(), Via::Header, &mut why)) {
                return v;
            }
        }
        if let Some(v) = p.cookie_token.and_then(|t| token(t, Via::Cookie, &mut why)) {
            return v;
        }
        match &self.mode {
            Mode::None => Verdict::Allow { user: "kelpie".into(), role: Role::Owner, via: Via::Nothing },
            Mode::TrustedHeader { header, proxies, role_header } => {
                let Some(peer) = p.peer else { return Verdict::Deny("unknown peer address".into()) };
                if !proxies.iter().any(|c| c.contains(peer)) {
                    return Verdict::Deny(format!("{peer} is not a trusted proxy"));
                }
                let Some(user) = p.trusted_header.map(str::trim).filter(|u| token::valid_user(u)) else {
                    return Verdict::Deny(format!("missing or invalid {header} header"));
                };
                let role = match p.trusted_role.map(str::parse::<Role>) {
                    None => Role::Owner,
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        let name = role_header.as_deref().unwrap_or("role");
                        return Verdict::Deny(format!("{name} header: {e}"));
                    }
                };
                Verdict::Allow { user: user.to_owned(), role, via: Via::Header }
            }
            Mode::Basic { .. } | Mode::Token => Verdict::Deny(why.unwrap_or_else(|| match self.mode {
                Mode::Basic { .. } => "no credentials".into(),
                _ => "no token".into(),
            })),
        }
    }
}

/// Checks Basic credentials (the part after `Basic `) against the configured pair.
fn basic_matches(value: &str, user: &str, password: &Secret) -> Result<(), &'static str> {
    let decoded = STANDARD.decode(value.trim()).unwrap_or_default();
    let Some(i) = decoded.iter().position(|&b| b == b':') else { return Err("malformed Basic credentials") };
    let (u, pw) = (&decoded[..i], &decoded[i + 1..]);
    // Both compared, always, so timing does not reveal which one was wrong.
    if secret_eq(u, user.as_bytes()) & secret_eq(pw, password.expose()) {
        Ok(())
    } else {
        Err("wrong user name or password")
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The value of `key` in a URL query string (no percent-decoding needed for our tokens).
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The query string without `key`, for redirecting a token URL to a clean one.
pub fn query_without(query: &str, key: &str) -> String {
    query.split('&').filter(|kv| !kv.is_empty() && kv.split('=').next() != Some(key)).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESKTOP: &str = "/";

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123")
    }

    fn with(mode: Mode) -> Auth {
        Auth::new(mode, key(), false, DESKTOP.into())
    }

    fn basic() -> Auth {
        with(Mode::Basic { user: "kelpie".into(), password: Secret::new("s3cret pw") })
    }

    fn header(user: &str, pw: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{pw}")))
    }

    fn token(user: &str, role: Role, expires: u64) -> String {
        key().mint(&Claims { user: user.into(), role, desktop: DESKTOP.into(), expires_unix: expires }).unwrap()
    }

    #[test]
    fn basic_accepts_only_the_right_pair_as_an_owner() {
        let a = basic();
        let good = header("kelpie", "s3cret pw");
        assert_eq!(
            a.check(&Presented { authorization: Some(&good), ..Default::default() }, 0),
            Verdict::Allow { user: "kelpie".into(), role: Role::Owner, via: Via::Header }
        );
        for bad in [header("kelpie", "wrong"), header("root", "s3cret pw"), "Basic !!!".into(), "Bearer x".into()] {
            assert!(
                matches!(a.check(&Presented { authorization: Some(&bad), ..Default::default() }, 0), Verdict::Deny(_)),
                "{bad}"
            );
        }
        assert!(matches!(a.check(&Presented::default(), 0), Verdict::Deny(_)));
    }

    #[test]
    fn token_from_query_header_or_cookie_carries_its_role() {
        let a = with(Mode::Token);
        let t = token("alice", Role::Guest, 100);
        let q = Presented { query_token: Some(&t), ..Default::default() };
        assert_eq!(a.check(&q, 50), Verdict::Allow { user: "alice".into(), role: Role::Guest, via: Via::QueryToken });
        let bearer = format!("Bearer {t}");
        let h = Presented { authorization: Some(&bearer), ..Default::default() };
        assert_eq!(a.check(&h, 50), Verdict::Allow { user: "alice".into(), role: Role::Guest, via: Via::Header });
        let c = Presented { cookie_token: Some(&t), ..Default::default() };
        assert_eq!(a.check(&c, 50), Verdict::Allow { user: "alice".into(), role: Role::Guest, via: Via::Cookie });
        assert_eq!(a.check(&c, 100), Verdict::Deny("token expired".into()));
        assert!(matches!(a.check(&Presented::default(), 50), Verdict::Deny(_)));
    }

    #[test]
    fn share_links_work_in_every_mode_and_a_link_beats_a_cookie() {
        let viewer = token("bob", Role::Viewer, 100);
        for a in [basic(), with(Mode::None)] {
            let q = Presented { query_token: Some(&viewer), ..Default::default() };
            assert!(matches!(a.check(&q, 1), Verdict::Allow { role: Role::Viewer, .. }));
        }
        let owner = token("alice", Role::Owner, 100);
        let both = Presented { query_token: Some(&viewer), cookie_token: Some(&owner), ..Default::default() };
        assert!(matches!(with(Mode::Token).check(&both, 1), Verdict::Allow { role: Role::Viewer, .. }));
        // Basic credentials win over a viewer cookie left by an earlier link.
        let good = header("kelpie", "s3cret pw");
        let owner_again = Presented { authorization: Some(&good), cookie_token: Some(&viewer), ..Default::default() };
        assert!(matches!(basic().check(&owner_again, 1), Verdict::Allow { role: Role::Owner, .. }));
    }

    #[test]
    fn a_token_for_another_desktop_is_refused() {
        let other = key()
            .mint(&Claims { user: "a".into(), role: Role::Owner, desktop: "/other/".into(), expires_unix: 100 })
            .unwrap();
        let q = Presented { query_token: Some(&other), ..Default::default() };
        assert_eq!(with(Mode::Token).check(&q, 1), Verdict::Deny("token is for another desktop".into()));
    }

    #[test]
    fn trusted_header_only_from_trusted_proxies_with_an_optional_role() {
        let a = with(Mode::TrustedHeader {
            header: "x-forwarded-user".into(),
            proxies: vec!["127.0.0.1/32".parse().unwrap()],
            role_header: Some("x-kelpie-role".into()),
        });
        let from = |ip: &str, user: Option<&'static str>, role: Option<&'static str>| Presented {
            peer: Some(ip.parse().unwrap()),
            trusted_header: user,
            trusted_role: role,
            ..Default::default()
        };
        assert_eq!(
            a.check(&from("127.0.0.1", Some("bob"), None), 0),
            Verdict::Allow { user: "bob".into(), role: Role::Owner, via: Via::Header }
        );
        assert!(matches!(
            a.check(&from("127.0.0.1", Some("bob"), Some("viewer")), 0),
            Verdict::Allow { role: Role::Viewer, .. }
        ));
        assert!(matches!(a.check(&from("127.0.0.1", Some("bob"), Some("root")), 0), Verdict::Deny(_)));
        assert!(matches!(a.check(&from("10.0.0.9", Some("bob"), None), 0), Verdict::Deny(_)));
        assert!(matches!(a.check(&from("127.0.0.1", None, None), 0), Verdict::Deny(_)));
        assert!(matches!(a.check(&from("127.0.0.1", Some("bob smith"), None), 0), Verdict::Deny(_)));
    }

    #[test]
    fn secrets_do_not_print() {
        assert!(format!("{:?}", basic()).contains("password: <secret>"));
        assert!(!format!("{:?}", basic()).contains("s3cret"));
        assert_eq!(format!("{:?}", TokenKey::new(b"abc")), "TokenKey(<secret>)");
    }

    #[test]
    fn cookie_and_query_helpers() {
        assert_eq!(cookie_value("a=1; kelpie_token=xyz; b=2", COOKIE), Some("xyz"));
        assert_eq!(cookie_value("a=1", COOKIE), None);
        assert_eq!(query_value("x=1&token=abc", "token"), Some("abc"));
        assert_eq!(query_without("x=1&token=abc&y=2", "token"), "x=1&y=2");
        assert_eq!(query_without("token=abc", "token"), "");
    }
}
