//! The embedded web client.

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// One embedded file of the client.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub mime: &'static str,
    pub body: &'static [u8],
    /// A strong ETag made from the contents at build time (quoted, as sent).
    pub etag: &'static str,
}

/// Looks a file up by URL path; `/` is the client page.
pub fn asset(path: &str) -> Option<Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|(p, _, _, _)| *p == path).map(|&(_, mime, body, etag)| Asset { mime, body, etag })
}

/// Whether an `If-None-Match` header value names `etag` (a list, weak tags, or `*`).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_serves_the_client_page() {
        let a = super::asset("/").expect("index.html is embedded");
        assert!(a.mime.starts_with("text/html"));
        assert!(String::from_utf8_lossy(a.body).contains("<video"));
    }

    #[test]
    fn each_file_has_its_own_etag_and_if_none_match_is_read_as_a_list() {
        let page = super::asset("/").unwrap().etag;
        let app = super::asset("/app.js").unwrap().etag;
        assert!(page.starts_with('"') && page.ends_with('"') && page.len() > 4, "{page}");
        assert_ne!(page, app);
        assert_eq!(super::asset("/index.html").unwrap().etag, page);
        assert!(super::etag_matches(page, page));
        assert!(super::etag_matches(&format!("\"x\", W/{page}"), page));
        assert!(super::etag_matches("*", page));
        assert!(!super::etag_matches(app, page));
        assert!(!super::etag_matches("", page));
    }

    #[test]
    fn unknown_paths_are_not_found() {
        assert!(super::asset("/../Cargo.toml").is_none());
        assert!(super::asset("/nope.js").is_none());
    }
}
