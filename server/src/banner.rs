//! The start-up banner: the few lines a person reads after `make run` or `kelpie`, after
//! the log lines, so they are not buried among them. It ends with the address to open on
//! a line of its own, which a script (or a test) can take as the last line.
//!
//! A wildcard listen address (`0.0.0.0`, `::`) is not something a browser can open, so it
//! is turned into addresses that are: this machine's name and its outward address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// Who may use the desktop, as the banner words it (from `--auth`; the wiring maps it,
/// so this module needs no configuration types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No login: loopback only.
    Loopback,
    /// HTTP Basic, with this user name.
    Basic(String),
    /// Signed links.
    Token,
    /// An authenticating proxy's header.
    TrustedHeader,
}

/// What the banner says.
#[derive(Debug, Clone)]
pub struct Banner {
    /// The X display and its size, e.g. `:0 (1920x1080)`.
    pub display: String,
    /// The H.264 encoder in use (`x264enc`, `nvh264enc`, …).
    pub encoder: String,
    /// Whether the desktop's sound is streamed.
    pub audio: bool,
    pub access: Access,
    /// Addresses to open, the most useful one last.
    pub urls: Vec<String>,
}

impl Banner {
    /// The banner's lines; the last is the address to open, alone.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "Kelpie is streaming display {} with {}{}.\n",
            self.display,
            self.encoder,
            if self.audio { " and its sound" } else { "" }
        ));
        out.push_str(&format!("  Who may use it: {}\n", self.access()));
        out.push_str("  Stop it with Ctrl+C (or SIGTERM); `kelpie --help` lists every option.\n");
        if self.urls.len() > 1 {
            out.push_str("  Open it in a browser at one of:\n");
            for url in &self.urls[..self.urls.len() - 1] {
                out.push_str(&format!("    {url}\n"));
            }
        } else {
            out.push_str("  Open it in a browser at:\n");
        }
        if let Some(last) = self.urls.last() {
            out.push_str(last);
            out.push('\n');
        }
        out
    }

    fn access(&self) -> String {
        match &self.access {
            Access::Loopback => "anyone on this machine, no login (loopback only; --auth for more)".into(),
            Access::Basic(user) => format!("HTTP Basic login as {user:?}"),
            Access::Token => "holders of a signed link (`kelpie token` makes one: add #token=…)".into(),
            Access::TrustedHeader => "users your authenticating proxy names (--auth trusted-header)".into(),
        }
    }
}

/// The addresses a browser can open for a server listening on `addr`, most useful last:
/// the address itself, or, for a wildcard, loopback, the host's name and its outward
/// address (`host_name` and `outward` as found on this machine, `None` when unknown).
pub fn urls(
    scheme: &str,
    addr: SocketAddr,
    base_path: &str,
    host_name: Option<&str>,
    outward: Option<IpAddr>,
) -> Vec<String> {
    let port = addr.port();
    let url = |host: &str| format!("{scheme}://{host}:{port}{base_path}");
    let ip = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => url(&format!("[{v6}]")),
        IpAddr::V4(v4) => url(&v4.to_string()),
    };
    if !addr.ip().is_unspecified() {
        return vec![ip(addr.ip())];
    }
    let mut out = vec![ip(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    if let Some(name) = host_name.filter(|n| !n.is_empty() && *n != "localhost") {
        out.push(url(name));
    }
    if let Some(o) = outward.filter(|o| !o.is_loopback() && !o.is_unspecified()) {
        out.push(ip(o));
    }
    out
}

/// This machine's host name, if it has one.
pub fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The address this machine would reach the outside from: a UDP socket "connected" to a
/// documentation address (RFC 5737) sends nothing, but the kernel picks the source.
pub fn outward_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banner(access: Access, urls: Vec<String>) -> Banner {
        Banner { display: ":0 (1920x1080)".into(), encoder: "x264enc".into(), audio: true, access, urls }
    }

    #[test]
    fn the_last_line_is_the_address_alone() {
        let text = banner(Access::Loopback, vec!["http://127.0.0.1:8080/".into()]).render();
        assert_eq!(text.lines().last(), Some("http://127.0.0.1:8080/"));
        assert!(text.starts_with("Kelpie is streaming display :0 (1920x1080) with x264enc and its sound.\n"), "{text}");
        assert!(text.contains("Ctrl+C"), "{text}");
        assert!(text.contains("no login"), "{text}");
    }

    #[test]
    fn several_addresses_are_listed_with_the_most_useful_last() {
        let urls =
            vec!["http://127.0.0.1:8080/".to_string(), "http://node7:8080/".into(), "http://10.1.2.3:8080/".into()];
        let text = banner(Access::Basic("kelpie".into()), urls).render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.last(), Some(&"http://10.1.2.3:8080/"));
        assert!(lines.contains(&"    http://127.0.0.1:8080/") && lines.contains(&"    http://node7:8080/"), "{text}");
        assert!(text.contains("HTTP Basic login as \"kelpie\""), "{text}");
    }

    #[test]
    fn a_wildcard_listen_address_becomes_addresses_a_browser_can_open() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let outward = Some("10.1.2.3".parse().unwrap());
        assert_eq!(
            urls("http", any, "/desk/", Some("node7"), outward),
            ["http://127.0.0.1:8080/desk/", "http://node7:8080/desk/", "http://10.1.2.3:8080/desk/"]
        );
        // Unknown name and no route out: loopback still works.
        assert_eq!(urls("http", any, "/", None, None), ["http://127.0.0.1:8080/"]);
        assert_eq!(
            urls("https", "[::]:443".parse().unwrap(), "/", Some("localhost"), None),
            ["https://127.0.0.1:443/"]
        );
        // A specific address is used as it is, IPv6 in brackets.
        assert_eq!(urls("http", "127.0.0.1:9".parse().unwrap(), "/", Some("node7"), outward), ["http://127.0.0.1:9/"]);
        assert_eq!(urls("http", "[fd00::5]:80".parse().unwrap(), "/", None, None), ["http://[fd00::5]:80/"]);
    }
}
