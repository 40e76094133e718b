//! Whether a program can be preloaded: a dynamically linked ELF has a `PT_INTERP`
//! program header (the dynamic loader, which is what honours `LD_PRELOAD`); a static
//! one has none, and sees no virtual gamepad whatever the environment says.

/// What the launcher can tell from a program's first bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Linkage {
    Dynamic,
    Static,
    /// A `#!` script: its interpreter is what runs, and inherits the preload.
    Script,
    /// Not ELF, or a header this check does not read (another word size or byte order).
    Unknown,
}

const PT_INTERP: u32 = 3;

/// Reads the ELF header and program headers from `bytes` (the file's start; the program
/// headers of real binaries sit in the first few KiB).
pub fn linkage(bytes: &[u8]) -> Linkage {
    if bytes.starts_with(b"#!") {
        return Linkage::Script;
    }
    if bytes.len() < 64 || &bytes[0..4] != b"\x7fELF" {
        return Linkage::Unknown;
    }
    // 64-bit, this machine's byte order.
    let little = cfg!(target_endian = "little");
    if bytes[4] != 2 || (bytes[5] == 1) != little {
        return Linkage::Unknown;
    }
    let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let u32_at = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |at: usize| bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes);
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return Linkage::Unknown;
    };
    for i in 0..usize::from(phnum) {
        let Some(at) = usize::try_from(phoff).ok().and_then(|o| o.checked_add(i * usize::from(phentsize))) else {
            return Linkage::Unknown;
        };
        match u32_at(at) {
            Some(PT_INTERP) => return Linkage::Dynamic,
            Some(_) => {}
            None => return Linkage::Unknown,
        }
    }
    Linkage::Static
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + types.len() * 56];
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = if cfg!(target_endian = "little") { 1 } else { 2 };
        b[0x20..0x28].copy_from_slice(&64u64.to_ne_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_ne_bytes());
        b[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_ne_bytes());
        for (i, t) in types.iter().enumerate() {
            b[64 + i * 56..68 + i * 56].copy_from_slice(&t.to_ne_bytes());
        }
        b
    }

    #[test]
    fn an_interpreter_header_means_dynamic() {
        assert_eq!(linkage(&elf(&[6, 3, 1])), Linkage::Dynamic);
        assert_eq!(linkage(&elf(&[1, 1, 4])), Linkage::Static);
    }

    #[test]
    fn scripts_garbage_and_truncation() {
        assert_eq!(linkage(b"#!/bin/sh\necho"), Linkage::Script);
        assert_eq!(linkage(b"MZ\x90\x00"), Linkage::Unknown);
        let mut cut = elf(&[1, 3]);
        cut.truncate(64 + 20);
        assert_eq!(linkage(&cut), Linkage::Unknown);
    }

    #[test]
    fn this_test_binary_is_dynamic() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(linkage(&exe[..exe.len().min(64 * 1024)]), Linkage::Dynamic);
    }
}
