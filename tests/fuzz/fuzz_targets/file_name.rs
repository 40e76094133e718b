//! The file-name policy of uploads: an accepted name never escapes the folder.
#![no_main]
use kelpie::files::name::FileName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    if let Ok(ok) = FileName::parse(name) {
        let s = ok.as_str();
        assert!(!s.contains('/') && !s.contains('\0'), "{s:?} accepted");
        assert!(s != "." && s != ".." && !s.starts_with('.'), "{s:?} accepted");
    }
});
