//! Security and network settings: authentication, TLS, STUN/TURN.
//!
//! Secrets come from environment variables or files, never from flags, because command
//! lines are visible to every user of the machine in `ps`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::auth::{Auth, Cidr, CookieSecure, Mode, Secret, TokenKey};
use crate::turn::broker::BrokerUrl;
use crate::turn::{IceServers, TurnCredentials};

use super::ConfigError;

/// Shortest token secret accepted: 16 random bytes are beyond guessing.
const MIN_SECRET_BYTES: usize = 16;

/// Authentication modes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// No authentication: only accepted when listening on loopback.
    None,
    /// HTTP Basic: --basic-user with KELPIE_BASIC_PASSWORD or --basic-password-file.
    Basic,
    /// Signed expiring tokens (`kelpie token`): `?token=` becomes an HttpOnly cookie.
    Token,
    /// A user header set by an authenticating reverse proxy, from --trusted-proxies only.
    TrustedHeader,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Access")]
pub struct AuthArgs {
    /// How viewers authenticate. `none` is refused on a non-loopback --listen address.
    #[arg(long, env = "KELPIE_AUTH", value_enum, default_value_t = AuthMode::None)]
    pub auth: AuthMode,

    /// User name for `--auth basic`.
    #[arg(long, env = "KELPIE_BASIC_USER", default_value = "kelpie")]
    pub basic_user: String,

    /// File holding the `--auth basic` password (or set KELPIE_BASIC_PASSWORD).
    #[arg(long, env = "KELPIE_BASIC_PASSWORD_FILE", value_name = "PATH")]
    pub basic_password_file: Option<PathBuf>,

    /// File holding the token signing secret for `--auth token` and `kelpie token`
    /// (or set KELPIE_TOKEN_SECRET). At least 16 bytes; e.g. `head -c 32 /dev/urandom | base64`.
    #[arg(long, env = "KELPIE_TOKEN_SECRET_FILE", value_name = "PATH", global = true)]
    pub token_secret_file: Option<PathBuf>,

    /// Header carrying the user name for `--auth trusted-header`, e.g. X-Forwarded-User.
    #[arg(long, env = "KELPIE_TRUSTED_HEADER", value_name = "NAME")]
    pub trusted_header: Option<String>,

    /// Header in which the `--auth trusted-header` proxy may pass the user's role
    /// (`owner`, `guest` or `viewer`), e.g. X-Kelpie-Role. Without it, or when the
    /// request lacks it, proxy-authenticated users are owners.
    #[arg(long, env = "KELPIE_TRUSTED_ROLE_HEADER", value_name = "NAME")]
    pub trusted_role_header: Option<String>,

    /// Names this desktop in the tokens it accepts, so that a token minted for one
    /// desktop cannot open another that shares the secret. Default: the --base-path.
    /// `kelpie token` must see the same value (same flag or KELPIE_DESKTOP_ID).
    #[arg(long, env = "KELPIE_DESKTOP_ID", value_name = "ID", global = true)]
    pub desktop_id: Option<String>,

    /// Proxy addresses (CIDR, comma separated) that Kelpie believes: their
    /// --trusted-header, their X-Forwarded-For (the client address that failed logins are
    /// counted by) and their X-Forwarded-Proto (for --cookie-secure auto).
    #[arg(long, env = "KELPIE_TRUSTED_PROXIES", value_delimiter = ',', value_name = "CIDR")]
    pub trusted_proxies: Vec<Cidr>,

    /// Whether the login cookie gets `Secure` (sent only over https). `auto`: when Kelpie
    /// serves TLS itself, or a trusted proxy says `X-Forwarded-Proto: https`. Set `always`
    /// behind a TLS proxy that is not in --trusted-proxies.
    #[arg(long, env = "KELPIE_COOKIE_SECURE", value_enum, default_value_t = CookieSecure::Auto)]
    pub cookie_secure: CookieSecure,

    /// TLS certificate chain (PEM). With --tls-key, Kelpie serves HTTPS and WSS itself.
    #[arg(long, env = "KELPIE_TLS_CERT", value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "KELPIE_TLS_KEY", value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "WebRTC relays (STUN, TURN)")]
pub struct IceArgs {
    /// STUN server URLs (comma separated), e.g. stun:stun.example.org:3478. None by default:
    /// Kelpie never contacts a third party unless told to.
    #[arg(long = "stun-url", env = "KELPIE_STUN_URLS", value_delimiter = ',', value_name = "URL")]
    pub stun_urls: Vec<String>,

    /// TURN server URLs (comma separated), e.g. turn:turn.example.org:3478?transport=udp.
    #[arg(long = "turn-url", env = "KELPIE_TURN_URLS", value_delimiter = ',', value_name = "URL")]
    pub turn_urls: Vec<String>,

    /// Static TURN user name (with KELPIE_TURN_PASSWORD or --turn-password-file).
    #[arg(long, env = "KELPIE_TURN_USERNAME", value_name = "NAME")]
    pub turn_username: Option<String>,

    /// File holding the static TURN password.
    #[arg(long, env = "KELPIE_TURN_PASSWORD_FILE", value_name = "PATH")]
    pub turn_password_file: Option<PathBuf>,

    /// File holding the secret shared with coturn's `static-auth-secret` (or set
    /// KELPIE_TURN_SECRET): viewers get time-limited TURN credentials.
    #[arg(long, env = "KELPIE_TURN_SECRET_FILE", value_name = "PATH")]
    pub turn_secret_file: Option<PathBuf>,

    /// A TURN broker that mints each viewer's credential (`kelpie-turn-broker`, or any
    /// TURN REST API service), e.g. http://127.0.0.1:3479/turn: Kelpie then holds no TURN
    /// secret, which matters where the desktop's user can read what Kelpie reads (a pod
    /// of their own). Use instead of KELPIE_TURN_SECRET.
    #[arg(long, env = "KELPIE_TURN_BROKER", value_name = "URL")]
    pub turn_broker: Option<String>,

    /// Lifetime of time-limited TURN credentials, e.g. 3600s, 90m, 24h.
    #[arg(long, env = "KELPIE_TURN_TTL", default_value = "24h", value_parser = parse_duration)]
    pub turn_ttl: Duration,

    /// Send media only through TURN (browser and server), e.g. where UDP to the host is blocked.
    #[arg(long, env = "KELPIE_FORCE_RELAY")]
    pub force_relay: bool,
}

/// Parses `90`, `90s`, `15m`, `8h` or `2d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration like 90s, 15m, 8h or 2d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    };
    if secs == 0 {
        return Err("duration must be positive".into());
    }
    Ok(Duration::from_secs(secs))
}

/// A secret from an environment variable or a file (not both).
pub fn load_secret(env: &str, file: Option<&Path>) -> Result<Option<Secret>, ConfigError> {
    let from_env = std::env::var(env).ok().filter(|v| !v.is_empty());
    match (from_env, file) {
        (Some(_), Some(f)) => Err(ConfigError::Secret(format!("both {env} and {} are set; use one", f.display()))),
        (Some(v), None) => Ok(Some(Secret::new(v))),
        (None, Some(f)) => {
            let text =
                std::fs::read(f).map_err(|e| ConfigError::Secret(format!("cannot read {}: {e}", f.display())))?;
            let trimmed = text.strip_suffix(b"\n").unwrap_or(&text);
            let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
            if trimmed.is_empty() {
                return Err(ConfigError::Secret(format!("{} is empty", f.display())));
            }
            Ok(Some(Secret::new(trimmed.to_vec())))
        }
        (None, None) => Ok(None),
    }
}

impl AuthArgs {
    pub fn token_key(&self) -> Result<TokenKey, ConfigError> {
        let secret = load_secret("KELPIE_TOKEN_SECRET", self.token_secret_file.as_deref())?.ok_or_else(|| {
            ConfigError::Secret("token auth needs a secret: set KELPIE_TOKEN_SECRET or --token-secret-file".into())
        })?;
        if secret.expose().len() < MIN_SECRET_BYTES {
            return Err(ConfigError::Secret(format!(
                "the token secret is shorter than {MIN_SECRET_BYTES} bytes; use e.g. `head -c 32 /dev/urandom | base64`"
            )));
        }
        Ok(TokenKey::new(secret.expose()))
    }

    /// Builds the authenticator for the desktop `desktop`, loading secrets. Share links
    /// are signed with the token secret under `--auth token`, else with a per-run one.
    pub fn build(&self, desktop: &str) -> Result<Auth, ConfigError> {
        let mode = match self.auth {
            AuthMode::None => Mode::None,
            AuthMode::Basic => {
                let password = load_secret("KELPIE_BASIC_PASSWORD", self.basic_password_file.as_deref())?.ok_or_else(|| {
                    ConfigError::Secret(
                        "basic auth needs a password: set KELPIE_BASIC_PASSWORD or --basic-password-file (there is no default)"
                            .into(),
                    )
                })?;
                Mode::Basic { user: self.basic_user.clone(), password }
            }
            AuthMode::Token => Mode::Token,
            AuthMode::TrustedHeader => {
                let header = self.trusted_header.clone().ok_or_else(|| {
                    ConfigError::Secret("trusted-header auth needs --trusted-header, e.g. X-Forwarded-User".into())
                })?;
                if self.trusted_proxies.is_empty() {
                    return Err(ConfigError::Secret(
                        "trusted-header auth needs --trusted-proxies: the addresses of the authenticating proxy".into(),
                    ));
                }
                Mode::TrustedHeader {
                    header: header.to_ascii_lowercase(),
                    proxies: self.trusted_proxies.clone(),
                    role_header: self.trusted_role_header.as_ref().map(|h| h.to_ascii_lowercase()),
                }
            }
        };
        let (tokens, per_run) = match mode {
            Mode::Token => (self.token_key()?, false),
            _ => (per_run_key()?, true),
        };
        Ok(Auth::new(mode, tokens, per_run, desktop.to_owned()))
    }

    /// The desktop id tokens name: `--desktop-id`, else the base path.
    pub fn desktop(&self, base_path: &str) -> String {
        self.desktop_id.clone().unwrap_or_else(|| base_path.to_owned())
    }
}

/// A random signing key for share links that lives as long as the process.
fn per_run_key() -> Result<TokenKey, ConfigError> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ConfigError::Secret("the system random number generator failed".into()))?;
    Ok(TokenKey::new(&bytes))
}

impl IceArgs {
    pub fn build(&self) -> Result<IceServers, ConfigError> {
        let rest = load_secret("KELPIE_TURN_SECRET", self.turn_secret_file.as_deref())?;
        let password = load_secret("KELPIE_TURN_PASSWORD", self.turn_password_file.as_deref())?;
        if let Some(url) = &self.turn_broker {
            if rest.is_some() || self.turn_username.is_some() || password.is_some() {
                return Err(ConfigError::Secret(
                    "--turn-broker replaces the TURN secret and the static TURN user: set only one of them".into(),
                ));
            }
            let url = BrokerUrl::parse(url).map_err(|e| ConfigError::Secret(e.to_string()))?;
            return self.servers(TurnCredentials::Broker(url));
        }
        let credentials = match (rest, &self.turn_username, password) {
            (Some(secret), None, None) => TurnCredentials::Rest { secret, ttl: self.turn_ttl },
            (None, Some(username), Some(password)) => TurnCredentials::Static { username: username.clone(), password },
            (None, None, None) => TurnCredentials::None,
            (None, Some(_), None) => {
                return Err(ConfigError::Secret(
                    "--turn-username needs KELPIE_TURN_PASSWORD or --turn-password-file".into(),
                ));
            }
            (None, None, Some(_)) => return Err(ConfigError::Secret("a TURN password needs --turn-username".into())),
            (Some(_), _, _) => {
                return Err(ConfigError::Secret(
                    "use either a TURN secret or a static TURN user name and password".into(),
                ));
            }
        };
        self.servers(credentials)
    }

    fn servers(&self, credentials: TurnCredentials) -> Result<IceServers, ConfigError> {
        let servers = IceServers {
            stun_urls: self.stun_urls.clone(),
            turn_urls: self.turn_urls.clone(),
            credentials,
            force_relay: self.force_relay,
        };
        servers.validate().map_err(|e| ConfigError::Secret(e.to_string()))?;
        Ok(servers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(28_800)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "h", "5w", "0", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_files_are_read_without_the_trailing_newline() {
        let path = std::env::temp_dir().join(format!("kelpie-secret-test-{}", std::process::id()));
        std::fs::write(&path, "hunter2hunter2hunter2\n").unwrap();
        let s = load_secret("KELPIE_TEST_UNSET_VARIABLE", Some(&path)).unwrap().unwrap();
        assert_eq!(s.expose(), b"hunter2hunter2hunter2");
        std::fs::write(&path, "\n").unwrap();
        assert!(load_secret("KELPIE_TEST_UNSET_VARIABLE", Some(&path)).is_err());
        let _ = std::fs::remove_file(&path);
        assert!(load_secret("KELPIE_TEST_UNSET_VARIABLE", Some(Path::new("/nonexistent/kelpie"))).is_err());
    }
}
