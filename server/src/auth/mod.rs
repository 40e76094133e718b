//! Who may watch and control the desktop.
//!
//! The decision is pure ([`Auth::check`]): the HTTP layer gathers what the request carries
//! (headers, cookie, `?token=`, peer address) and acts on the [`Verdict`]. `/health` and
//! `/metrics` stay open so that probes and Prometheus need no credentials.

pub mod cidr;
pub mod limiter;
pub mod token;

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::digest;

pub use cidr::Cidr;
pub use token::{TokenError, TokenKey};

/// Name of the session cookie a `?token=` is exchanged for.
pub const COOKIE: &str = "kelpie_token";

/// The configured authentication.
#[derive(Debug)]
pub enum Auth {
    None,
    Basic { user: String, password: Secret },
    Token { key: TokenKey },
    TrustedHeader { header: String, proxies: Vec<Cidr> },
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
    Allow { user: String, via: Via },
    Deny(String),
}

/// Hashes before comparing, so the comparison is constant-time and length-independent.
fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (digest::digest(&digest::SHA256, a), digest::digest(&digest::SHA256, b));
    a.as_ref().iter().zip(b.as_ref()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    pub fn is_none(&self) -> bool {
        matches!(self, Auth::None)
    }

    pub fn realm_header(&self) -> Option<&'static str> {
        matches!(self, Auth::Basic { .. }).then_some("Basic realm=\"Kelpie\", charset=\"UTF-8\"")
    }

    /// Decides a request at time `now_unix`.
    pub fn check(&self, p: &Presented<'_>, now_unix: u64) -> Verdict {
        match self {
            Auth::None => Verdict::Allow { user: "kelpie".into(), via: Via::Nothing },
            Auth::Basic { user, password } => {
                let Some(value) = p.authorization.and_then(|a| a.strip_prefix("Basic ")) else {
                    return Verdict::Deny("no credentials".into());
                };
                let decoded = STANDARD.decode(value.trim()).unwrap_or_default();
                let (u, pw) = match decoded.iter().position(|&b| b == b':') {
                    Some(i) => (&decoded[..i], &decoded[i + 1..]),
                    None => return Verdict::Deny("malformed Basic credentials".into()),
                };
                // Both compared, always, so timing does not reveal which one was wrong.
                let ok = secret_eq(u, user.as_bytes()) & secret_eq(pw, password.expose());
                if ok {
                    Verdict::Allow { user: user.clone(), via: Via::Header }
                } else {
                    Verdict::Deny("wrong user name or password".into())
                }
            }
            Auth::Token { key } => {
                let bearer = p.authorization.and_then(|a| a.strip_prefix("Bearer ")).map(str::trim);
                let candidates =
                    [(p.query_token, Via::QueryToken), (bearer, Via::Header), (p.cookie_token, Via::Cookie)];
                let mut last = "no token".to_string();
                for (tok, via) in candidates {
                    let Some(tok) = tok else { continue };
                    match key.verify(tok, now_unix) {
                        Ok(user) => return Verdict::Allow { user, via },
                        Err(e) => last = e.to_string(),
                    }
                }
                Verdict::Deny(last)
            }
            Auth::TrustedHeader { header, proxies } => {
                let Some(peer) = p.peer else { return Verdict::Deny("unknown peer address".into()) };
                if !proxies.iter().any(|c| c.contains(peer)) {
                    return Verdict::Deny(format!("{peer} is not a trusted proxy"));
                }
                match p.trusted_header.map(str::trim).filter(|u| token::valid_user(u)) {
                    Some(user) => Verdict::Allow { user: user.to_owned(), via: Via::Header },
                    None => Verdict::Deny(format!("missing or invalid {header} header")),
                }
            }
        }
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

    fn basic() -> Auth {
        Auth::Basic { user: "kelpie".into(), password: Secret::new("s3cret pw") }
    }

    fn header(user: &str, pw: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{pw}")))
    }

    #[test]
    fn basic_accepts_only_the_right_pair() {
        let a = basic();
        let good = header("kelpie", "s3cret pw");
        assert!(matches!(
            a.check(&Presented { authorization: Some(&good), ..Default::default() }, 0),
            Verdict::Allow { .. }
        ));
        for bad in [header("kelpie", "wrong"), header("root", "s3cret pw"), "Basic !!!".into(), "Bearer x".into()] {
            assert!(
                matches!(a.check(&Presented { authorization: Some(&bad), ..Default::default() }, 0), Verdict::Deny(_)),
                "{bad}"
            );
        }
        assert!(matches!(a.check(&Presented::default(), 0), Verdict::Deny(_)));
    }

    #[test]
    fn token_from_query_header_or_cookie() {
        let key = TokenKey::new(b"0123456789abcdef0123");
        let t = key.mint("alice", 100).unwrap();
        let a = Auth::Token { key };
        let q = Presented { query_token: Some(&t), ..Default::default() };
        assert_eq!(a.check(&q, 50), Verdict::Allow { user: "alice".into(), via: Via::QueryToken });
        let bearer = format!("Bearer {t}");
        let h = Presented { authorization: Some(&bearer), ..Default::default() };
        assert_eq!(a.check(&h, 50), Verdict::Allow { user: "alice".into(), via: Via::Header });
        let c = Presented { cookie_token: Some(&t), ..Default::default() };
        assert_eq!(a.check(&c, 50), Verdict::Allow { user: "alice".into(), via: Via::Cookie });
        assert_eq!(a.check(&c, 100), Verdict::Deny("token expired".into()));
        assert!(matches!(a.check(&Presented::default(), 50), Verdict::Deny(_)));
    }

    #[test]
    fn trusted_header_only_from_trusted_proxies() {
        let a =
            Auth::TrustedHeader { header: "x-forwarded-user".into(), proxies: vec!["127.0.0.1/32".parse().unwrap()] };
        let from = |ip: &str, user: Option<&'static str>| Presented {
            peer: Some(ip.parse().unwrap()),
            trusted_header: user,
            ..Default::default()
        };
        assert_eq!(
            a.check(&from("127.0.0.1", Some("bob")), 0),
            Verdict::Allow { user: "bob".into(), via: Via::Header }
        );
        assert!(matches!(a.check(&from("10.0.0.9", Some("bob")), 0), Verdict::Deny(_)));
        assert!(matches!(a.check(&from("127.0.0.1", None), 0), Verdict::Deny(_)));
        assert!(matches!(a.check(&from("127.0.0.1", Some("bob smith")), 0), Verdict::Deny(_)));
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", basic()), "Basic { user: \"kelpie\", password: <secret> }");
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
