//! The RandR plan: any size a browser asks for becomes an even size within the X
//! server's range and the encoder's, with no overflow on the way.
#![no_main]
use kelpie::screen::plan::{capped, dot_clock, millimetres, target_size, with_xft_dpi, SizeRange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let u = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let (w, h) = capped(u(0), u(4), (u(8) | 1, u(12) | 1));
    let min = (16u16, 16u16);
    let max = ((u(8) as u16).max(16), (u(12) as u16).max(16));
    let (tw, th) = target_size(w, h, SizeRange { min, max });
    assert!(tw % 2 == 0 && th % 2 == 0, "{tw}x{th} is odd");
    assert!(tw <= max.0 && th <= max.1, "{tw}x{th} beyond {max:?}");
    let _ = dot_clock(tw, th);
    let _ = millimetres(tw, u(0));
    if let Ok(text) = std::str::from_utf8(&data[16..]) {
        let dpi = u(4) % 1000;
        let out = with_xft_dpi(text, dpi);
        // Exactly one Xft.dpi resource, ours. (Other resources that merely contain the
        // text, like `*Xft.dpi:` or `XTerm*Xft.dpi:`, are other resources and stay: the
        // first version of this target counted them, the fuzzer's first finding.)
        let ours: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("Xft.dpi:")).collect();
        assert_eq!(ours, vec![format!("Xft.dpi:\t{dpi}").as_str()], "one Xft.dpi line, ours");
    }
});
