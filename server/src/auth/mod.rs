//! Who may watch and control the desktop.
//!
//! The decision is pure ([`Auth::check`]): the HTTP layer gathers what the request carries
//! (headers, cookie, `?token=`, peer address) and acts on the [`Verdict`]. `/health` and
//! `/metrics` stay open so that probes and Prometheus need no credentials.

pub mod cidr;
pub mod client;
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

/// When the login cookie is marked `Secure` (`--cookie-secure`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CookieSecure {
    /// When the request came over https: Kelpie's own TLS, or a trusted proxy's
    /// `X-Forwarded-Proto: https`.
    #[default]
    Auto,
    Always,
    Never,
}

impl CookieSecure {
    /// Whether a cookie set in answer to a request gets `Secure`.
    pub fn applies(self, own_tls: bool, proxy_says_https: bool) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => own_tls || proxy_says_https,
        }
    }
}

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
    /// The Basic user name and password (the shell hands out a session cookie, so that
    /// the browser's later requests need no password check).
    Password,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow { user: String, role: Role, via: Via },
    Deny(Denial),
}

/// Why a request was refused, and what kind of failure it was: only a wrong password is
/// a guess worth slowing down ([`limiter`]); an expired link is worth telling the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub why: String,
    pub kind: DenyKind,
}

/// Kinds of refusal, from the least telling to the most (a request that presents several
/// credentials is refused as the most telling of its failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DenyKind {
    /// Nothing was presented.
    Missing,
    /// Refused for what the mode requires (an untrusted proxy, a bad header).
    Refused,
    /// A well-signed token past its expiry: not a guess; the person needs a new link.
    Expired,
    /// A token that is not ours: malformed, signed with another secret (a desktop that
    /// restarted with a per-run secret), or for another desktop.
    BadToken,
    /// A wrong user name or password: the one guessable secret.
    WrongPassword,
}

impl DenyKind {
    /// The name pages see in the `X-Kelpie-Denied` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Refused => "refused",
            Self::Expired => "expired",
            Self::BadToken => "invalid",
            Self::WrongPassword => "wrong-password",
        }
    }
}

impl Verdict {
    fn deny(why: impl Into<String>, kind: DenyKind) -> Self {
        Self::Deny(Denial { why: why.into(), kind })
    }
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
        // The most telling failure so far.
        let mut why: Option<Denial> = None;
        let failed = |d: Denial, why: &mut Option<Denial>| {
            if why.as_ref().is_none_or(|w| d.kind >= w.kind) {
                *why = Some(d);
            }
        };
        let token =
            |tok: &str, via: Via, why: &mut Option<Denial>| match self.tokens.verify(tok, now_unix, &self.desktop) {
                Ok(c) => Some(Verdict::Allow { user: c.user, role: c.role, via }),
                Err(e) => {
                    let kind = if e == TokenError::Expired { DenyKind::Expired } else { DenyKind::BadToken };
                    failed(Denial { why: e.to_string(), kind }, why);
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
                        Ok(()) => return Verdict::Allow { user: user.clone(), role: Role::Owner, via: Via::Password },
                        Err(e) => failed(Denial { why: e.into(), kind: DenyKind::WrongPassword }, &mut why),
                    },
                    _ => failed(
                        Denial { why: "Basic credentials are not accepted here".into(), kind: DenyKind::Refused },
                        &mut why,
                    ),
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
                let Some(peer) = p.peer else { return Verdict::deny("unknown peer address", DenyKind::Refused) };
                if !cidr::any_contains(proxies, peer) {
                    return Verdict::deny(format!("{peer} is not a trusted proxy"), DenyKind::Refused);
                }
                let Some(user) = p.trusted_header.map(str::trim).filter(|u| token::valid_user(u)) else {
                    return Verdict::deny(format!("missing or invalid {header} header"), DenyKind::Refused);
                };
                let role = match p.trusted_role.map(str::parse::<Role>) {
                    None => Role::Owner,
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        let name = role_header.as_deref().unwrap_or("role");
                        return Verdict::deny(format!("{name} header: {e}"), DenyKind::Refused);
                    }
                };
                Verdict::Allow { user: user.to_owned(), role, via: Via::Header }
            }
            Mode::Basic { .. } | Mode::Token => Verdict::Deny(why.unwrap_or_else(|| Denial {
                why: if matches!(self.mode, Mode::Basic { .. }) { "no credentials" } else { "no token" }.into(),
                kind: DenyKind::Missing,
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

/// The user name in Basic credentials (`Basic base64(user:password)`), for the throttle's
/// key; `None` for anything else.
pub fn basic_user(authorization: &str) -> Option<String> {
    let decoded = STANDARD.decode(authorization.strip_prefix("Basic ")?.trim()).ok()?;
    let i = decoded.iter().position(|&b| b == b':')?;
    Some(String::from_utf8_lossy(&decoded[..i]).into_owned())
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
            Verdict::Allow { user: "kelpie".into(), role: Role::Owner, via: Via::Password }
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
        assert_eq!(a.check(&c, 100), Verdict::deny("token expired", DenyKind::Expired));
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
    fn a_refusal_names_its_most_telling_failure() {
        let a = basic();
        let expired = token("alice", Role::Owner, 10);
        let wrong = header("kelpie", "guess");
        let both = Presented { authorization: Some(&wrong), cookie_token: Some(&expired), ..Default::default() };
        assert!(matches!(a.check(&both, 50), Verdict::Deny(Denial { kind: DenyKind::WrongPassword, .. })));
        let stale = Presented { cookie_token: Some(&expired), ..Default::default() };
        assert!(matches!(a.check(&stale, 50), Verdict::Deny(Denial { kind: DenyKind::Expired, .. })));
        let foreign = TokenKey::new(b"another secret of 20+ bytes")
            .mint(&Claims { user: "a".into(), role: Role::Owner, desktop: DESKTOP.into(), expires_unix: 100 })
            .unwrap();
        let both = Presented { query_token: Some(&foreign), cookie_token: Some(&expired), ..Default::default() };
        assert!(matches!(a.check(&both, 50), Verdict::Deny(Denial { kind: DenyKind::BadToken, .. })));
        assert!(matches!(a.check(&Presented::default(), 50), Verdict::Deny(Denial { kind: DenyKind::Missing, .. })));
        assert_eq!(basic_user(&wrong).as_deref(), Some("kelpie"));
        assert_eq!(basic_user("Bearer x"), None);
        assert_eq!(basic_user("Basic !!!"), None);
    }

    #[test]
    fn a_token_for_another_desktop_is_refused() {
        let other = key()
            .mint(&Claims { user: "a".into(), role: Role::Owner, desktop: "/other/".into(), expires_unix: 100 })
            .unwrap();
        let q = Presented { query_token: Some(&other), ..Default::default() };
        assert_eq!(with(Mode::Token).check(&q, 1), Verdict::deny("token is for another desktop", DenyKind::BadToken));
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
