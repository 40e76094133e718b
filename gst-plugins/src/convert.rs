//! BGRx → I420 colour conversion of rectangles (BT.709, limited range), in integer
//! arithmetic that the compiler vectorises.
//!
//! Converting only what changed is the point: a typing user changes a few thousand
//! pixels per frame, not two million. Chroma is the mean of each 2×2 block (centre-sited),
//! so rectangles are widened to even coordinates and every chroma sample they touch is
//! recomputed from complete blocks.

/// A rectangle in pixels.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    pub fn area(&self) -> u64 {
        u64::from(self.w) * u64::from(self.h)
    }

    /// Grows the rectangle to even coordinates and size, clipped to `width × height`
    /// (both even), so that it covers whole 2×2 chroma blocks.
    pub fn to_even(self, width: u32, height: u32) -> Rect {
        let x0 = (self.x & !1).min(width);
        let y0 = (self.y & !1).min(height);
        let x1 = (self.x.saturating_add(self.w).saturating_add(1) & !1).min(width);
        let y1 = (self.y.saturating_add(self.h).saturating_add(1) & !1).min(height);
        Rect { x: x0, y: y0, w: x1.saturating_sub(x0), h: y1.saturating_sub(y0) }
    }

    /// The smallest rectangle covering both.
    pub fn union(self, o: Rect) -> Rect {
        let x0 = self.x.min(o.x);
        let y0 = self.y.min(o.y);
        let x1 = (self.x + self.w).max(o.x + o.w);
        let y1 = (self.y + self.h).max(o.y + o.h);
        Rect { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }
    }
}

/// An I420 picture in one contiguous buffer: Y plane, then U, then V (GStreamer's
/// default I420 layout for even sizes: strides are the plane widths rounded up to 4).
#[derive(Debug, Clone)]
pub struct I420Layout {
    pub width: u32,
    pub height: u32,
    pub y_stride: usize,
    pub uv_stride: usize,
    pub u_offset: usize,
    pub v_offset: usize,
    pub size: usize,
}

impl I420Layout {
    pub fn new(width: u32, height: u32) -> Self {
        let y_stride = (width as usize).next_multiple_of(4);
        let uv_stride = (width as usize).div_ceil(2).next_multiple_of(4);
        let y_size = y_stride * height as usize;
        let uv_size = uv_stride * (height as usize).div_ceil(2);
        Self {
            width,
            height,
            y_stride,
            uv_stride,
            u_offset: y_size,
            v_offset: y_size + uv_size,
            size: y_size + 2 * uv_size,
        }
    }
}

// BT.709 limited-range coefficients, scaled by 2^14.
const YR: i32 = 2990; // 0.1826
const YG: i32 = 10060; // 0.6142
const YB: i32 = 1015; // 0.0620
const UR: i32 = -1648; // -0.1006
const UG: i32 = -5548; // -0.3386
const UB: i32 = 7196; // 0.4392
const VR: i32 = 7196; // 0.4392
const VG: i32 = -6536; // -0.3989
const VB: i32 = -660; // -0.0403
const SHIFT: i32 = 14;
const Y_BIAS: i32 = (16 << SHIFT) + (1 << (SHIFT - 1));
const C_BIAS: i32 = (128 << SHIFT) + (1 << (SHIFT - 1));

#[inline(always)]
fn luma(b: i32, g: i32, r: i32) -> u8 {
    ((YR * r + YG * g + YB * b + Y_BIAS) >> SHIFT) as u8
}

/// Converts `rect` (made even by the caller) of a BGRx picture with `src_stride` bytes per
/// row into the same place of an I420 picture in `dst`.
pub fn bgrx_to_i420(src: &[u8], src_stride: usize, dst: &mut [u8], layout: &I420Layout, rect: Rect) {
    debug_assert!(rect.x % 2 == 0 && rect.y % 2 == 0 && rect.w % 2 == 0 && rect.h % 2 == 0);
    let (x0, w) = (rect.x as usize, rect.w as usize);
    let (y_plane, chroma) = dst.split_at_mut(layout.u_offset);
    let (u_plane, v_plane) = chroma.split_at_mut(layout.v_offset - layout.u_offset);
    for row in (rect.y as usize..(rect.y + rect.h) as usize).step_by(2) {
        let s0 = &src[row * src_stride + x0 * 4..][..w * 4];
        let s1 = &src[(row + 1) * src_stride + x0 * 4..][..w * 4];
        let (y0, y1) = {
            let (a, b) = y_plane[row * layout.y_stride..].split_at_mut(layout.y_stride);
            (&mut a[x0..x0 + w], &mut b[x0..x0 + w])
        };
        for (d, p) in y0.iter_mut().zip(s0.chunks_exact(4)) {
            *d = luma(i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
        }
        for (d, p) in y1.iter_mut().zip(s1.chunks_exact(4)) {
            *d = luma(i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
        }
        let crow = row / 2;
        let u = &mut u_plane[crow * layout.uv_stride + x0 / 2..][..w / 2];
        let v = &mut v_plane[crow * layout.uv_stride + x0 / 2..][..w / 2];
        for (((du, dv), a), b) in u.iter_mut().zip(v.iter_mut()).zip(s0.chunks_exact(8)).zip(s1.chunks_exact(8)) {
            // Sum of the 2×2 block; the mean is folded into the shift below.
            let bs = i32::from(a[0]) + i32::from(a[4]) + i32::from(b[0]) + i32::from(b[4]);
            let gs = i32::from(a[1]) + i32::from(a[5]) + i32::from(b[1]) + i32::from(b[5]);
            let rs = i32::from(a[2]) + i32::from(a[6]) + i32::from(b[2]) + i32::from(b[6]);
            *du = ((UR * rs + UG * gs + UB * bs + 4 * C_BIAS) >> (SHIFT + 2)) as u8;
            *dv = ((VR * rs + VG * gs + VB * bs + 4 * C_BIAS) >> (SHIFT + 2)) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The BT.709 limited-range formula in floating point: the reference.
    fn reference(b: f64, g: f64, r: f64) -> (f64, f64, f64) {
        let (kr, kb) = (0.2126, 0.0722);
        let (r, g, b) = (r / 255.0, g / 255.0, b / 255.0);
        let y = kr * r + (1.0 - kr - kb) * g + kb * b;
        let cb = (b - y) / (2.0 * (1.0 - kb));
        let cr = (r - y) / (2.0 * (1.0 - kr));
        (16.0 + 219.0 * y, 128.0 + 224.0 * cb, 128.0 + 224.0 * cr)
    }

    fn pseudo_random_picture(w: usize, h: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_u32;
        (0..w * h * 4)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn whole_picture_matches_the_floating_point_reference_within_one() {
        let (w, h) = (64usize, 48usize);
        let src = pseudo_random_picture(w, h);
        let layout = I420Layout::new(w as u32, h as u32);
        let mut dst = vec![0u8; layout.size];
        bgrx_to_i420(&src, w * 4, &mut dst, &layout, Rect { x: 0, y: 0, w: w as u32, h: h as u32 });
        let mut worst: f64 = 0.0;
        for y in 0..h {
            for x in 0..w {
                let p = &src[(y * w + x) * 4..];
                let (ry, _, _) = reference(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
                worst = worst.max((f64::from(dst[y * layout.y_stride + x]) - ry).abs());
            }
        }
        for cy in 0..h / 2 {
            for cx in 0..w / 2 {
                let mut acc = (0.0, 0.0, 0.0);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let p = &src[((2 * cy + dy) * w + 2 * cx + dx) * 4..];
                    acc.0 += f64::from(p[0]) / 4.0;
                    acc.1 += f64::from(p[1]) / 4.0;
                    acc.2 += f64::from(p[2]) / 4.0;
                }
                let (_, u, v) = reference(acc.0, acc.1, acc.2);
                worst = worst.max((f64::from(dst[layout.u_offset + cy * layout.uv_stride + cx]) - u).abs());
                worst = worst.max((f64::from(dst[layout.v_offset + cy * layout.uv_stride + cx]) - v).abs());
            }
        }
        assert!(worst <= 1.0, "worst difference {worst}");
    }

    #[test]
    fn black_white_and_primaries_hit_the_studio_range() {
        let layout = I420Layout::new(2, 2);
        let mut dst = vec![0u8; layout.size];
        for (bgr, yuv) in
            [([0, 0, 0], (16, 128, 128)), ([255, 255, 255], (235, 128, 128)), ([0, 0, 255], (63, 102, 240))]
        {
            let px = [bgr[0], bgr[1], bgr[2], 0];
            let src: Vec<u8> = px.iter().copied().cycle().take(16).collect();
            bgrx_to_i420(&src, 8, &mut dst, &layout, Rect { x: 0, y: 0, w: 2, h: 2 });
            let got = (dst[0], dst[layout.u_offset], dst[layout.v_offset]);
            assert!(
                (i32::from(got.0) - yuv.0).abs() <= 1
                    && (i32::from(got.1) - yuv.1).abs() <= 1
                    && (i32::from(got.2) - yuv.2).abs() <= 1,
                "{bgr:?} → {got:?}, expected {yuv:?}"
            );
        }
    }

    #[test]
    fn converting_a_rectangle_touches_nothing_outside_it() {
        let (w, h) = (32usize, 32usize);
        let src = pseudo_random_picture(w, h);
        let layout = I420Layout::new(w as u32, h as u32);
        let mut dst = vec![7u8; layout.size];
        let rect = Rect { x: 4, y: 6, w: 10, h: 8 };
        bgrx_to_i420(&src, w * 4, &mut dst, &layout, rect);
        let mut full = vec![0u8; layout.size];
        bgrx_to_i420(&src, w * 4, &mut full, &layout, Rect { x: 0, y: 0, w: 32, h: 32 });
        for y in 0..h {
            for x in 0..w {
                let inside = (4..14).contains(&x) && (6..14).contains(&y);
                let v = dst[y * layout.y_stride + x];
                if inside {
                    assert_eq!(v, full[y * layout.y_stride + x]);
                } else {
                    assert_eq!(v, 7, "({x},{y}) changed");
                }
            }
        }
    }

    #[test]
    fn rectangles_grow_to_even_bounds_and_clip() {
        assert_eq!(Rect { x: 3, y: 5, w: 4, h: 1 }.to_even(100, 100), Rect { x: 2, y: 4, w: 6, h: 2 });
        assert_eq!(Rect { x: 98, y: 98, w: 10, h: 10 }.to_even(100, 100), Rect { x: 98, y: 98, w: 2, h: 2 });
        assert_eq!(
            Rect { x: 0, y: 0, w: 2, h: 2 }.union(Rect { x: 10, y: 4, w: 2, h: 2 }),
            Rect { x: 0, y: 0, w: 12, h: 6 }
        );
    }

    #[test]
    fn layout_matches_gstreamer_i420() {
        let l = I420Layout::new(1920, 1080);
        assert_eq!(
            (l.y_stride, l.uv_stride, l.u_offset, l.v_offset, l.size),
            (1920, 960, 2_073_600, 2_592_000, 3_110_400)
        );
        let odd = I420Layout::new(1366, 768);
        assert_eq!((odd.y_stride, odd.uv_stride), (1368, 684));
    }
}
