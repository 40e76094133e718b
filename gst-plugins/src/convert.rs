//! BGRx → I420 colour conversion of rectangles (BT.709, limited range), in integer
//! arithmetic, with an AVX2 path on x86_64 CPUs that have it.
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
///
/// Uses AVX2 when the CPU has it (detected once), the portable code otherwise; both give
/// the same bytes. Panics if `src`, `dst` or `layout` are too small for `rect`.
pub fn bgrx_to_i420(src: &[u8], src_stride: usize, dst: &mut [u8], layout: &I420Layout, rect: Rect) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        avx2::bgrx_to_i420(src, src_stride, dst, layout, rect);
        return;
    }
    bgrx_to_i420_scalar(src, src_stride, dst, layout, rect);
}

/// The portable conversion: the reference the SIMD code must match byte for byte.
pub fn bgrx_to_i420_scalar(src: &[u8], src_stride: usize, dst: &mut [u8], layout: &I420Layout, rect: Rect) {
    for_each_row_pair(src, src_stride, dst, layout, rect, row_pair_scalar);
}

/// Cuts, for each pair of rows of `rect`, the two source rows, the two Y rows and the U and
/// V rows (each exactly as long as the rectangle needs; the slicing panics on bad input)
/// and hands them to `convert`.
#[inline(always)]
fn for_each_row_pair(
    src: &[u8],
    src_stride: usize,
    dst: &mut [u8],
    layout: &I420Layout,
    rect: Rect,
    mut convert: impl FnMut(&[u8], &[u8], &mut [u8], &mut [u8], &mut [u8], &mut [u8]),
) {
    debug_assert!(
        rect.x.is_multiple_of(2) && rect.y.is_multiple_of(2) && rect.w.is_multiple_of(2) && rect.h.is_multiple_of(2)
    );
    let (x0, w) = (rect.x as usize, rect.w as usize);
    let (y_plane, chroma) = dst.split_at_mut(layout.u_offset);
    let (u_plane, v_plane) = chroma.split_at_mut(layout.v_offset - layout.u_offset);
    let (top, bottom) = (rect.y as usize, rect.y as usize + rect.h as usize);
    for row in (top..bottom).step_by(2) {
        let s0 = &src[row * src_stride + x0 * 4..][..w * 4];
        let s1 = &src[(row + 1) * src_stride + x0 * 4..][..w * 4];
        let (y0, y1) = {
            let (a, b) = y_plane[row * layout.y_stride..].split_at_mut(layout.y_stride);
            (&mut a[x0..x0 + w], &mut b[x0..x0 + w])
        };
        let crow = row / 2;
        let u = &mut u_plane[crow * layout.uv_stride + x0 / 2..][..w / 2];
        let v = &mut v_plane[crow * layout.uv_stride + x0 / 2..][..w / 2];
        convert(s0, s1, y0, y1, u, v);
    }
}

/// One pair of rows: `s0`, `s1` hold `n` BGRx pixels, `y0`, `y1` `n` luma samples, `u`, `v`
/// `n / 2` chroma samples (shorter slices shorten the run).
fn row_pair_scalar(s0: &[u8], s1: &[u8], y0: &mut [u8], y1: &mut [u8], u: &mut [u8], v: &mut [u8]) {
    for (d, p) in y0.iter_mut().zip(s0.chunks_exact(4)) {
        *d = luma(i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
    }
    for (d, p) in y1.iter_mut().zip(s1.chunks_exact(4)) {
        *d = luma(i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
    }
    for (((du, dv), a), b) in u.iter_mut().zip(v.iter_mut()).zip(s0.chunks_exact(8)).zip(s1.chunks_exact(8)) {
        // Sum of the 2×2 block; the mean is folded into the shift below.
        let bs = i32::from(a[0]) + i32::from(a[4]) + i32::from(b[0]) + i32::from(b[4]);
        let gs = i32::from(a[1]) + i32::from(a[5]) + i32::from(b[1]) + i32::from(b[5]);
        let rs = i32::from(a[2]) + i32::from(a[6]) + i32::from(b[2]) + i32::from(b[6]);
        *du = ((UR * rs + UG * gs + UB * bs + 4 * C_BIAS) >> (SHIFT + 2)) as u8;
        *dv = ((VR * rs + VG * gs + VB * bs + 4 * C_BIAS) >> (SHIFT + 2)) as u8;
    }
}

/// The AVX2 conversion, 16 pixels × 2 rows per step.
///
/// Exactly the scalar arithmetic, reordered: pixels are widened to 16 bits (b, g, r, x) and
/// `_mm256_madd_epi16` with (B, G, R, 0) coefficients gives `B·b + G·g` and `R·r` as 32-bit
/// sums, which `_mm256_hadd_epi32` adds. Chroma takes the same path on the 2×2 block sums
/// (at most 1020, so 16 bits hold them). Every product and sum is exact in 32 bits (the
/// largest magnitude is (5548 + 7196) · 1020 + 4 · C_BIAS < 2^25), the bias is added and the
/// shift is arithmetic as in the scalar code, and the results (Y in 16..=235, U/V in
/// 16..=240) never reach the saturation of the packs, so the bytes are the same.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    /// Pixels per step.
    const STEP: usize = 16;

    // The coefficients must fit the 16-bit lanes of `_mm256_madd_epi16`.
    const _: () = {
        let all = [YR, YG, YB, UR, UG, UB, VR, VG, VB];
        let mut i = 0;
        while i < all.len() {
            assert!(all[i] >= i16::MIN as i32 && all[i] <= i16::MAX as i32);
            i += 1;
        }
    };

    /// (b, g, r, x) coefficients as four 16-bit lanes of one 64-bit value.
    const fn coefficients(b: i32, g: i32, r: i32) -> i64 {
        ((b as i16 as u16 as u64) | ((g as i16 as u16 as u64) << 16) | ((r as i16 as u16 as u64) << 32)) as i64
    }

    pub(super) fn available() -> bool {
        static AVX2: OnceLock<bool> = OnceLock::new();
        *AVX2.get_or_init(|| is_x86_feature_detected!("avx2"))
    }

    /// Same contract as [`super::bgrx_to_i420`], always with AVX2 (the scalar code on a CPU
    /// without it, so that calling it is never unsound).
    pub(super) fn bgrx_to_i420(src: &[u8], src_stride: usize, dst: &mut [u8], layout: &I420Layout, rect: Rect) {
        if !available() {
            bgrx_to_i420_scalar(src, src_stride, dst, layout, rect);
            return;
        }
        for_each_row_pair(src, src_stride, dst, layout, rect, |s0, s1, y0, y1, u, v| {
            // SAFETY: `available()` has just found AVX2 on this CPU; the kernel itself only
            // touches memory inside the slices it is given.
            unsafe { row_pair(s0, s1, y0, y1, u, v) }
        });
    }

    /// One pair of rows, as [`super::row_pair_scalar`]: whole steps of 16 pixels with AVX2,
    /// the rest (fewer than 16 pixels) with the scalar code.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2. Any slice lengths are fine: the number of steps is the
    /// number that all six slices hold completely.
    #[target_feature(enable = "avx2")]
    unsafe fn row_pair(s0: &[u8], s1: &[u8], y0: &mut [u8], y1: &mut [u8], u: &mut [u8], v: &mut [u8]) {
        let steps = (s0.len().min(s1.len()) / (STEP * 4))
            .min(y0.len().min(y1.len()) / STEP)
            .min(u.len().min(v.len()) / (STEP / 2));
        // Split off exactly `steps` whole steps of every row; these `split_at` cannot panic.
        let (s0, s0_rest) = s0.split_at(steps * STEP * 4);
        let (s1, s1_rest) = s1.split_at(steps * STEP * 4);
        let (y0, y0_rest) = y0.split_at_mut(steps * STEP);
        let (y1, y1_rest) = y1.split_at_mut(steps * STEP);
        let (u, u_rest) = u.split_at_mut(steps * STEP / 2);
        let (v, v_rest) = v.split_at_mut(steps * STEP / 2);

        let y_coef = _mm256_set1_epi64x(coefficients(YB, YG, YR));
        let u_coef = _mm256_set1_epi64x(coefficients(UB, UG, UR));
        let v_coef = _mm256_set1_epi64x(coefficients(VB, VG, VR));
        let y_bias = _mm256_set1_epi32(Y_BIAS);
        let c_bias = _mm256_set1_epi32(4 * C_BIAS);
        let zero = _mm256_setzero_si256();
        // Dword order that turns the packed luma back into pixel order (see below).
        let y_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        // Byte order that turns U0 U1 V0 V1 U4 U5 V4 V5 U2 U3 V2 V3 U6 U7 V6 V7 into U0..U7 V0..V7.
        let uv_order = _mm_setr_epi8(0, 1, 8, 9, 4, 5, 12, 13, 2, 3, 10, 11, 6, 7, 14, 15);

        // Luma of 8 pixels widened to (b, g, r, x) × 16 bits: `lo` holds pixels 0, 1 | 4, 5
        // and `hi` 2, 3 | 6, 7 (unpacking works per 128-bit lane), so the horizontal add
        // gives 32-bit Y of pixels 0 1 2 3 | 4 5 6 7, in order.
        let luma8 = |lo: __m256i, hi: __m256i| -> __m256i {
            let sum = _mm256_hadd_epi32(_mm256_madd_epi16(lo, y_coef), _mm256_madd_epi16(hi, y_coef));
            _mm256_srai_epi32::<SHIFT>(_mm256_add_epi32(sum, y_bias))
        };
        // Chroma of the four 2×2 blocks of 8 pixels × 2 rows: 32-bit U0 U1 V0 V1 | U2 U3 V2 V3.
        let chroma8 = |lo0: __m256i, hi0: __m256i, lo1: __m256i, hi1: __m256i| -> __m256i {
            let lo = _mm256_add_epi16(lo0, lo1); // column sums of pixels 0, 1 | 4, 5
            let hi = _mm256_add_epi16(hi0, hi1); // 2, 3 | 6, 7
            let lo = _mm256_add_epi16(lo, _mm256_bsrli_epi128::<8>(lo)); // block 0 | 2 in the low half
            let hi = _mm256_add_epi16(hi, _mm256_bsrli_epi128::<8>(hi)); // block 1 | 3
            let blocks = _mm256_unpacklo_epi64(lo, hi); // blocks 0, 1 | 2, 3
            let sum = _mm256_hadd_epi32(_mm256_madd_epi16(blocks, u_coef), _mm256_madd_epi16(blocks, v_coef));
            _mm256_srai_epi32::<{ SHIFT + 2 }>(_mm256_add_epi32(sum, c_bias))
        };

        let sources = s0.chunks_exact(STEP * 4).zip(s1.chunks_exact(STEP * 4));
        let lumas = y0.chunks_exact_mut(STEP).zip(y1.chunks_exact_mut(STEP));
        let chromas = u.chunks_exact_mut(STEP / 2).zip(v.chunks_exact_mut(STEP / 2));
        for (((a, b), (ya, yb)), (du, dv)) in sources.zip(lumas).zip(chromas) {
            // SAFETY: `a` and `b` are 64 bytes long, so both 32-byte unaligned loads of each
            // stay inside them.
            let (a0, a1, b0, b1) = unsafe {
                (
                    _mm256_loadu_si256(a.as_ptr().cast()),
                    _mm256_loadu_si256(a.as_ptr().add(32).cast()),
                    _mm256_loadu_si256(b.as_ptr().cast()),
                    _mm256_loadu_si256(b.as_ptr().add(32).cast()),
                )
            };
            let (a0l, a0h) = (_mm256_unpacklo_epi8(a0, zero), _mm256_unpackhi_epi8(a0, zero));
            let (a1l, a1h) = (_mm256_unpacklo_epi8(a1, zero), _mm256_unpackhi_epi8(a1, zero));
            let (b0l, b0h) = (_mm256_unpacklo_epi8(b0, zero), _mm256_unpackhi_epi8(b0, zero));
            let (b1l, b1h) = (_mm256_unpacklo_epi8(b1, zero), _mm256_unpackhi_epi8(b1, zero));

            // 16-bit Y, per lane: row 0 pixels 0-3, 8-11 | 4-7, 12-15, likewise row 1; the bytes
            // as dwords: r0[0-3] r0[8-11] r1[0-3] r1[8-11] | r0[4-7] r0[12-15] r1[4-7] r1[12-15].
            let ya16 = _mm256_packs_epi32(luma8(a0l, a0h), luma8(a1l, a1h));
            let yb16 = _mm256_packs_epi32(luma8(b0l, b0h), luma8(b1l, b1h));
            let y8 = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ya16, yb16), y_order);

            // 16-bit chroma: U0 U1 V0 V1 U4 U5 V4 V5 | U2 U3 V2 V3 U6 U7 V6 V7.
            let c16 = _mm256_packs_epi32(chroma8(a0l, a0h, b0l, b0h), chroma8(a1l, a1h, b1l, b1h));
            let c8 = _mm_packus_epi16(_mm256_castsi256_si128(c16), _mm256_extracti128_si256::<1>(c16));
            let uv = _mm_shuffle_epi8(c8, uv_order);

            // SAFETY: `ya` and `yb` are 16 bytes long and `du` and `dv` 8, the sizes of the
            // unaligned stores into them.
            unsafe {
                _mm_storeu_si128(ya.as_mut_ptr().cast(), _mm256_castsi256_si128(y8));
                _mm_storeu_si128(yb.as_mut_ptr().cast(), _mm256_extracti128_si256::<1>(y8));
                _mm_storel_epi64(du.as_mut_ptr().cast(), uv);
                _mm_storel_epi64(dv.as_mut_ptr().cast(), _mm_unpackhi_epi64(uv, uv));
            }
        }
        row_pair_scalar(s0_rest, s1_rest, y0_rest, y1_rest, u_rest, v_rest);
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

    /// Converts `rect` with the scalar code and with `other` into two copies of the same
    /// pre-filled buffer and asserts that every byte agrees.
    fn assert_same_as_scalar(
        other: fn(&[u8], usize, &mut [u8], &I420Layout, Rect),
        src: &[u8],
        stride: usize,
        layout: &I420Layout,
        rect: Rect,
    ) {
        let fill: Vec<u8> = (0..layout.size).map(|i| (i * 31 % 251) as u8).collect();
        let (mut want, mut got) = (fill.clone(), fill);
        bgrx_to_i420_scalar(src, stride, &mut want, layout, rect);
        other(src, stride, &mut got, layout, rect);
        if let Some(i) = (0..layout.size).find(|&i| want[i] != got[i]) {
            panic!("{rect:?} (stride {stride}): byte {i} is {} instead of {}", got[i], want[i]);
        }
    }

    /// Rectangles of a `w × h` picture: fixed edge cases plus `random` pseudo-random ones.
    fn test_rectangles(w: u32, h: u32, random: usize) -> Vec<Rect> {
        let mut rects = vec![
            Rect { x: 0, y: 0, w, h },
            Rect { x: 0, y: 0, w: 2, h: 2 },
            Rect { x: w.saturating_sub(2), y: h.saturating_sub(2), w: 2, h: 2 },
            Rect { x: w.saturating_sub(34), y: 0, w: 34, h },
            Rect { x: 0, y: h.saturating_sub(4), w, h: 4 },
            Rect { x: 2, y: 2, w: w.saturating_sub(4), h: h.saturating_sub(4) },
        ];
        for rw in [4, 14, 16, 18, 30, 32, 34, 46, 48, 50] {
            rects.push(Rect { x: 6, y: 4, w: rw, h: 6 });
            rects.push(Rect { x: w.saturating_sub(rw), y: h.saturating_sub(6), w: rw, h: 6 });
        }
        // Only rectangles inside the picture (the fixed ones may not fit a small one).
        rects.retain(|r| r.x + r.w <= w && r.y + r.h <= h && r.area() > 0);
        let mut state = 0x9e37_79b9_u32;
        let mut next = |n: u32| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state % n
        };
        for _ in 0..random {
            let (x, y) = (next(w), next(h));
            let r = Rect { x, y, w: next(w - x) + 1, h: next(h - y) + 1 };
            rects.push(r.to_even(w, h));
        }
        rects
    }

    #[test]
    fn dispatching_function_matches_the_scalar_code() {
        let (w, h) = (98usize, 40usize);
        let src = pseudo_random_picture(w, h);
        let layout = I420Layout::new(w as u32, h as u32);
        for rect in test_rectangles(w as u32, h as u32, 50) {
            assert_same_as_scalar(bgrx_to_i420, &src, w * 4, &layout, rect);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_matches_the_scalar_code_byte_for_byte() {
        if !avx2::available() {
            eprintln!("no AVX2 on this CPU: nothing to compare");
            return;
        }
        // Sizes around the 16-pixel step, a width that is no multiple of 4, padded strides,
        // and a picture of extremes (only 0 and 255) next to pseudo-random ones.
        for (w, h, pad) in
            [(2usize, 2usize, 0usize), (16, 2, 0), (18, 4, 8), (130, 70, 0), (130, 70, 36), (1366, 20, 8)]
        {
            let stride = w * 4 + pad;
            let random = pseudo_random_picture(stride / 4 + 1, h);
            let extremes: Vec<u8> = random.iter().map(|&b| if b & 1 == 0 { 0 } else { 255 }).collect();
            let layout = I420Layout::new(w as u32, h as u32);
            for src in [&random[..stride * h], &extremes[..stride * h]] {
                for rect in test_rectangles(w as u32, h as u32, 300) {
                    assert_same_as_scalar(avx2::bgrx_to_i420, src, stride, &layout, rect);
                }
            }
        }
    }

    /// `cargo test -j2 --release -p kelpie-gst-plugins --lib -- --ignored --nocapture conversion_speed`
    #[test]
    #[ignore = "benchmark; run in release with --ignored --nocapture"]
    fn conversion_speed() {
        let (w, h, frames) = (1920usize, 1080usize, 200u32);
        let src = pseudo_random_picture(w, h);
        let layout = I420Layout::new(w as u32, h as u32);
        let mut dst = vec![0u8; layout.size];
        let full = Rect { x: 0, y: 0, w: w as u32, h: h as u32 };
        let mut time = |name: &str, convert: fn(&[u8], usize, &mut [u8], &I420Layout, Rect)| {
            convert(&src, w * 4, &mut dst, &layout, full); // warm-up
            let start = std::time::Instant::now();
            for _ in 0..frames {
                convert(std::hint::black_box(&src), w * 4, &mut dst, &layout, full);
                std::hint::black_box(&mut dst);
            }
            let ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(frames);
            println!("{name}: {ms:.3} ms per 1920×1080 frame ({frames} frames)");
        };
        time("scalar", bgrx_to_i420_scalar);
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            time("avx2", avx2::bgrx_to_i420);
        }
        time("bgrx_to_i420 (dispatch)", bgrx_to_i420);
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
