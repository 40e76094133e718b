//! TURN credentials minted outside the desktop: the broker protocol, both ends.
//!
//! Why: a desktop's user can read everything Kelpie can (same user, same pod), so a TURN
//! secret handed to Kelpie is handed to the user, who can then mint credentials that never
//! expire for anyone. With a broker, the secret lives only in a process the user cannot
//! read (a sidecar container under another UID, or the hub): Kelpie asks it for one
//! time-limited credential per viewer and never holds the secret.
//!
//! The exchange follows the "TURN REST API" draft (draft-uberti-behave-turn-rest):
//! `GET /turn?service=turn&username=NAME` answers
//! `{"username":"EXPIRY:LABEL/NAME","password":"…","ttl":SECONDS,"uris":[]}`.
//! Everything here is pure: URL and reply parsing for Kelpie's side, issuing and the
//! issuance budget for the broker's side. The sockets are in `http::turn_broker` and the
//! `kelpie-turn-broker` binary.

use std::collections::VecDeque;
use std::time::Duration;

use super::{percent_encode, rest_credentials};
use crate::auth::Secret;

/// Longest reply Kelpie reads from a broker: a credential is a few hundred bytes.
pub const MAX_REPLY_BYTES: usize = 16 * 1024;
/// Longest user name or password taken from a broker's reply.
const MAX_FIELD: usize = 512;
/// Longest viewer name put into a credential (the rest is cut).
const MAX_USER: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BrokerError {
    #[error("{0:?} is not a TURN broker URL (expected http://HOST:PORT/PATH; the broker is local to the pod, so plain HTTP)")]
    BadUrl(String),
    #[error("the broker's reply is not HTTP")]
    NotHttp,
    #[error("the broker answered HTTP {0}")]
    Status(u16),
    #[error("the broker's reply is over {MAX_REPLY_BYTES} bytes")]
    TooLong,
    #[error("the broker's reply is not a credential: {0}")]
    BadReply(String),
}

/// Where Kelpie asks for credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl BrokerUrl {
    pub fn parse(url: &str) -> Result<Self, BrokerError> {
        let bad = || BrokerError::BadUrl(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/turn"),
        };
        let (host, port) = match hostport.strip_prefix('[') {
            // [v6]:port or [v6]
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or_else(bad)?;
                match after.strip_prefix(':') {
                    Some(p) => (h, p.parse::<u16>().map_err(|_| bad())?),
                    None if after.is_empty() => (h, 80),
                    None => return Err(bad()),
                }
            }
            None => match hostport.split_once(':') {
                Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
                None => (hostport, 80),
            },
        };
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if host.is_empty()
            || port == 0
            || !printable(host)
            || !printable(path)
            || host.contains('@')
            || path.contains('?')
        {
            return Err(bad());
        }
        Ok(Self { host: host.to_owned(), port, path: path.to_owned() })
    }

    /// The request for a credential for `user`.
    pub fn request(&self, user: &str) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!(
            "GET {}?service=turn&username={} HTTP/1.1\r\nHost: {host}:{}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
            self.path,
            percent_encode(&clean_user(user)),
            self.port,
        )
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

/// A credential as the broker issues it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Issued {
    pub username: String,
    pub password: String,
    pub ttl: u64,
    #[serde(default)]
    pub uris: Vec<String>,
}

/// Reads a whole HTTP/1.1 reply (the broker closes the connection after it).
pub fn parse_reply(raw: &[u8]) -> Result<Issued, BrokerError> {
    if raw.len() > MAX_REPLY_BYTES {
        return Err(BrokerError::TooLong);
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or(BrokerError::NotHttp)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| BrokerError::NotHttp)?;
    let mut body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1."))
        .and_then(|l| l.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or(BrokerError::NotHttp)?;
    if status != 200 {
        return Err(BrokerError::Status(status));
    }
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" && !value.eq_ignore_ascii_case("identity") {
            return Err(BrokerError::BadReply(format!("transfer-encoding {value} is not supported")));
        }
        if name == "content-length" {
            let n: usize = value.parse().map_err(|_| BrokerError::BadReply("bad content-length".into()))?;
            body = body.get(..n).ok_or_else(|| BrokerError::BadReply("the reply is cut short".into()))?;
        }
    }
    let issued: Issued = serde_json::from_slice(body).map_err(|e| BrokerError::BadReply(e.to_string()))?;
    let field_ok = |s: &str| !s.is_empty() && s.len() <= MAX_FIELD && s.bytes().all(|b| b.is_ascii_graphic());
    if !field_ok(&issued.username) || !field_ok(&issued.password) {
        return Err(BrokerError::BadReply("username and password must be 1–512 printable characters".into()));
    }
    if issued.ttl == 0 {
        return Err(BrokerError::BadReply("ttl is 0: the credential is already expired".into()));
    }
    Ok(issued)
}

/// A viewer name as it goes into a credential: printable, no separators, bounded.
fn clean_user(user: &str) -> String {
    let kept: String = user
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-') { c } else { '_' })
        .take(MAX_USER)
        .collect();
    if kept.is_empty() {
        "viewer".into()
    } else {
        kept
    }
}

/// Why the broker refused a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("more than {0} credentials in a minute")]
    Budget(usize),
}

/// The broker's side: the secret, and how many credentials it will issue a minute (each
/// one is good for `ttl`, so an unbounded issuer would be a credential fountain for
/// whoever can reach it).
#[derive(Debug)]
pub struct Issuer {
    secret: Secret,
    ttl: Duration,
    label: String,
    per_minute: usize,
    recent: VecDeque<u64>,
}

impl Issuer {
    /// `label` names the desktop in every credential (coturn logs the user name), so a
    /// relay's use can be traced to the desktop it was issued for.
    pub fn new(secret: Secret, ttl: Duration, label: &str, per_minute: usize) -> Self {
        Self { secret, ttl, label: clean_user(label), per_minute: per_minute.max(1), recent: VecDeque::new() }
    }

    /// A credential for `user` at `now_ms` (ms since the epoch), within the budget.
    pub fn issue(&mut self, user: &str, now_ms: u64) -> Result<Issued, Refused> {
        while self.recent.front().is_some_and(|&t| now_ms.saturating_sub(t) >= 60_000) {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.per_minute {
            return Err(Refused::Budget(self.per_minute));
        }
        self.recent.push_back(now_ms);
        let ttl = self.ttl.as_secs().max(1);
        let who = format!("{}/{}", self.label, clean_user(user));
        let (username, password) = rest_credentials(self.secret.expose(), &who, now_ms / 1000 + ttl);
        Ok(Issued { username, password, ttl, uris: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_plain_http_with_a_port_and_a_path() {
        let u = BrokerUrl::parse("http://127.0.0.1:3479/turn").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("127.0.0.1", 3479, "/turn"));
        assert_eq!(BrokerUrl::parse("http://broker:8080").unwrap().path, "/turn");
        assert_eq!(BrokerUrl::parse("http://localhost/x").unwrap().port, 80);
        let v6 = BrokerUrl::parse("http://[::1]:3479/turn").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 3479));
        assert!(v6.request("a").contains("Host: [::1]:3479\r\n"));
        for bad in
            ["https://h:1/turn", "h:1", "http://", "http://h:0/", "http://h:x/", "http://u@h:1/", "http://h:1/a?b"]
        {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_request_names_the_viewer_cleaned_and_encoded() {
        let u = BrokerUrl::parse("http://127.0.0.1:3479/turn").unwrap();
        let r = u.request("al ice:\r\nX-Evil: 1");
        assert!(r.starts_with("GET /turn?service=turn&username=al_ice___X-Evil__1 HTTP/1.1\r\n"), "{r}");
        assert_eq!(r.matches("\r\n").count(), 5, "no header can be injected: {r}");
        assert!(u.request(&"x".repeat(500)).contains(&format!("username={} ", "x".repeat(MAX_USER))));
    }

    fn reply(status: &str, headers: &str, body: &str) -> Vec<u8> {
        format!("HTTP/1.1 {status}\r\n{headers}\r\n{body}").into_bytes()
    }

    #[test]
    fn a_good_reply_is_a_credential() {
        let body = r#"{"username":"1700000000:k/alice","password":"p+w/=","ttl":3600,"uris":["turn:h:1"]}"#;
        let got = parse_reply(&reply("200 OK", &format!("content-length: {}\r\n", body.len()), body)).unwrap();
        assert_eq!(got.username, "1700000000:k/alice");
        assert_eq!(got.ttl, 3600);
        // Without a length, the body runs to the end (the broker closes the connection).
        let short = r#"{"username":"u","password":"p","ttl":1}"#;
        assert_eq!(parse_reply(&reply("200 OK", "", short)).unwrap().uris, Vec::<String>::new());
    }

    #[test]
    fn bad_replies_are_refused_with_a_reason() {
        assert_eq!(parse_reply(b"garbage"), Err(BrokerError::NotHttp));
        assert_eq!(parse_reply(&reply("429 Too Many Requests", "", "")), Err(BrokerError::Status(429)));
        assert_eq!(parse_reply(&vec![b'x'; MAX_REPLY_BYTES + 1]), Err(BrokerError::TooLong));
        for body in [
            "{}",
            r#"{"username":"","password":"p","ttl":1}"#,
            r#"{"username":"u","password":"p q","ttl":1}"#,
            r#"{"username":"u","password":"p","ttl":0}"#,
            r#"{"username":"u","password":"p","ttl":-1}"#,
        ] {
            assert!(matches!(parse_reply(&reply("200 OK", "", body)), Err(BrokerError::BadReply(_))), "{body}");
        }
        let long = format!(r#"{{"username":"{}","password":"p","ttl":1}}"#, "u".repeat(MAX_FIELD + 1));
        assert!(matches!(parse_reply(&reply("200 OK", "", &long)), Err(BrokerError::BadReply(_))));
        let chunked = reply("200 OK", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n");
        assert!(matches!(parse_reply(&chunked), Err(BrokerError::BadReply(_))));
        let cut = reply("200 OK", "Content-Length: 99\r\n", "{}");
        assert!(matches!(parse_reply(&cut), Err(BrokerError::BadReply(_))));
    }

    #[test]
    fn issued_credentials_are_coturn_rest_credentials_labelled_by_desktop() {
        let mut i = Issuer::new(Secret::new("north"), Duration::from_secs(3600), "desk one", 10);
        let c = i.issue("alice", 1_700_000_000_500).unwrap();
        assert_eq!(c.username, "1700003600:desk_one/alice");
        assert_eq!(c.ttl, 3600);
        assert_eq!(
            (c.username.clone(), c.password.clone()),
            rest_credentials(b"north", "desk_one/alice", 1_700_003_600)
        );
    }

    #[test]
    fn issuing_is_budgeted_per_minute() {
        let mut i = Issuer::new(Secret::new("s"), Duration::from_secs(60), "d", 3);
        let t = 1_000_000;
        for n in 0..3 {
            assert!(i.issue("v", t + n).is_ok());
        }
        assert_eq!(i.issue("v", t + 10), Err(Refused::Budget(3)));
        assert_eq!(i.issue("v", t + 59_999), Err(Refused::Budget(3)), "still within the minute of the first");
        assert!(i.issue("v", t + 60_000).is_ok(), "the first has aged out");
    }
}
