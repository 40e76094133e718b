//! The signalling WebSocket's text messages: parsed, never a panic, whatever arrives.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kelpie::signalling::messages::parse_client_message(text);
    }
});
