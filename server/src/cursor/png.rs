//! A minimal PNG encoder for cursor images.
//!
//! Cursors are small (usually 32×32, at most a few hundred pixels a side), so the pixels go
//! into the zlib stream as *stored* (uncompressed) deflate blocks: no compression code to
//! get wrong and no new dependency, at the cost of a payload the size of the raw image
//! (16 KiB for 64×64) that is sent once per distinct cursor.

/// The largest width or height accepted; larger cursors are not drawn by browsers anyway.
pub const MAX_SIDE: u32 = 256;

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
/// Deflate's stored blocks hold at most this many bytes.
const STORED_BLOCK_MAX: usize = 65_535;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PngError {
    #[error("a {0}x{1} image cannot be encoded: each side must be 1..={MAX_SIDE} pixels")]
    BadSize(u32, u32),
    #[error("{got} bytes of pixels for a {width}x{height} RGBA image (need {})", *width as usize * *height as usize * 4)]
    BadLength { width: u32, height: u32, got: usize },
}

/// Encodes straight-alpha RGBA pixels (row-major, 4 bytes each) as a PNG file.
pub fn encode_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>, PngError> {
    if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
        return Err(PngError::BadSize(width, height));
    }
    let row = width as usize * 4;
    if rgba.len() != row * height as usize {
        return Err(PngError::BadLength { width, height, got: rgba.len() });
    }
    // Each scanline starts with its filter type; 0 = none.
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in rgba.chunks_exact(row) {
        raw.push(0);
        raw.extend_from_slice(line);
    }

    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 6 (RGBA), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);

    let mut out = Vec::with_capacity(raw.len() + 128);
    out.extend_from_slice(&SIGNATURE);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

/// Appends one chunk: length, type, data, CRC over type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of stored deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let blocks = data.len().div_ceil(STORED_BLOCK_MAX).max(1);
    let mut out = Vec::with_capacity(data.len() + blocks * 5 + 6);
    // CMF 0x78: deflate, 32 KiB window; FLG 0x01 makes CMF*256+FLG a multiple of 31.
    out.extend_from_slice(&[0x78, 0x01]);
    let mut pieces = data.chunks(STORED_BLOCK_MAX).peekable();
    if pieces.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        let len = piece.len() as u16;
        out.push(u8::from(last)); // BFINAL, BTYPE = 00 (stored)
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(piece);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

pub(crate) fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the longest run before `b` could overflow u32.
    for block in data.chunks(5552) {
        for &byte in block {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

pub(crate) fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = crc_table();
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder for exactly what this encoder writes, written from the PNG and zlib specs:
    /// checks every CRC, the zlib header and checksum, and returns (width, height, RGBA).
    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        assert_eq!(&png[..8], &SIGNATURE);
        let mut at = 8;
        let mut chunks = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind = &png[at + 4..at + 8];
            let data = &png[at + 8..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc, crc32(&png[at + 4..at + 8 + len]), "CRC of {:?}", std::str::from_utf8(kind));
            chunks.push((kind.to_vec(), data.to_vec()));
            at += 12 + len;
        }
        let names: Vec<&[u8]> = chunks.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(names, [&b"IHDR"[..], b"IDAT", b"IEND"]);
        let ihdr = &chunks[0].1;
        let width = u32::from_be_bytes(ihdr[0..4].try_into().unwrap());
        let height = u32::from_be_bytes(ihdr[4..8].try_into().unwrap());
        assert_eq!(&ihdr[8..], &[8, 6, 0, 0, 0]);
        let z = &chunks[1].1;
        assert_eq!((u16::from(z[0]) << 8 | u16::from(z[1])) % 31, 0, "zlib FCHECK");
        let mut raw = Vec::new();
        let mut p = 2;
        loop {
            let header = z[p];
            assert_eq!(header & 0b110, 0, "stored block");
            let len = u16::from_le_bytes([z[p + 1], z[p + 2]]);
            let nlen = u16::from_le_bytes([z[p + 3], z[p + 4]]);
            assert_eq!(len, !nlen);
            raw.extend_from_slice(&z[p + 5..p + 5 + len as usize]);
            p += 5 + len as usize;
            if header & 1 == 1 {
                break;
            }
        }
        assert_eq!(u32::from_be_bytes(z[p..p + 4].try_into().unwrap()), adler32(&raw));
        assert_eq!(p + 4, z.len(), "nothing after the checksum");
        let row = width as usize * 4;
        let mut rgba = Vec::new();
        for line in raw.chunks(row + 1) {
            assert_eq!(line[0], 0, "filter none");
            rgba.extend_from_slice(&line[1..]);
        }
        (width, height, rgba)
    }

    #[test]
    fn checksums_match_published_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
    }

    #[test]
    fn a_small_image_round_trips() {
        let pixels: Vec<u8> = (0..3 * 2 * 4).map(|i| i as u8 * 10).collect();
        let png = encode_rgba(3, 2, &pixels).unwrap();
        assert_eq!(decode(&png), (3, 2, pixels));
    }

    #[test]
    fn the_largest_image_spans_several_stored_blocks_and_round_trips() {
        let pixels: Vec<u8> = (0..256 * 256 * 4).map(|i| (i * 7 % 251) as u8).collect();
        let png = encode_rgba(256, 256, &pixels).unwrap();
        assert_eq!(decode(&png), (256, 256, pixels));
    }

    #[test]
    fn empty_oversized_or_short_images_are_refused() {
        assert_eq!(encode_rgba(0, 4, &[]), Err(PngError::BadSize(0, 4)));
        assert_eq!(encode_rgba(257, 1, &[0; 257 * 4]), Err(PngError::BadSize(257, 1)));
        assert!(matches!(encode_rgba(2, 2, &[0; 15]), Err(PngError::BadLength { got: 15, .. })));
    }
}
