//! The embedded web client.

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Looks a file up by URL path; `/` is the client page.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|(p, _, _)| *p == path).map(|(_, mime, body)| (*mime, *body))
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_serves_the_client_page() {
        let (mime, body) = super::asset("/").expect("index.html is embedded");
        assert!(mime.starts_with("text/html"));
        assert!(String::from_utf8_lossy(body).contains("<video"));
    }

    #[test]
    fn unknown_paths_are_not_found() {
        assert!(super::asset("/../Cargo.toml").is_none());
        assert!(super::asset("/nope.js").is_none());
    }
}
