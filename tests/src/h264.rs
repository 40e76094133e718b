//! Just enough H.264 to check what the server streams: an RTP depacketizer (RFC 6184) and a
//! sequence-parameter-set parser.
//!
//! The test client never decodes video; it only has to know where access units start and
//! end, whether one is a keyframe, and what picture size the encoder announced. Those three
//! facts are what a browser's first picture depends on, so they are what the tests assert.
//! Everything here is pure and total: malformed input from the network yields an
//! [`H264Error`], never a panic.

use thiserror::Error;

/// NAL unit type of a non-IDR coded slice.
pub const NAL_SLICE: u8 = 1;
/// NAL unit type of an IDR (instantaneous decoder refresh) slice: a keyframe.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// RTP payload type number of a STAP-A aggregation packet (RFC 6184 §5.7.1).
pub const NAL_STAP_A: u8 = 24;
/// RTP payload type number of an FU-A fragmentation unit (RFC 6184 §5.8).
pub const NAL_FU_A: u8 = 28;

/// Largest NAL unit the depacketizer reassembles. A 4K IDR frame at a generous bit rate is a
/// few MiB; anything bigger is a corrupt or hostile stream and is dropped rather than letting
/// memory grow without bound.
pub const MAX_NAL_SIZE: usize = 16 * 1024 * 1024;

/// Why a payload or parameter set could not be interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum H264Error {
    /// The RTP payload or NAL unit has no bytes at all.
    #[error("empty payload")]
    Empty,
    /// A length field or header points past the end of the data.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// The forbidden_zero_bit is set, which RFC 6184 says marks a corrupt NAL unit.
    #[error("forbidden_zero_bit set")]
    ForbiddenBit,
    /// A packetization type this depacketizer does not handle: STAP-B, MTAP and FU-B only
    /// exist in interleaved mode, which WebRTC never negotiates; 0, 30 and 31 are reserved.
    #[error("unsupported packetization type {0}")]
    Unsupported(u8),
    /// An FU-A continuation arrived without its start (lost packet or stream joined late).
    #[error("FU-A fragment without a start fragment")]
    OrphanFragment,
    /// A reassembled NAL unit exceeded [`MAX_NAL_SIZE`].
    #[error("NAL unit larger than {MAX_NAL_SIZE} bytes")]
    TooLarge,
    /// The NAL unit handed to the SPS parser is not an SPS.
    #[error("NAL unit type {0} is not an SPS")]
    NotSps(u8),
    /// The SPS has a field value outside what the standard allows.
    #[error("invalid SPS: {0}")]
    InvalidSps(&'static str),
}

/// Returns the `nal_unit_type` of a NAL unit (the low five bits of its first byte).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// Reassembles NAL units from the payloads of consecutive RTP packets (RFC 6184,
/// non-interleaved mode: single NAL unit packets, STAP-A and FU-A).
///
/// Sequence numbers are needed because a lost FU-A fragment silently corrupts the NAL unit
/// being reassembled; the depacketizer drops the partial unit instead of emitting garbage,
/// just as a browser's jitter buffer would refuse to decode it.
#[derive(Debug, Default)]
pub struct Depacketizer {
    /// The NAL unit being reassembled from FU-A fragments, header byte included.
    fragment: Option<Vec<u8>>,
    /// Sequence number of the previous packet, to notice gaps.
    last_seq: Option<u16>,
    /// Number of partial NAL units thrown away because of gaps or orphan fragments.
    dropped: u64,
}

impl Depacketizer {
    /// A depacketizer with no partial state.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many partially reassembled NAL units were discarded so far (lost fragments).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Feeds one RTP payload; returns the NAL units it completes (possibly none).
    ///
    /// `seq` is the packet's RTP sequence number. A gap since the previous packet discards a
    /// half-reassembled FU-A unit. Errors describe this packet only: the depacketizer stays
    /// usable and the next packet is handled normally.
    pub fn push(&mut self, seq: u16, payload: &[u8]) -> Result<Vec<Vec<u8>>, H264Error> {
        if let Some(last) = self.last_seq {
            if seq != last.wrapping_add(1) && self.fragment.take().is_some() {
                self.dropped += 1;
            }
        }
        self.last_seq = Some(seq);

        let header = *payload.first().ok_or(H264Error::Empty)?;
        if header & 0x80 != 0 {
            self.discard_fragment();
            return Err(H264Error::ForbiddenBit);
        }
        match header & 0x1f {
            1..=23 => {
                // A complete NAL unit ends any fragment still in progress.
                self.discard_fragment();
                Ok(vec![payload.to_vec()])
            }
            NAL_STAP_A => {
                self.discard_fragment();
                parse_stap_a(&payload[1..])
            }
            NAL_FU_A => self.push_fu_a(payload),
            other => {
                self.discard_fragment();
                Err(H264Error::Unsupported(other))
            }
        }
    }

    fn discard_fragment(&mut self) {
        if self.fragment.take().is_some() {
            self.dropped += 1;
        }
    }

    fn push_fu_a(&mut self, payload: &[u8]) -> Result<Vec<Vec<u8>>, H264Error> {
        let indicator = payload[0];
        let fu_header = *payload.get(1).ok_or(H264Error::Truncated("FU-A header"))?;
        let start = fu_header & 0x80 != 0;
        let end = fu_header & 0x40 != 0;
        let data = &payload[2..];

        if start {
            self.discard_fragment();
            let mut nal = Vec::with_capacity(data.len() * 8 + 1);
            nal.push((indicator & 0xe0) | (fu_header & 0x1f));
            nal.extend_from_slice(data);
            self.fragment = Some(nal);
        } else {
            // Not counted in `dropped`: the unit it belonged to was counted when its
            // start (or an earlier fragment) went missing.
            let Some(nal) = self.fragment.as_mut() else {
                return Err(H264Error::OrphanFragment);
            };
            if nal.len() + data.len() > MAX_NAL_SIZE {
                self.fragment = None;
                self.dropped += 1;
                return Err(H264Error::TooLarge);
            }
            nal.extend_from_slice(data);
        }

        if end {
            // `fragment` is always Some here: set above for a start, checked for the rest.
            Ok(self.fragment.take().into_iter().collect())
        } else {
            Ok(Vec::new())
        }
    }
}

/// Splits the body of a STAP-A packet (after its one-byte header) into NAL units.
fn parse_stap_a(mut body: &[u8]) -> Result<Vec<Vec<u8>>, H264Error> {
    let mut nals = Vec::new();
    while !body.is_empty() {
        if body.len() < 2 {
            return Err(H264Error::Truncated("STAP-A size"));
        }
        let size = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let nal = body.get(2..2 + size).ok_or(H264Error::Truncated("STAP-A unit"))?;
        if nal.is_empty() {
            return Err(H264Error::Empty);
        }
        nals.push(nal.to_vec());
        body = &body[2 + size..];
    }
    Ok(nals)
}

/// Splits an Annex B byte stream (`00 00 01` / `00 00 00 01` start codes) into NAL units.
///
/// Used by tests to compare depacketized output against what the encoder wrote to disk.
pub fn split_annex_b(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(stream.len(), |next| next - 3);
        // Trailing zeros belong to the next start code (or are trailing_zero_8bits).
        while end > start && stream[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            nals.push(&stream[start..end]);
        }
    }
    nals
}

/// What the tests need from a sequence parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sps {
    /// profile_idc: 66 baseline, 77 main, 100 high, 244 high 4:4:4 predictive, …
    pub profile_idc: u8,
    /// The constraint_set0..5 flags byte (0x40 with profile 66 = constrained baseline).
    pub constraint_flags: u8,
    /// level_idc: ten times the level number (31 = level 3.1).
    pub level_idc: u8,
    /// seq_parameter_set_id.
    pub id: u32,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 (1 unless a high profile says otherwise).
    pub chroma_format_idc: u32,
    /// Luma bit depth (8 unless a high profile says otherwise).
    pub bit_depth_luma: u32,
    /// Whether every picture is a frame (false = interlaced fields possible).
    pub frame_mbs_only: bool,
    /// Width of the displayed picture in pixels, after cropping.
    pub width: u32,
    /// Height of the displayed picture in pixels, after cropping.
    pub height: u32,
}

impl Sps {
    /// The three bytes of the SDP `profile-level-id` parameter, as hex (e.g. `42c01f`).
    pub fn profile_level_id(&self) -> String {
        format!("{:02x}{:02x}{:02x}", self.profile_idc, self.constraint_flags, self.level_idc)
    }
}

/// Profiles whose SPS carries chroma format, bit depth and scaling matrices (H.264 §7.3.2.1.1).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// Parses an SPS NAL unit (header byte included, emulation-prevention bytes still in).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, H264Error> {
    let header = *nal.first().ok_or(H264Error::Empty)?;
    if header & 0x1f != NAL_SPS {
        return Err(H264Error::NotSps(header & 0x1f));
    }
    let rbsp = remove_emulation_prevention(&nal[1..]);
    let mut r = BitReader::new(&rbsp);

    let profile_idc = r.u8()?;
    let constraint_flags = r.u8()?;
    let level_idc = r.u8()?;
    let id = r.ue()?;
    if id > 31 {
        return Err(H264Error::InvalidSps("seq_parameter_set_id > 31"));
    }

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8;
    if HIGH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(H264Error::InvalidSps("chroma_format_idc > 3"));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        bit_depth_luma = r.ue()? + 8;
        let bit_depth_chroma = r.ue()? + 8;
        if bit_depth_luma > 14 || bit_depth_chroma > 14 {
            return Err(H264Error::InvalidSps("bit depth > 14"));
        }
        let _qpprime_y_zero_transform_bypass = r.flag()?;
        if r.flag()? {
            // seq_scaling_matrix_present_flag: six 4x4 lists, then two or six 8x8 lists.
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    let _log2_max_frame_num_minus4 = r.ue()?;
    match r.ue()? {
        0 => {
            let _log2_max_pic_order_cnt_lsb_minus4 = r.ue()?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.flag()?;
            let _offset_for_non_ref_pic = r.se()?;
            let _offset_for_top_to_bottom_field = r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(H264Error::InvalidSps("num_ref_frames_in_pic_order_cnt_cycle"));
            }
            for _ in 0..cycle {
                let _offset_for_ref_frame = r.se()?;
            }
        }
        2 => {}
        _ => return Err(H264Error::InvalidSps("pic_order_cnt_type > 2")),
    }
    let _max_num_ref_frames = r.ue()?;
    let _gaps_in_frame_num_allowed = r.flag()?;
    let width_mbs = r.ue()? + 1;
    let height_map_units = r.ue()? + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = r.flag()?;
    }
    let _direct_8x8_inference = r.flag()?;
    let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) = (0, 0, 0, 0);
    if r.flag()? {
        crop_left = r.ue()?;
        crop_right = r.ue()?;
        crop_top = r.ue()?;
        crop_bottom = r.ue()?;
    }
    // vui_parameters follow; nothing in them changes the picture size.

    // Crop units, H.264 equations 7-19 to 7-22.
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        0 => (1, field_factor),
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };

    let invalid_size = H264Error::InvalidSps("picture size out of range");
    let coded_width = width_mbs.checked_mul(16).ok_or(invalid_size.clone())?;
    let coded_height = height_map_units.checked_mul(16 * field_factor).ok_or(invalid_size.clone())?;
    let crop_x =
        crop_left.checked_add(crop_right).and_then(|c| c.checked_mul(crop_unit_x)).ok_or(invalid_size.clone())?;
    let crop_y =
        crop_top.checked_add(crop_bottom).and_then(|c| c.checked_mul(crop_unit_y)).ok_or(invalid_size.clone())?;
    if crop_x >= coded_width || crop_y >= coded_height {
        return Err(H264Error::InvalidSps("cropping removes the whole picture"));
    }

    Ok(Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        id,
        chroma_format_idc,
        bit_depth_luma,
        frame_mbs_only,
        width: coded_width - crop_x,
        height: coded_height - crop_y,
    })
}

/// Skips one scaling_list() (H.264 §7.3.2.1.1.1). Only its length matters to us, but the
/// length depends on the values: a delta that makes nextScale 0 ends the explicit list.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), H264Error> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(H264Error::InvalidSps("delta_scale out of range"));
            }
            next_scale = (last_scale + delta + 256).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// Turns a NAL payload into its RBSP by dropping each `03` that follows `00 00`.
pub fn remove_emulation_prevention(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// MSB-first bit reader with the Exp-Golomb codes of H.264 §9.1.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Result<u32, H264Error> {
        let byte = self.data.get(self.pos / 8).ok_or(H264Error::Truncated("SPS"))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    fn flag(&mut self) -> Result<bool, H264Error> {
        Ok(self.bit()? == 1)
    }

    fn bits(&mut self, n: u32) -> Result<u32, H264Error> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    fn u8(&mut self) -> Result<u8, H264Error> {
        // Eight bits always fit in a u8.
        Ok(self.bits(8)? as u8)
    }

    /// Unsigned Exp-Golomb; values needing more than 32 bits are rejected as corrupt.
    fn ue(&mut self) -> Result<u32, H264Error> {
        let mut leading_zeros = 0;
        while self.bit()? == 0 {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(H264Error::InvalidSps("Exp-Golomb code too long"));
            }
        }
        let suffix = self.bits(leading_zeros)?;
        // (2^lz - 1) + suffix <= 2^32 - 2 for lz <= 31.
        Ok(((1u64 << leading_zeros) - 1 + u64::from(suffix)) as u32)
    }

    /// Signed Exp-Golomb: 1, -1, 2, -2, … for code numbers 1, 2, 3, 4, …
    fn se(&mut self) -> Result<i64, H264Error> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SPS NAL units written by GStreamer's x264enc / openh264enc (see the brief in
    // `tests/testdata/README.md` for the exact pipelines).
    const SPS_CB_1920X1080: &[u8] = &[
        0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x5a, 0x80, 0x80, 0x80, 0xa0, 0x00, 0x00,
        0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe3, 0x06, 0x49,
    ];
    const SPS_CB_1280X720: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00, 0x03,
        0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x19, 0x24,
    ];
    const SPS_CB_1366X768: &[u8] = &[
        0x67, 0x42, 0xc0, 0x20, 0xd9, 0x00, 0x56, 0x06, 0x1e, 0x6f, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00,
        0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x19, 0x24,
    ];
    const SPS_CB_1002X602: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0xfc, 0x13, 0x79, 0x24, 0xc0, 0x5a, 0x80, 0x80, 0x80, 0xa0, 0x00, 0x00,
        0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe3, 0x06, 0x49,
    ];
    const SPS_HIGH_1920X1080: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x5a, 0x80, 0x80, 0x80, 0xa0, 0x00,
        0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe3, 0x06, 0x32, 0xc0,
    ];
    const SPS_HIGH_INTERLACED_1920X1080: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x04, 0x4f, 0xde, 0x02, 0xd4, 0x04, 0x04, 0x05, 0x00, 0x00,
        0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x9f, 0x16, 0x2d, 0x96,
    ];
    const SPS_HIGH422_1366X768: &[u8] = &[
        0x67, 0x7a, 0x00, 0x20, 0xbc, 0xd9, 0x40, 0x56, 0x06, 0x1e, 0x6f, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80, 0x00,
        0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb,
    ];
    const SPS_HIGH444_1366X768: &[u8] = &[
        0x67, 0xf4, 0x00, 0x20, 0x91, 0x9b, 0x28, 0x0a, 0xc0, 0xc3, 0xc5, 0xf8, 0x0b, 0x50, 0x10, 0x10, 0x14, 0x00,
        0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf2, 0x3c, 0x60, 0xc6, 0x58,
    ];
    const SPS_OPENH264_1366X768: &[u8] =
        &[0x67, 0x42, 0xc0, 0x20, 0x8c, 0x8d, 0x40, 0x2b, 0x03, 0x0f, 0x37, 0x00, 0xf0, 0x88, 0x46, 0xa0];

    /// From Kelpie's own offer (`sprop-parameter-sets`): x264 with `insert-vui=true`.
    const SPS_KELPIE_1280X720: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec, 0x05, 0xa8, 0x08, 0x08, 0x0a, 0x00, 0x00, 0x03, 0x00,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x79, 0x1e, 0x30, 0x65, 0x40,
    ];

    fn size(sps: &[u8]) -> (u32, u32) {
        let sps = parse_sps(sps).expect("valid SPS");
        (sps.width, sps.height)
    }

    #[test]
    fn sps_1080p_uses_cropping() {
        let sps = parse_sps(SPS_CB_1920X1080).unwrap();
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.profile_idc, 66);
        assert_eq!(sps.constraint_flags, 0xc0);
        assert_eq!(sps.level_idc, 40);
        assert_eq!(sps.profile_level_id(), "42c028");
        assert!(sps.frame_mbs_only);
    }

    #[test]
    fn sps_720p_and_odd_sizes() {
        assert_eq!(size(SPS_CB_1280X720), (1280, 720));
        assert_eq!(size(SPS_KELPIE_1280X720), (1280, 720));
        assert_eq!(size(SPS_CB_1366X768), (1366, 768));
        assert_eq!(size(SPS_CB_1002X602), (1002, 602));
        assert_eq!(size(SPS_OPENH264_1366X768), (1366, 768));
    }

    #[test]
    fn sps_high_profiles() {
        let high = parse_sps(SPS_HIGH_1920X1080).unwrap();
        assert_eq!((high.profile_idc, high.level_idc), (100, 40));
        assert_eq!((high.width, high.height), (1920, 1080));
        assert_eq!(high.chroma_format_idc, 1);
        assert_eq!(high.bit_depth_luma, 8);

        let h422 = parse_sps(SPS_HIGH422_1366X768).unwrap();
        assert_eq!((h422.profile_idc, h422.chroma_format_idc), (122, 2));
        assert_eq!((h422.width, h422.height), (1366, 768));

        let h444 = parse_sps(SPS_HIGH444_1366X768).unwrap();
        assert_eq!((h444.profile_idc, h444.chroma_format_idc), (244, 3));
        assert_eq!((h444.width, h444.height), (1366, 768));
    }

    #[test]
    fn sps_interlaced_doubles_map_units() {
        let sps = parse_sps(SPS_HIGH_INTERLACED_1920X1080).unwrap();
        assert!(!sps.frame_mbs_only);
        assert_eq!((sps.width, sps.height), (1920, 1080));
    }

    /// Bit writer for synthesising SPSs with features no encoder at hand emits (explicit
    /// scaling lists, pic_order_cnt_type 1).
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn bit(&mut self, b: u32) {
            if self.bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if b != 0 {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
        fn bits(&mut self, v: u32, n: u32) {
            for i in (0..n).rev() {
                self.bit((v >> i) & 1);
            }
        }
        fn ue(&mut self, v: u32) {
            let code = u64::from(v) + 1;
            let len = 64 - code.leading_zeros();
            self.bits(0, len - 1);
            for i in (0..len).rev() {
                self.bit(((code >> i) & 1) as u32);
            }
        }
        fn se(&mut self, v: i32) {
            self.ue(if v > 0 { (2 * v - 1) as u32 } else { (-2 * v) as u32 });
        }
        /// rbsp_trailing_bits, then emulation prevention, then the NAL header.
        fn into_nal(mut self, header: u8) -> Vec<u8> {
            self.bit(1);
            let mut nal = vec![header];
            let mut zeros = 0;
            for b in self.bytes {
                if zeros >= 2 && b <= 3 {
                    nal.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                nal.push(b);
            }
            nal
        }
    }

    /// Writes an SPS; `scaling` chooses what each of the lists carries (None = absent).
    fn synth_sps(
        profile: u8,
        chroma: u32,
        scaling: &[Option<&[i32]>],
        poc_type_1: bool,
        (w_mbs, h_mbs, crop_r, crop_b): (u32, u32, u32, u32),
    ) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(u32::from(profile), 8);
        w.bits(0, 8);
        w.bits(31, 8);
        w.ue(0); // sps id
        w.ue(chroma);
        if chroma == 3 {
            w.bit(0); // separate_colour_plane_flag
        }
        w.ue(0); // bit_depth_luma_minus8
        w.ue(0); // bit_depth_chroma_minus8
        w.bit(0); // qpprime_y_zero_transform_bypass_flag
        w.bit(u32::from(!scaling.is_empty()));
        for list in scaling {
            match list {
                None => w.bit(0),
                Some(deltas) => {
                    w.bit(1);
                    for &d in *deltas {
                        w.se(d);
                    }
                }
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        if poc_type_1 {
            w.ue(1);
            w.bit(0);
            w.se(-3);
            w.se(7);
            w.ue(3);
            w.se(1);
            w.se(-2);
            w.se(100);
        } else {
            w.ue(2);
        }
        w.ue(4); // max_num_ref_frames
        w.bit(0);
        w.ue(w_mbs - 1);
        w.ue(h_mbs - 1);
        w.bit(1); // frame_mbs_only_flag
        w.bit(1); // direct_8x8_inference_flag
        if crop_r != 0 || crop_b != 0 {
            w.bit(1);
            w.ue(0);
            w.ue(crop_r);
            w.ue(0);
            w.ue(crop_b);
        } else {
            w.bit(0);
        }
        w.bit(0); // vui_parameters_present_flag
        w.into_nal(0x67)
    }

    #[test]
    fn sps_with_explicit_scaling_lists() {
        // A full explicit 4x4 list (16 deltas), one that ends early by driving nextScale to 0
        // (the "use default" escape), and a full explicit 8x8 list (64 deltas).
        let full4: Vec<i32> = (0..16).map(|i| if i % 2 == 0 { 3 } else { -1 }).collect();
        let default_escape: &[i32] = &[-8];
        let full8: Vec<i32> = (0..64).map(|i| (i % 5) - 2).collect();
        let lists: Vec<Option<&[i32]>> = vec![
            Some(&full4),
            Some(default_escape),
            None,
            Some(&full4),
            None,
            None,
            Some(&full8),
            Some(default_escape),
        ];
        // 1366x768: 86 x 48 macroblocks, crop 10 px on the right (5 units of 2).
        let nal = synth_sps(100, 1, &lists, false, (86, 48, 5, 0));
        assert_eq!(size(&nal), (1366, 768));

        // 4:4:4 carries twelve lists and crops in whole pixels.
        let mut lists444 = lists.clone();
        lists444.extend([None, Some(&full8[..]), None, Some(default_escape)]);
        let nal = synth_sps(244, 3, &lists444, true, (120, 68, 0, 8));
        let sps = parse_sps(&nal).unwrap();
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.level_idc, 31);
    }

    #[test]
    fn sps_rejects_garbage() {
        assert_eq!(parse_sps(&[]), Err(H264Error::Empty));
        assert_eq!(parse_sps(&[0x68, 0xce]), Err(H264Error::NotSps(8)));
        // The crop fields end in byte 11; the VUI after them is not read.
        for len in 1..11 {
            assert!(parse_sps(&SPS_HIGH_1920X1080[..len]).is_err(), "truncated to {len}");
        }
        // 40 zero bits: an Exp-Golomb prefix longer than any legal value.
        assert!(parse_sps(&[0x67, 0x42, 0, 0x1f, 0, 0, 0, 0, 0, 0x80]).is_err());
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(remove_emulation_prevention(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]), vec![0, 0, 1, 0, 0, 0, 0]);
    }

    // ---- depacketizer ----

    fn fu_a(nal: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let header = nal[0];
        let body = &nal[1..];
        let pieces: Vec<&[u8]> = body.chunks(chunk).collect();
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let mut fu_header = header & 0x1f;
                if i == 0 {
                    fu_header |= 0x80;
                }
                if i == pieces.len() - 1 {
                    fu_header |= 0x40;
                }
                let mut p = vec![(header & 0xe0) | NAL_FU_A, fu_header];
                p.extend_from_slice(piece);
                p
            })
            .collect()
    }

    fn stap_a(nals: &[&[u8]]) -> Vec<u8> {
        let mut p = vec![0x78]; // NRI 3, type 24
        for nal in nals {
            p.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            p.extend_from_slice(nal);
        }
        p
    }

    #[test]
    fn single_nal_and_stap_a() {
        let mut d = Depacketizer::new();
        assert_eq!(d.push(1, &[0x65, 1, 2, 3]).unwrap(), vec![vec![0x65, 1, 2, 3]]);
        let out = d.push(2, &stap_a(&[SPS_CB_1280X720, &[0x68, 0xce, 0x3c, 0x80]]));
        assert_eq!(out.unwrap(), vec![SPS_CB_1280X720.to_vec(), vec![0x68, 0xce, 0x3c, 0x80]]);
    }

    #[test]
    fn fu_a_reassembles_and_survives_wraparound() {
        let nal: Vec<u8> = std::iter::once(0x65).chain((0..5000).map(|i| i as u8)).collect();
        let mut d = Depacketizer::new();
        let packets = fu_a(&nal, 1000);
        let mut seq = 65533u16;
        let mut out = Vec::new();
        for p in &packets {
            out.extend(d.push(seq, p).unwrap());
            seq = seq.wrapping_add(1);
        }
        assert_eq!(out, vec![nal]);
        assert_eq!(d.dropped(), 0);
    }

    #[test]
    fn lost_fragment_drops_the_unit() {
        let nal: Vec<u8> = std::iter::once(0x41).chain(0..=255).collect();
        let packets = fu_a(&nal, 64);
        let mut d = Depacketizer::new();
        assert!(d.push(10, &packets[0]).unwrap().is_empty());
        // Packet 11 is lost: 12 must not be appended to the unit started by 10.
        assert_eq!(d.push(12, &packets[2]), Err(H264Error::OrphanFragment));
        assert_eq!(d.dropped(), 1);
        assert_eq!(d.push(13, &packets[3]), Err(H264Error::OrphanFragment));
        // The next whole unit is unaffected.
        assert_eq!(d.push(14, &[0x41, 9]).unwrap(), vec![vec![0x41, 9]]);
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        let mut d = Depacketizer::new();
        assert_eq!(d.push(0, &[]), Err(H264Error::Empty));
        assert_eq!(d.push(1, &[0x80 | 5, 0]), Err(H264Error::ForbiddenBit));
        assert_eq!(d.push(2, &[0x7c]), Err(H264Error::Truncated("FU-A header")));
        assert_eq!(d.push(3, &[25, 0]), Err(H264Error::Unsupported(25)));
        assert_eq!(d.push(4, &[29, 0x80]), Err(H264Error::Unsupported(29)));
        assert_eq!(d.push(5, &[0]), Err(H264Error::Unsupported(0)));
        assert_eq!(d.push(6, &[0x78, 0, 9, 0x65]), Err(H264Error::Truncated("STAP-A unit")));
        assert_eq!(d.push(7, &[0x78, 0, 1, 0x65, 0]), Err(H264Error::Truncated("STAP-A size")));
        assert_eq!(d.push(8, &[0x78, 0, 0]), Err(H264Error::Empty));
    }

    /// Packets captured from GStreamer (`rtph264pay ! rtpstreampay`, RFC 4571 framing) next
    /// to the Annex B stream the same encoder produced: the depacketized NAL units must equal
    /// the encoder's, access unit delimiters included.
    #[test]
    fn real_rtp_stream_matches_encoder_output() {
        let rtp = include_bytes!("../testdata/rtp-176x144.rtpstream");
        let reference = include_bytes!("../testdata/rtp-ref.h264");

        let mut d = Depacketizer::new();
        let mut nals = Vec::new();
        let mut markers = 0;
        let mut rest = &rtp[..];
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let packet = &rest[2..2 + len];
            rest = &rest[2 + len..];
            let csrc = usize::from(packet[0] & 0x0f);
            assert_eq!(packet[0] & 0x10, 0, "no header extension expected");
            markers += usize::from(packet[1] >> 7);
            let seq = u16::from_be_bytes([packet[2], packet[3]]);
            nals.extend(d.push(seq, &packet[12 + 4 * csrc..]).unwrap());
        }
        assert_eq!(markers, 3);
        let expected: Vec<Vec<u8>> = split_annex_b(reference).into_iter().map(<[u8]>::to_vec).collect();
        assert_eq!(nals.len(), expected.len());
        assert_eq!(nals, expected);
        let idr = nals.iter().filter(|n| nal_type(n) == Some(NAL_IDR)).count();
        assert_eq!(idr, 4, "two keyframes of two slices each");
        let sps = nals.iter().find(|n| nal_type(n) == Some(NAL_SPS)).unwrap();
        assert_eq!(size(sps), (176, 144));
    }

    #[test]
    fn annex_b_split() {
        let stream = [0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 0, 3];
        assert_eq!(split_annex_b(&stream), vec![&[0x67, 1][..], &[0x68, 2][..], &[0x65, 0, 3][..]]);
    }
}
