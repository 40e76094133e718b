//! The capture times `kelpiexsrc` puts on each buffer it made from fresh damage, so that
//! whoever runs the pipeline can tell how long a frame waited and where (issue 13's
//! per-stage breakdown). Two `GstReferenceTimestampMeta`s, on `CLOCK_MONOTONIC`
//! nanoseconds (the clock [`mono_ns`] reads, the same in every crate of the process):
//!
//! | reference caps | timestamp | duration |
//! |---|---|---|
//! | [`DAMAGE_CAPS`] | first X damage of the frame | until the grab began |
//! | [`GRAB_CAPS`] | the grab began | the XShm grab itself |
//!
//! Frames without fresh damage (refinement repeats, idle frames, a refresh) carry neither.

/// Reference caps of the damage stamp.
pub const DAMAGE_CAPS: &str = "timestamp/x-kelpie-damage";
/// Reference caps of the grab stamp.
pub const GRAB_CAPS: &str = "timestamp/x-kelpie-grab";

/// Nanoseconds on `CLOCK_MONOTONIC` (what `Instant` reads, as a number).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec for the kernel to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// A frame's capture times, in [`mono_ns`] nanoseconds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CaptureStamp {
    pub damage_ns: u64,
    pub grab_ns: u64,
    pub grabbed_ns: u64,
}

impl CaptureStamp {
    /// Puts the stamp on `buffer` as its two metas.
    pub fn attach(&self, buffer: &mut gst::BufferRef) {
        let damage = gst::Caps::new_empty_simple(DAMAGE_CAPS);
        let grab = gst::Caps::new_empty_simple(GRAB_CAPS);
        let ns = gst::ClockTime::from_nseconds;
        gst::ReferenceTimestampMeta::add(
            buffer,
            &damage,
            ns(self.damage_ns),
            Some(ns(self.grab_ns.saturating_sub(self.damage_ns))),
        );
        gst::ReferenceTimestampMeta::add(
            buffer,
            &grab,
            ns(self.grab_ns),
            Some(ns(self.grabbed_ns.saturating_sub(self.grab_ns))),
        );
    }

    /// The stamp on `buffer`, if it has both metas.
    pub fn read(buffer: &gst::BufferRef) -> Option<CaptureStamp> {
        let mut damage = None;
        let mut grab = None;
        for meta in buffer.iter_meta::<gst::ReferenceTimestampMeta>() {
            let Some(s) = meta.reference().structure(0) else { continue };
            let start = meta.timestamp().nseconds();
            let end = start + meta.duration().map_or(0, |d| d.nseconds());
            if s.name() == DAMAGE_CAPS {
                damage = Some(start);
            } else if s.name() == GRAB_CAPS {
                grab = Some((start, end));
            }
        }
        let (grab_ns, grabbed_ns) = grab?;
        Some(CaptureStamp { damage_ns: damage?, grab_ns, grabbed_ns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_survives_the_buffer() {
        gst::init().unwrap();
        let mut buffer = gst::Buffer::with_size(16).unwrap();
        let stamp = CaptureStamp { damage_ns: 1_000, grab_ns: 4_000, grabbed_ns: 9_500 };
        stamp.attach(buffer.get_mut().unwrap());
        assert_eq!(CaptureStamp::read(&buffer), Some(stamp));
        assert_eq!(CaptureStamp::read(&gst::Buffer::with_size(16).unwrap()), None, "unstamped");
    }
}
