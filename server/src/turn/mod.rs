//! STUN/TURN configuration handed to browsers and to webrtcbin.
//!
//! TURN credentials are either static or time-limited "TURN REST" credentials derived
//! from a secret shared with the TURN server (coturn `use-auth-secret`): the username is
//! `<expiry>:<user>` and the password `base64(HMAC-SHA1(secret, username))`, so the TURN
//! server checks them without any call back to Kelpie, and a leaked pair expires.
//! Or they come from a broker that holds the secret where the desktop's user cannot read
//! it ([`broker`]).

pub mod broker;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::hmac;

use crate::auth::Secret;

/// An ICE server as the browser's `RTCIceServer` expects it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Debug)]
pub enum TurnCredentials {
    None,
    Static {
        username: String,
        password: Secret,
    },
    Rest {
        secret: Secret,
        ttl: Duration,
    },
    /// Asked of a TURN broker per viewer (`--turn-broker`): Kelpie never holds the secret.
    Broker(broker::BrokerUrl),
}

/// The operator's ICE server settings.
#[derive(Debug)]
pub struct IceServers {
    pub stun_urls: Vec<String>,
    pub turn_urls: Vec<String>,
    pub credentials: TurnCredentials,
    pub force_relay: bool,
}

/// What one viewer gets: the browser's list and webrtcbin's equivalents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewerIce {
    pub browser: Vec<IceServer>,
    /// `stun://host:port` for webrtcbin's `stun-server`.
    pub gst_stun: Option<String>,
    /// `turn(s)://user:pass@host:port?transport=…` for webrtcbin's `add-turn-server`.
    pub gst_turn: Vec<String>,
    pub relay_only: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TurnError {
    #[error("{0:?} is not a STUN/TURN URL (expected stun:, turn: or turns:HOST[:PORT][?transport=udp|tcp])")]
    BadUrl(String),
    #[error("--force-relay needs at least one --turn-url")]
    RelayWithoutTurn,
    #[error(
        "--turn-url needs credentials: --turn-broker, KELPIE_TURN_SECRET (coturn use-auth-secret) or --turn-username with KELPIE_TURN_PASSWORD"
    )]
    TurnWithoutCredentials,
}

impl IceServers {
    /// Checks the settings once at start-up so that viewers never hit a bad URL.
    pub fn validate(&self) -> Result<(), TurnError> {
        for u in self.stun_urls.iter().chain(&self.turn_urls) {
            split_url(u)?;
        }
        for u in &self.stun_urls {
            if !u.starts_with("stun:") {
                return Err(TurnError::BadUrl(u.clone()));
            }
        }
        for u in &self.turn_urls {
            if !(u.starts_with("turn:") || u.starts_with("turns:")) {
                return Err(TurnError::BadUrl(u.clone()));
            }
        }
        if !self.turn_urls.is_empty() && matches!(self.credentials, TurnCredentials::None) {
            return Err(TurnError::TurnWithoutCredentials);
        }
        if self.force_relay && self.turn_urls.is_empty() {
            return Err(TurnError::RelayWithoutTurn);
        }
        Ok(())
    }

    /// The broker to ask for each viewer's TURN credential, when there is one.
    pub fn broker(&self) -> Option<&broker::BrokerUrl> {
        match &self.credentials {
            TurnCredentials::Broker(url) if !self.turn_urls.is_empty() => Some(url),
            _ => None,
        }
    }

    /// ICE configuration for a viewer authenticated as `user`, at `now_unix`. With a
    /// broker, this has no TURN entry: use [`IceServers::with_credential`] with its reply.
    pub fn for_viewer(&self, user: &str, now_unix: u64) -> ViewerIce {
        let creds = match &self.credentials {
            TurnCredentials::None | TurnCredentials::Broker(_) => None,
            TurnCredentials::Static { username, password } => {
                Some((username.clone(), String::from_utf8_lossy(password.expose()).into_owned()))
            }
            TurnCredentials::Rest { secret, ttl } => {
                Some(rest_credentials(secret.expose(), user, now_unix + ttl.as_secs()))
            }
        };
        self.with_credential(creds)
    }

    /// ICE configuration with the TURN credential `creds` (user name, password), if any.
    pub fn with_credential(&self, creds: Option<(String, String)>) -> ViewerIce {
        let mut ice = ViewerIce { relay_only: self.force_relay, ..Default::default() };
        if !self.stun_urls.is_empty() {
            ice.browser.push(IceServer { urls: self.stun_urls.clone(), username: None, credential: None });
            ice.gst_stun = self.stun_urls.first().and_then(|u| gst_url(u, None));
        }
        if let (Some((username, password)), false) = (creds, self.turn_urls.is_empty()) {
            ice.gst_turn = self.turn_urls.iter().filter_map(|u| gst_url(u, Some((&username, &password)))).collect();
            ice.browser.push(IceServer {
                urls: self.turn_urls.clone(),
                username: Some(username),
                credential: Some(password),
            });
        }
        ice
    }
}

/// TURN REST credentials valid until `expires_unix`.
pub fn rest_credentials(secret: &[u8], user: &str, expires_unix: u64) -> (String, String) {
    let username = format!("{expires_unix}:{user}");
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let password = STANDARD.encode(hmac::sign(&key, username.as_bytes()).as_ref());
    (username, password)
}

/// Splits `scheme:host[:port][?query]` into its parts.
fn split_url(url: &str) -> Result<(&str, &str, Option<&str>), TurnError> {
    let bad = || TurnError::BadUrl(url.to_owned());
    let (scheme, rest) = url.split_once(':').ok_or_else(bad)?;
    let (hostport, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    if hostport.is_empty() || hostport.starts_with("//") || hostport.contains(['@', '/', ' ']) {
        return Err(bad());
    }
    if let Some(q) = query {
        if !matches!(q, "transport=udp" | "transport=tcp") {
            return Err(bad());
        }
    }
    Ok((scheme, hostport, query))
}

/// The GStreamer form of an RTCIceServer URL, with credentials percent-encoded.
fn gst_url(url: &str, creds: Option<(&str, &str)>) -> Option<String> {
    let (scheme, hostport, query) = split_url(url).ok()?;
    let auth = creds.map(|(u, p)| format!("{}:{}@", percent_encode(u), percent_encode(p))).unwrap_or_default();
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("{scheme}://{auth}{hostport}{query}"))
}

/// RFC 3986 unreserved characters kept, every other byte `%XX` (TURN URLs and the broker's
/// query share it).
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rest(force_relay: bool) -> IceServers {
        IceServers {
            stun_urls: vec!["stun:stun.example.org:3478".into()],
            turn_urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            credentials: TurnCredentials::Rest { secret: Secret::new("north"), ttl: Duration::from_secs(3600) },
            force_relay,
        }
    }

    #[test]
    fn rest_credentials_follow_the_coturn_scheme() {
        // Reference value computed with: printf '1700003600:alice' | openssl dgst -sha1 -hmac north -binary | base64
        let (u, p) = rest_credentials(b"north", "alice", 1_700_003_600);
        assert_eq!(u, "1700003600:alice");
        assert_eq!(p, "wjwSXO2ch1B6VaLTLMy2Avn5O9o=");
    }

    #[test]
    fn viewer_gets_browser_and_gstreamer_forms_of_the_same_servers() {
        let ice = rest(true).for_viewer("alice", 1_700_000_000);
        assert!(ice.relay_only);
        assert_eq!(ice.gst_stun.as_deref(), Some("stun://stun.example.org:3478"));
        assert_eq!(ice.browser.len(), 2);
        let turn = &ice.browser[1];
        assert_eq!(turn.username.as_deref(), Some("1700003600:alice"));
        assert_eq!(
            ice.gst_turn,
            vec![format!(
                "turn://1700003600%3Aalice:{}@127.0.0.1:3478?transport=udp",
                percent_encode(turn.credential.as_deref().unwrap())
            )]
        );
    }

    #[test]
    fn settings_are_validated() {
        assert_eq!(rest(false).validate(), Ok(()));
        let mut s = rest(false);
        s.turn_urls = vec!["http://x".into()];
        assert!(matches!(s.validate(), Err(TurnError::BadUrl(_))));
        let s =
            IceServers { stun_urls: vec![], turn_urls: vec![], credentials: TurnCredentials::None, force_relay: true };
        assert_eq!(s.validate(), Err(TurnError::RelayWithoutTurn));
        let s = IceServers {
            stun_urls: vec![],
            turn_urls: vec!["turn:h:1".into()],
            credentials: TurnCredentials::None,
            force_relay: false,
        };
        assert_eq!(s.validate(), Err(TurnError::TurnWithoutCredentials));
        for bad in ["turn:", "turn://h:1", "turn:u@h:1", "turn:h:1?transport=sctp"] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_broker_credential_goes_to_both_forms() {
        let s = IceServers {
            stun_urls: vec![],
            turn_urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            credentials: TurnCredentials::Broker(broker::BrokerUrl::parse("http://127.0.0.1:3479/turn").unwrap()),
            force_relay: true,
        };
        assert_eq!(s.validate(), Ok(()));
        assert!(s.broker().is_some());
        assert!(s.for_viewer("u", 0).browser.is_empty(), "no credential until the broker gives one");
        let ice = s.with_credential(Some(("9:d/u".into(), "pw".into())));
        assert_eq!(ice.browser[0].username.as_deref(), Some("9:d/u"));
        assert_eq!(ice.gst_turn, vec!["turn://9%3Ad%2Fu:pw@127.0.0.1:3478?transport=udp".to_owned()]);
        assert!(ice.relay_only);
    }

    #[test]
    fn no_servers_means_host_candidates_only() {
        let s =
            IceServers { stun_urls: vec![], turn_urls: vec![], credentials: TurnCredentials::None, force_relay: false };
        assert_eq!(s.for_viewer("u", 0), ViewerIce::default());
    }
}
