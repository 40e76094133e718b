//! What the HTTP shell reads from headers before authentication: the Host allowlist,
//! X-Forwarded-For from a trusted proxy, the Basic user name and cookies.
#![no_main]
use kelpie::auth::client::client_address;
use kelpie::auth::{basic_user, cookie_value, Cidr};
use kelpie::http::host::HostPolicy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let policy = HostPolicy::new(&["desktop.example.org".into()], &["https://hub.example.org".into()], true);
    let _ = policy.allows(Some(text));
    let trusted: Vec<Cidr> = vec!["127.0.0.1/32".parse().unwrap()];
    let peer = "127.0.0.1".parse().unwrap();
    let client = client_address(peer, text.split('\n'), &trusted);
    // The header can only name a client, never make an untrusted peer trusted.
    let _ = client;
    let _ = basic_user(text);
    let _ = cookie_value(text, "kelpie_token");
});
