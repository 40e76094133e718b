//! WebSocket Origin checks: a page from another site must not drive the desktop through
//! the user's browser (cross-site WebSocket hijacking).

/// Whether a WebSocket upgrade with this `Origin` (and `Host`) may proceed.
///
/// No `Origin` header means a non-browser client, which cannot be used for cross-site
/// attacks; it is allowed (authentication, where configured, still applies).
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, extra_allowed: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if extra_allowed.iter().any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(&origin)) {
        return true;
    }
    let Some(host) = host else { return false };
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    if !matches!(scheme, "http" | "https") {
        return false;
    }
    let host = host.trim().to_ascii_lowercase();
    authority == host || strip_default_port(scheme, authority) == strip_default_port(scheme, &host)
}

fn strip_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority.strip_suffix(default).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn same_origin_is_allowed() {
        assert!(origin_allowed(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080"), &[]));
        assert!(origin_allowed(Some("https://desk.example.org"), Some("desk.example.org:443"), &[]));
    }

    #[test]
    fn foreign_origin_is_refused() {
        assert!(!origin_allowed(Some("http://evil.example"), Some("127.0.0.1:8080"), &[]));
        assert!(!origin_allowed(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080"), &[]));
        assert!(!origin_allowed(Some("null"), Some("127.0.0.1:8080"), &[]));
        assert!(!origin_allowed(Some("http://127.0.0.1:8080"), None, &[]));
    }

    #[test]
    fn configured_origins_are_allowed() {
        let extra = vec!["https://hub.example.org/".to_string()];
        assert!(origin_allowed(Some("https://HUB.example.org"), Some("127.0.0.1:8080"), &extra));
    }

    #[test]
    fn non_browser_clients_without_origin_are_allowed() {
        assert!(origin_allowed(None, Some("127.0.0.1:8080"), &[]));
    }
}
