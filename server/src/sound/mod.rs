//! The desktop's sound server: Kelpie's own PulseAudio for the embedded desktop
//! ([`pulse::Daemon`]), or the one the environment names (`PULSE_SERVER`, else libpulse's
//! per-user default) with `--display`.
//!
//! Desktop programs play into the default sink, whose monitor Kelpie captures and
//! streams (`media::audio`); a browser's microphone is played into [`MIC_SINK`], whose
//! monitor [`MIC_SOURCE`] re-exposes as an ordinary source, the desktop's default. A
//! virtual source, not the sink's monitor itself: programs list monitors apart from
//! microphones (or hide them), and some refuse to record from one.

pub mod pulse;
pub mod script;

/// The embedded server's default sink: what desktop programs play into.
pub const OUT_SINK: &str = "kelpie_out";
/// Where the browser's microphone is played.
pub const MIC_SINK: &str = "kelpie_mic_in";
/// The desktop's default source: the browser's microphone, as programs see it.
pub const MIC_SOURCE: &str = "kelpie_mic";
/// Everything is 48 kHz (Opus's rate, and WebRTC's): no resampling anywhere in between.
pub const RATE: u32 = 48_000;
