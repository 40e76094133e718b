//! The data channel's input protocol (keys, pointer, text, clipboard chunks, resize...).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kelpie::input::protocol::parse_input(text);
    }
});
