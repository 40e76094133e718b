//! Clipboard chunk assembly: any sequence of input messages, as a browser could send
//! them, fed to one reassembler with a small limit. Whatever it returns must respect it.
#![no_main]
use kelpie::clipboard::chunks::Reassembler;
use kelpie::input::protocol::{parse_input, InputEvent};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut r = Reassembler::new(LIMIT);
    for line in text.lines() {
        if let Ok(InputEvent::Clip(chunk)) = parse_input(line) {
            if let Ok(Some(clip)) = r.push(&chunk) {
                assert!(clip.bytes.len() <= LIMIT, "a clip over the limit came out");
            }
        }
    }
});
