//! The Host allowlist, against DNS rebinding: a page at `http://rebind.attacker:8080`
//! whose name is re-pointed at 127.0.0.1 is same-origin with itself, so the Origin check
//! passes, and with `--auth none` it would get the desktop. Its requests still name the
//! attacker's host, so refusing unknown hosts (421 Misdirected Request) stops it.
//!
//! Allowed: IP literals (rebinding needs a name), `localhost` and `*.localhost`, the
//! hosts of `--allowed-origins` and `--public-host`. The check is on for `--auth none`,
//! the mode rebinding defeats; with a login the rebound page has no credentials (cookies
//! and cached passwords belong to the real name), so it is on there only when
//! `--public-host` names the hosts, which keeps proxies that pass their public Host on
//! (JupyterHub, ingress) working without configuration.

use std::net::IpAddr;

/// Which Host headers are answered.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Lower-case names without port.
    names: Vec<String>,
    enforce: bool,
}

impl HostPolicy {
    /// The policy for `public_hosts` (`--public-host`) and `allowed_origins`; `auth_none`
    /// turns it on without public hosts.
    pub fn new(public_hosts: &[String], allowed_origins: &[String], auth_none: bool) -> Self {
        let mut names: Vec<String> = public_hosts.iter().filter_map(|h| name_of(h)).collect();
        names.extend(allowed_origins.iter().filter_map(|o| o.split_once("://").and_then(|(_, rest)| name_of(rest))));
        Self { enforce: auth_none || !public_hosts.is_empty(), names }
    }

    /// Whether a request whose Host header is `host` is answered.
    pub fn allows(&self, host: Option<&str>) -> bool {
        if !self.enforce {
            return true;
        }
        // Browsers always send Host; a request without one is not a rebound page's.
        let Some(host) = host else { return true };
        let Some(name) = name_of(host) else { return false };
        name.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }
}

/// The host name in a Host header or an origin's authority: no port, no brackets, no
/// trailing dot, lower case. `None` when it is not a plausible host.
fn name_of(authority: &str) -> Option<String> {
    let a = authority.trim().trim_end_matches('/');
    let name = if let Some(rest) = a.strip_prefix('[') {
        rest.split_once(']')?.0
    } else {
        match a.rsplit_once(':') {
            Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => a,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let plausible = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    plausible.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_auth_none_only_loopback_literals_and_named_hosts_are_answered() {
        let p = HostPolicy::new(&["Desktop.Example.org".into()], &["https://hub.example.org".into()], true);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:1",
            "[::1]:8080",
            "10.1.2.3",
            "desktop.example.org",
            "desktop.example.org.:443",
            "hub.example.org:443",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for bad in ["rebind.example", "rebind.example:8080", "localhost.evil.com", "example.org", "", "a b", "[::1"] {
            assert!(!p.allows(Some(bad)), "{bad:?}");
        }
        assert!(p.allows(None));
    }

    #[test]
    fn with_a_login_it_is_on_only_when_public_hosts_are_named() {
        assert!(HostPolicy::new(&[], &[], false).allows(Some("hub.example.org")));
        let named = HostPolicy::new(&["desktop.example.org".into()], &[], false);
        assert!(named.allows(Some("desktop.example.org")));
        assert!(!named.allows(Some("rebind.example")));
    }
}
