//! Just enough H.264 Annex B to make every keyframe decodable on its own: a WebCodecs
//! decoder that joins (or skips to a keyframe) needs the SPS and PPS in front of the IDR.
//! x264 repeats them on every keyframe; not every encoder does (NVENC and VA-API may send
//! them once), so the last ones seen are remembered and put in front of a keyframe that
//! lacks them. Pure: bytes in, bytes out.

const SPS: u8 = 7;
const PPS: u8 = 8;

/// The NAL units of an Annex B access unit, each without its start code.
pub fn nal_units(au: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new(); // (start of the start code, start of the payload)
    let mut i = 0;
    while i + 3 <= au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            let code = if i > 0 && au[i - 1] == 0 { i - 1 } else { i };
            starts.push((code, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &(_, payload)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(au.len(), |&(code, _)| code);
        if payload < end {
            out.push(&au[payload..end]);
        }
    }
    out
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// The last SPS and PPS of the stream.
#[derive(Debug, Default, Clone)]
pub struct ParameterSets {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl ParameterSets {
    /// Remembers the access unit's parameter sets; for a keyframe without them, returns
    /// the access unit with the remembered ones in front. `None`: send `au` as it is.
    pub fn complete(&mut self, au: &[u8], key: bool) -> Option<Vec<u8>> {
        let mut has = (false, false);
        for nal in nal_units(au) {
            match nal_type(nal) {
                SPS => {
                    has.0 = true;
                    self.sps = Some(nal.to_vec());
                }
                PPS => {
                    has.1 = true;
                    self.pps = Some(nal.to_vec());
                }
                _ => {}
            }
        }
        if !key || (has.0 && has.1) {
            return None;
        }
        let (Some(sps), Some(pps)) = (&self.sps, &self.pps) else { return None };
        let mut out = Vec::with_capacity(sps.len() + pps.len() + 8 + au.len());
        for nal in [sps, pps] {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        out.extend_from_slice(au);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = &[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88, 0x84];
    const IDR_ONLY: &[u8] = &[0, 0, 0, 1, 0x65, 0x88, 0x80];

    #[test]
    fn splits_on_three_and_four_byte_start_codes() {
        let nals = nal_units(KEY);
        assert_eq!(nals, vec![&[0x67, 0x42, 0xc0, 0x1f][..], &[0x68, 0xce][..], &[0x65, 0x88, 0x84][..]]);
        assert!(nal_units(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn a_keyframe_without_parameter_sets_gets_the_last_ones() {
        let mut ps = ParameterSets::default();
        assert_eq!(ps.complete(IDR_ONLY, true), None, "nothing remembered yet");
        assert_eq!(ps.complete(KEY, true), None, "complete already");
        let fixed = ps.complete(IDR_ONLY, true).expect("completed");
        let types: Vec<u8> = nal_units(&fixed).iter().map(|n| nal_type(n)).collect();
        assert_eq!(types, vec![7, 8, 5]);
        assert_eq!(ps.complete(&[0, 0, 1, 0x41, 0x9a], false), None, "deltas pass untouched");
    }
}
