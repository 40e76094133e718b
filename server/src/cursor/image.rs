//! Cursor pixels as XFixes delivers them, turned into what a PNG (and so a browser) wants.
//!
//! `XFixesGetCursorImage` returns one 32-bit ARGB value per pixel with the colour already
//! multiplied by alpha (the Render convention). PNG stores straight alpha, so each colour
//! channel is divided back by alpha; fully transparent pixels become transparent black.

/// A cursor as the X server shows it: size, hotspot and straight-alpha RGBA bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorImage {
    /// XFixes' serial for this image: equal serials mean equal images.
    pub serial: u32,
    pub width: u16,
    pub height: u16,
    pub hot_x: u16,
    pub hot_y: u16,
    pub rgba: Vec<u8>,
}

impl CursorImage {
    /// Builds the image from XFixes' premultiplied ARGB words. A pixel list shorter than
    /// `width * height` (a broken reply) is padded with transparency, a longer one cut.
    pub fn from_argb_premultiplied(serial: u32, width: u16, height: u16, hot: (u16, u16), argb: &[u32]) -> Self {
        let count = usize::from(width) * usize::from(height);
        let mut rgba = Vec::with_capacity(count * 4);
        for i in 0..count {
            rgba.extend_from_slice(&unpremultiply(argb.get(i).copied().unwrap_or(0)));
        }
        Self { serial, width, height, hot_x: hot.0, hot_y: hot.1, rgba }
    }

    /// Whether nothing would be drawn: no pixels, or every pixel fully transparent
    /// (applications hide the pointer this way, e.g. video players and games).
    pub fn is_invisible(&self) -> bool {
        self.width == 0 || self.height == 0 || self.rgba.chunks_exact(4).all(|p| p[3] == 0)
    }
}

/// One premultiplied ARGB word to straight RGBA bytes, rounding to nearest.
pub fn unpremultiply(argb: u32) -> [u8; 4] {
    let a = argb >> 24;
    if a == 0 {
        return [0, 0, 0, 0];
    }
    let straight = |c: u32| ((c * 255 + a / 2) / a).min(255) as u8;
    [straight((argb >> 16) & 0xff), straight((argb >> 8) & 0xff), straight(argb & 0xff), a as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_pixels_keep_their_colour() {
        assert_eq!(unpremultiply(0xff_12_34_56), [0x12, 0x34, 0x56, 0xff]);
        assert_eq!(unpremultiply(0xff_00_00_00), [0, 0, 0, 255]);
    }

    #[test]
    fn half_transparent_pixels_are_divided_by_alpha() {
        // White at alpha 0x80 is stored as 0x80 per channel.
        assert_eq!(unpremultiply(0x80_80_80_80), [255, 255, 255, 0x80]);
        // Red 0x40 premultiplied by 0x80 was red ≈ 0x80.
        assert_eq!(unpremultiply(0x80_40_00_00), [0x80, 0, 0, 0x80]);
    }

    #[test]
    fn transparent_pixels_become_transparent_black_and_bad_words_clamp() {
        assert_eq!(unpremultiply(0x00_ff_ff_ff), [0, 0, 0, 0]);
        // Colour larger than alpha cannot come from premultiplication; it must not wrap.
        assert_eq!(unpremultiply(0x10_ff_00_00), [255, 0, 0, 0x10]);
    }

    #[test]
    fn pixels_are_laid_out_row_major_and_short_lists_padded() {
        let img = CursorImage::from_argb_premultiplied(7, 2, 2, (1, 0), &[0xff_ff_00_00, 0xff_00_ff_00, 0xff_00_00_ff]);
        assert_eq!(img.rgba, [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 0, 0, 0, 0]);
        assert_eq!((img.hot_x, img.hot_y, img.serial), (1, 0, 7));
    }

    #[test]
    fn all_transparent_or_empty_images_are_invisible() {
        assert!(CursorImage::from_argb_premultiplied(1, 4, 4, (0, 0), &[0; 16]).is_invisible());
        assert!(CursorImage::from_argb_premultiplied(1, 0, 0, (0, 0), &[]).is_invisible());
        assert!(!CursorImage::from_argb_premultiplied(1, 1, 2, (0, 0), &[0, 0x01_00_00_00]).is_invisible());
    }
}
