//! Pure decisions for resize-to-fit: which size to set, which DPI, and how to tell X
//! clients about the DPI. Tested without an X server.

/// Sizes the screen may take, from `RRGetScreenSizeRange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange {
    pub min: (u16, u16),
    pub max: (u16, u16),
}

/// The size to set for a browser asking for `width` × `height` device pixels: clamped to
/// what the X server allows and rounded down to even numbers, because H.264 with 4:2:0
/// chroma needs even dimensions (odd ones would be cropped or refused by encoders).
pub fn target_size(width: u32, height: u32, range: SizeRange) -> (u16, u16) {
    let clamp = |v: u32, lo: u16, hi: u16| {
        let hi = u32::from(hi.max(lo));
        let v = v.clamp(u32::from(lo), hi);
        let even = v & !1;
        (if even < u32::from(lo) { v } else { even }) as u16
    };
    (clamp(width, range.min.0, range.max.0), clamp(height, range.min.1, range.max.1))
}

/// The largest picture the encoders take: H.264 level 5.2 allows 36,864 macroblocks a
/// frame, which 4096×2304 fills exactly (x264 runs at a fixed level 5.2, see
/// `media::encoder`). A larger screen would stop the stream.
pub const ENCODER_MAX: (u32, u32) = (4096, 2304);

/// A browser's requested size capped to `--max-size` and to [`ENCODER_MAX`]: the X
/// server's own RandR range can be far larger (16384 on Xvfb, or any external display).
pub fn capped(width: u32, height: u32, max: (u32, u32)) -> (u32, u32) {
    (width.min(max.0).min(ENCODER_MAX.0), height.min(max.1).min(ENCODER_MAX.1))
}

/// RandR's dot clock for a `w`×`h` mode at a nominal 60 Hz, saturating instead of
/// overflowing (16384² × 60 does not fit a u32).
pub fn dot_clock(w: u16, h: u16) -> u32 {
    (u64::from(w) * u64::from(h) * 60).min(u64::from(u32::MAX)) as u32
}

/// DPI for a device pixel ratio: 96 is X's 1×, so a 2× (Retina) browser gets 192 and
/// applications draw text at the size the user's browser would.
pub fn dpi_for(dpr: f64) -> u32 {
    (96.0 * dpr).round().clamp(48.0, 480.0) as u32
}

/// Physical size in millimetres that makes X report `dpi` for `pixels`.
pub fn millimetres(pixels: u16, dpi: u32) -> u32 {
    ((f64::from(pixels) * 25.4 / f64::from(dpi.max(1))).round() as u32).max(1)
}

/// `RESOURCE_MANAGER` contents with `Xft.dpi` set to `dpi`, every other resource kept.
/// Toolkits (GTK, Qt, Xlib apps) read Xft.dpi at start-up when no XSETTINGS daemon says
/// otherwise, whatever the desktop environment.
///
/// Bytes, not text: the property is Latin-1 by the X convention and may hold anything, so
/// every other line is copied byte for byte (a lossy UTF-8 pass rewrote non-UTF-8
/// resources on every resize: review #29).
pub fn with_xft_dpi(resources: &[u8], dpi: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(resources.len() + 16);
    for line in resources.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if !line.trim_ascii_start().starts_with(b"Xft.dpi:") {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out.extend_from_slice(format!("Xft.dpi:\t{dpi}\n").as_bytes());
    out
}

/// Name of a mode we create, so we can find and delete our own later.
pub fn mode_name(width: u16, height: u16) -> String {
    format!("{width}x{height}_kelpie")
}

pub fn is_our_mode(name: &[u8]) -> bool {
    name.ends_with(b"_kelpie")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: SizeRange = SizeRange { min: (64, 64), max: (3840, 2160) };

    #[test]
    fn sizes_are_clamped_to_the_server_range_and_made_even() {
        assert_eq!(target_size(1280, 720, RANGE), (1280, 720));
        assert_eq!(target_size(1281, 721, RANGE), (1280, 720));
        assert_eq!(target_size(8000, 9000, RANGE), (3840, 2160));
        assert_eq!(target_size(10, 10, RANGE), (64, 64));
    }

    #[test]
    fn requests_are_capped_to_the_max_size_and_what_the_encoder_takes() {
        assert_eq!(capped(16384, 16384, (3840, 2160)), (3840, 2160));
        assert_eq!(capped(1280, 720, (3840, 2160)), (1280, 720));
        assert_eq!(capped(16384, 16384, (8192, 8192)), ENCODER_MAX, "--max-size above the encoder's limit");
        let (w, h) = capped(16384, 16384, (16384, 16384));
        assert_eq!(target_size(w, h, SizeRange { min: (8, 8), max: (16384, 16384) }), (4096, 2304));
    }

    #[test]
    fn the_dot_clock_saturates_instead_of_overflowing() {
        assert_eq!(dot_clock(1920, 1080), 1920 * 1080 * 60);
        assert_eq!(dot_clock(16384, 16384), u32::MAX);
    }

    #[test]
    fn an_odd_minimum_is_respected() {
        let r = SizeRange { min: (65, 65), max: (100, 100) };
        assert_eq!(target_size(65, 66, r), (65, 66));
    }

    #[test]
    fn dpi_follows_the_device_pixel_ratio() {
        assert_eq!(dpi_for(1.0), 96);
        assert_eq!(dpi_for(2.0), 192);
        assert_eq!(dpi_for(1.25), 120);
        assert_eq!(dpi_for(100.0), 480);
    }

    #[test]
    fn millimetres_give_back_the_dpi() {
        let mm = millimetres(1920, 96);
        assert_eq!(mm, 508);
        assert!((1920.0 * 25.4 / f64::from(mm) - 96.0).abs() < 0.5);
    }

    #[test]
    fn xft_dpi_is_replaced_and_other_resources_kept() {
        let before = b"Xcursor.size:\t24\nXft.dpi:\t96\nXft.antialias:\t1\n";
        assert_eq!(with_xft_dpi(before, 192), b"Xcursor.size:\t24\nXft.antialias:\t1\nXft.dpi:\t192\n");
        assert_eq!(with_xft_dpi(b"", 120), b"Xft.dpi:\t120\n");
    }

    #[test]
    fn other_resources_are_kept_byte_for_byte_even_when_not_utf8() {
        // "Caf\xe9" in Latin-1, and a line without its final newline.
        let before = b"xterm*title:\tCaf\xe9\nXft.dpi:\t96\nemacs.font:\tmono";
        assert_eq!(with_xft_dpi(before, 144), b"xterm*title:\tCaf\xe9\nemacs.font:\tmono\nXft.dpi:\t144\n");
    }

    #[test]
    fn our_modes_are_recognised_by_name() {
        assert!(is_our_mode(mode_name(800, 600).as_bytes()));
        assert!(!is_our_mode(b"1920x1080"));
    }
}
