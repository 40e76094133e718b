//! The X cursor drawn into captured frames (`kelpiexsrc show-pointer=true`).
//!
//! X keeps the cursor out of the framebuffer, so a capture shows no pointer. Browsers draw
//! the remote cursor themselves (as a CSS cursor) — except in pointer lock, where the
//! browser hides every cursor and the user would steer blind. Then the capture composites
//! the cursor into the picture. Pure code: placement and blending, tested without X.

use crate::convert::Rect;

/// A cursor image as XFixes `GetCursorImage` gives it: premultiplied ARGB, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sprite {
    /// Pointer position (the hotspot) in screen pixels.
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub xhot: u32,
    pub yhot: u32,
    pub serial: u32,
    pub pixels: Vec<u32>,
}

impl Sprite {
    /// The screen area the sprite covers, clipped to a `width × height` screen; `None`
    /// when it is entirely off screen or empty.
    pub fn rect(&self, width: u32, height: u32) -> Option<Rect> {
        let x0 = i64::from(self.x) - i64::from(self.xhot);
        let y0 = i64::from(self.y) - i64::from(self.yhot);
        let x1 = (x0 + i64::from(self.width)).min(i64::from(width));
        let y1 = (y0 + i64::from(self.height)).min(i64::from(height));
        let (cx0, cy0) = (x0.max(0), y0.max(0));
        (x1 > cx0 && y1 > cy0).then(|| Rect {
            x: cx0 as u32,
            y: cy0 as u32,
            w: (x1 - cx0) as u32,
            h: (y1 - cy0) as u32,
        })
    }

    /// Whether drawing `other` instead of `self` changes the picture.
    pub fn looks_different(&self, other: &Sprite) -> bool {
        (self.x, self.y, self.serial) != (other.x, other.y, other.serial)
    }

    /// Blends the sprite over a BGRx frame of `width × height` with `stride` bytes per row.
    pub fn draw(&self, frame: &mut [u8], stride: usize, width: u32, height: u32) {
        let Some(area) = self.rect(width, height) else { return };
        let left = i64::from(self.x) - i64::from(self.xhot);
        let top = i64::from(self.y) - i64::from(self.yhot);
        for row in area.y..area.y + area.h {
            let sy = (i64::from(row) - top) as usize;
            for col in area.x..area.x + area.w {
                let sx = (i64::from(col) - left) as usize;
                let Some(&argb) = self.pixels.get(sy * self.width as usize + sx) else { continue };
                let a = argb >> 24;
                if a == 0 {
                    continue;
                }
                let at = row as usize * stride + col as usize * 4;
                let Some(px) = frame.get_mut(at..at + 3) else { continue };
                let inv = 255 - a;
                // Premultiplied source: out = src + dst × (1 − α).
                for (i, shift) in [(0usize, 0u32), (1, 8), (2, 16)] {
                    let s = (argb >> shift) & 0xff;
                    let d = u32::from(px[i]);
                    px[i] = (s + (d * inv + 127) / 255).min(255) as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sprite(x: i32, y: i32, pixels: Vec<u32>, w: u32) -> Sprite {
        let h = pixels.len() as u32 / w;
        Sprite { x, y, width: w, height: h, xhot: 1, yhot: 1, serial: 1, pixels }
    }

    #[test]
    fn the_hotspot_sits_on_the_pointer_position() {
        let s = sprite(10, 20, vec![0; 9], 3);
        assert_eq!(s.rect(100, 100), Some(Rect { x: 9, y: 19, w: 3, h: 3 }));
    }

    #[test]
    fn sprites_at_the_edge_are_clipped_and_off_screen_ones_vanish() {
        let s = sprite(0, 0, vec![0; 9], 3);
        assert_eq!(s.rect(100, 100), Some(Rect { x: 0, y: 0, w: 2, h: 2 }));
        assert_eq!(sprite(500, 5, vec![0; 9], 3).rect(100, 100), None);
        assert_eq!(sprite(99, 99, vec![0; 9], 3).rect(100, 100), Some(Rect { x: 98, y: 98, w: 2, h: 2 }));
    }

    #[test]
    fn opaque_pixels_replace_and_transparent_ones_keep_the_frame() {
        // 2×1 sprite at (1,0) with hotspot (1,1)... use hotspot 0 for clarity.
        let mut s = sprite(0, 0, vec![0xff_10_20_30, 0x00_00_00_00], 2);
        s.xhot = 0;
        s.yhot = 0;
        let mut frame = vec![200u8; 2 * 4];
        s.draw(&mut frame, 8, 2, 1);
        assert_eq!(&frame[0..3], &[0x30, 0x20, 0x10], "BGR order, opaque replaces");
        assert_eq!(&frame[4..7], &[200, 200, 200], "transparent keeps");
    }

    #[test]
    fn half_transparent_pixels_blend_premultiplied() {
        // 50 % white, premultiplied: A=128, RGB=128.
        let mut s = sprite(0, 0, vec![0x80_80_80_80], 1);
        s.xhot = 0;
        s.yhot = 0;
        let mut frame = vec![0u8; 4];
        s.draw(&mut frame, 4, 1, 1);
        assert_eq!(&frame[0..3], &[128, 128, 128]);
        let mut white = vec![255u8; 4];
        s.draw(&mut white, 4, 1, 1);
        assert_eq!(&white[0..3], &[255, 255, 255]);
    }

    #[test]
    fn a_move_or_a_new_image_looks_different() {
        let a = sprite(5, 5, vec![0; 1], 1);
        let mut b = a.clone();
        assert!(!a.looks_different(&b));
        b.x = 6;
        assert!(a.looks_different(&b));
        let mut c = a.clone();
        c.serial = 2;
        assert!(a.looks_different(&c));
    }
}
