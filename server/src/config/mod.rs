//! Command-line and environment configuration.
//!
//! One struct, parsed by clap; every flag has a `KELPIE_*` environment twin so that
//! containers and batch scripts can configure Kelpie without editing a command line.

use std::net::SocketAddr;
use std::str::FromStr;

use clap::{Parser, Subcommand};

pub mod clipboard;
pub mod files;
pub mod security;
pub use crate::display::gl::GlMode;
pub use crate::media::{CaptureSource, EncoderPreference};
pub use crate::screen::ScreenSize;
pub use crate::transport::Policy;
pub use clipboard::{ClipboardArgs, ClipboardMode};
pub use files::FileArgs;
pub use security::{AuthArgs, AuthMode, IceArgs};

/// Default capture rate. 60 fps halves the frame interval (and so the worst-case added
/// latency) against 30 fps, and x264 ultrafast keeps up with it at 1080p on one core.
pub const DEFAULT_FRAMERATE: u32 = 60;
/// Default cap on participants: each costs a WebRTC session (DTLS, ICE threads), not an
/// encode, and 16 covers a class following a screen on a small node.
pub const DEFAULT_MAX_VIEWERS: u32 = 16;
/// Default video bitrate in kbit/s: enough for crisp text at 1080p with x264 ultrafast.
pub const DEFAULT_BITRATE_KBPS: u32 = 8000;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "kelpie",
    version,
    about = "Stream a Linux desktop to any browser over WebRTC",
    long_about = "Kelpie captures an X11 display, encodes it once with H.264 (NVENC, VA-API or x264) \
and streams it over WebRTC to every connected browser, carrying keyboard and mouse back.\n\n\
Without --display, Kelpie starts its own virtual display (Xvfb) and a desktop session, and \
stops both when it exits. Open the printed URL in a browser to see the desktop.\n\n\
Every option can also be set with an environment variable, shown in brackets."
)]
pub struct Config {
    /// Attach to this existing X display (e.g. `:0`) instead of starting an embedded one.
    #[arg(help_heading = "Display", long, env = "KELPIE_DISPLAY", value_name = ":N")]
    pub display: Option<String>,

    /// Size of the embedded virtual display, WIDTHxHEIGHT. Ignored with --display.
    #[arg(help_heading = "Display", long, env = "KELPIE_SIZE", default_value = "1920x1080", value_name = "WxH")]
    pub size: ScreenSize,

    /// Largest size browsers may resize the screen to (with --display too; never beyond
    /// 4096x2304, the encoders' limit). The embedded Xvfb allocates its framebuffer at this
    /// size once: 3840x2160 costs it about 33 MB.
    #[arg(help_heading = "Display", long, env = "KELPIE_MAX_SIZE", default_value = "3840x2160", value_name = "WxH")]
    pub max_size: ScreenSize,

    /// Let browsers resize the remote screen to fit their window × devicePixelRatio (RandR
    /// modes are added on the fly; the stream continues without a reconnect). With `off`
    /// the screen keeps its size and browsers scale the picture instead.
    #[arg(help_heading = "Display", long, env = "KELPIE_RESIZE", default_value = "on", value_name = "on|off",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set,
          hide_possible_values = true)]
    pub resize: bool,

    /// Command run as the desktop session on the embedded display, through `sh -c`.
    /// Default: an XFCE session if installed, else xterm.
    #[arg(help_heading = "Display", long, env = "KELPIE_SESSION", value_name = "CMD")]
    pub session: Option<String>,

    /// Address and port the web server listens on.
    #[arg(
        help_heading = "Network",
        long,
        env = "KELPIE_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR:PORT"
    )]
    pub listen: SocketAddr,

    /// A second address that serves only /health, /livez and /metrics, without
    /// authentication, for probes and Prometheus inside a cluster. With it set, the main
    /// address stops serving /health and /metrics, which tell anyone who reaches the
    /// desktop's URL its viewer count, display, encoder and errors (/livez, which tells
    /// nothing, stays on both). Bind it where only the cluster reaches: the pod's own
    /// port, not the Service the Ingress routes to.
    #[arg(help_heading = "Network", long, env = "KELPIE_OPS_LISTEN", value_name = "ADDR:PORT")]
    pub ops_listen: Option<SocketAddr>,

    /// Frames per second captured and encoded.
    #[arg(help_heading = "Stream", long, env = "KELPIE_FRAMERATE", default_value_t = DEFAULT_FRAMERATE,
          value_parser = clap::value_parser!(u32).range(1..=240))]
    pub framerate: u32,

    /// Highest video bitrate in kbit/s. With --adapt on, the shared encoder follows the
    /// bandwidth estimate of the participant in control up to this; with it off, every
    /// viewer gets this constant bitrate.
    #[arg(help_heading = "Stream", long, env = "KELPIE_BITRATE", default_value_t = DEFAULT_BITRATE_KBPS,
          value_parser = clap::value_parser!(u32).range(100..=500_000))]
    pub bitrate: u32,

    /// Adapt the bitrate and frame rate to the link: per viewer bandwidth estimates (WebRTC
    /// congestion feedback), the encoder following the participant in control, between a
    /// floor of an eighth of --bitrate (250 kbit/s..1 Mbit/s) and --bitrate.
    #[arg(help_heading = "Stream", long, env = "KELPIE_ADAPT", default_value = "on", value_name = "on|off",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set,
          hide_possible_values = true)]
    pub adapt: bool,

    /// Forward error correction for WebRTC video, as parity packets per 100 media packets
    /// (ULPFEC), for viewers whose link loses packets (none until it does, and again after
    /// 10 s without loss): repairs random loss without waiting a round trip for a
    /// retransmission, for this much more bandwidth (counted in the estimate). 0: never.
    #[arg(help_heading = "Stream", long, env = "KELPIE_FEC", default_value_t = 15, value_name = "PERCENT",
          value_parser = clap::value_parser!(u32).range(0..=50))]
    pub fec: u32,

    /// Stream the desktop's sound (the default PulseAudio sink's monitor, as Opus) and
    /// take the microphone of the participant in control (into the default source). The
    /// embedded desktop gets its own PulseAudio; with --display, the one PULSE_SERVER (or
    /// the user's default) names. Without PulseAudio, video streams alone and audio is
    /// retried.
    #[arg(help_heading = "Sound", long, env = "KELPIE_AUDIO", default_value = "on", value_name = "on|off",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set,
          hide_possible_values = true)]
    pub audio: bool,

    /// Opus bitrate of the desktop's sound in kbit/s (stereo, 10 ms frames, in-band FEC).
    #[arg(help_heading = "Sound", long, env = "KELPIE_AUDIO_BITRATE", default_value_t = crate::media::audio::DEFAULT_BITRATE_KBPS,
          value_name = "KBPS", value_parser = clap::value_parser!(u32).range(16..=510))]
    pub audio_bitrate: u32,

    /// Give desktop apps the gamepads of the browser tab in control: apps started with
    /// `kelpie-gamepad APP` see them as /dev/input/js0-3 and event1000-1003, with no
    /// uinput and no privileges (docs/gamepads.md).
    #[arg(help_heading = "Gamepads", long, env = "KELPIE_GAMEPADS", default_value = "on", value_name = "on|off",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set,
          hide_possible_values = true)]
    pub gamepads: bool,

    /// The Unix socket apps' gamepad library connects to [default: $XDG_RUNTIME_DIR/kelpie/
    /// gamepad-N.sock for display :N, else /tmp/kelpie-UID/gamepad-N.sock, which is where
    /// kelpie-gamepad looks when KELPIE_GAMEPAD_SOCKET is not set].
    #[arg(help_heading = "Gamepads", long, env = "KELPIE_GAMEPAD_SOCKET", value_name = "PATH")]
    pub gamepad_socket: Option<std::path::PathBuf>,

    /// Screen capture: `damage` (Kelpie's XDamage/XShm source: converts only what changed,
    /// sends nothing while the screen is still) or `ximagesrc` (GStreamer's, for comparison).
    #[arg(help_heading = "Stream", long, env = "KELPIE_CAPTURE", value_enum, default_value_t = CaptureSource::Damage)]
    pub capture: CaptureSource,

    /// H.264 encoder. `auto` tries NVENC, then VA-API, then x264, and logs why it chose.
    /// A hardware encoder that cannot open a session falls back to x264.
    #[arg(help_heading = "Stream", long, env = "KELPIE_ENCODER", value_enum, default_value_t = EncoderPreference::Auto)]
    pub encoder: EncoderPreference,

    /// x264 encoder threads [default: one fewer than the CPUs, 1 to 4, chosen by the
    /// encoder sweep in docs/benchmarks.md]. Hardware encoders ignore it.
    #[arg(help_heading = "Encoder tuning (x264)", long, env = "KELPIE_X264_THREADS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub x264_threads: Option<u32>,

    /// Slice-based x264 threads: all threads share each frame, adding no delay; `off`
    /// pipelines whole frames instead (more throughput, a frame of delay per thread).
    #[arg(help_heading = "Encoder tuning (x264)", long, env = "KELPIE_X264_SLICED_THREADS", default_value = "on",
          value_name = "on|off", value_parser = clap::builder::BoolishValueParser::new(),
          action = clap::ArgAction::Set, hide_possible_values = true)]
    pub x264_sliced_threads: bool,

    /// x264's rate-control buffer in frame intervals (0.5 to 10): 1 bounds each frame to
    /// one frame's worth of bits (its send time to one frame interval at the bitrate);
    /// more lets a sudden change look better at first, for as much delay on a full link.
    #[arg(help_heading = "Encoder tuning (x264)", long, env = "KELPIE_X264_VBV_FRAMES", value_name = "FRAMES",
          default_value = "1", value_parser = parse_vbv_frames)]
    pub x264_vbv_frames: VbvFrames,

    /// OpenGL for apps in the embedded session. `auto` renders on an NVIDIA GPU through
    /// Mesa's zink when the GPU and its Vulkan driver are visible (the log says which and
    /// why), else on the CPU with llvmpipe; `gpu` refuses to start without the GPU path.
    #[arg(help_heading = "Display", long, env = "KELPIE_GL", value_enum, default_value_t = GlMode::Auto)]
    pub gl: GlMode,

    /// How many browsers may watch at once; each extra one costs a WebRTC session, not an encode.
    #[arg(help_heading = "Network", long, env = "KELPIE_MAX_VIEWERS", default_value_t = DEFAULT_MAX_VIEWERS,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_viewers: u32,

    /// Open TCP connections at most (page loads, WebSockets, downloads together); more are
    /// closed at accept and counted in `kelpie_connections_refused_total`. A browser uses
    /// a few; the cap keeps a flood of idle clients from exhausting file descriptors.
    #[arg(help_heading = "Network", long, env = "KELPIE_MAX_CONNECTIONS", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(8..=65536))]
    pub max_connections: u32,

    /// Extra origins (e.g. `https://hub.example.org`) allowed to open the signalling
    /// WebSocket, comma separated. The page's own origin is always allowed.
    #[arg(
        help_heading = "Network",
        long,
        env = "KELPIE_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub allowed_origins: Vec<String>,

    /// Host names this desktop is reached by through a proxy (e.g. desktop.example.org),
    /// comma separated. A request naming another host gets 421: the defence against DNS
    /// rebinding. With --auth none the check is always on (IP addresses, localhost and the
    /// --allowed-origins hosts pass); with a login it is on only when this is set.
    #[arg(help_heading = "Network", long, env = "KELPIE_PUBLIC_HOST", value_delimiter = ',', value_name = "HOST")]
    pub public_host: Vec<String>,

    /// How media reaches browsers. `auto`: WebRTC first (UDP, then ICE-TCP, then TURN if
    /// configured); a page that gets no WebRTC media within 3 s of the offer switches to the
    /// WebSocket it already uses for signalling, so it works through any proxy that carries
    /// HTTP (browsers decode it with WebCodecs, which needs an https:// page or localhost).
    /// `webrtc` or `websocket` offers only that one.
    #[arg(help_heading = "Network", long, env = "KELPIE_TRANSPORT", value_enum, default_value_t = Policy::Auto)]
    pub transport: Policy,

    /// Local IP addresses to offer as ICE host candidates, comma separated (default: every
    /// interface). Pick the interface browsers can reach on multi-homed hosts; `127.0.0.1`
    /// keeps media on loopback for same-host browsers and tests.
    #[arg(
        help_heading = "Network",
        long = "ice-address",
        env = "KELPIE_ICE_ADDRESSES",
        value_delimiter = ',',
        value_name = "IP"
    )]
    pub ice_addresses: Vec<std::net::IpAddr>,

    /// UDP port range for WebRTC media, MIN-MAX (default: any ephemeral port). Open this
    /// range in firewalls or publish it from a container.
    #[arg(help_heading = "Network", long, env = "KELPIE_UDP_PORTS", value_name = "MIN-MAX")]
    pub udp_ports: Option<PortRange>,

    /// URL prefix the app is served under behind a reverse proxy, e.g. /desktop/. Works
    /// whether the proxy strips the prefix or passes it on.
    #[arg(help_heading = "Network", long, env = "KELPIE_BASE_PATH", default_value = "/", value_parser = parse_base_path)]
    pub base_path: String,

    /// Send the remote X cursor's image to browsers, which show it as the mouse cursor
    /// over the video (changes arrive within one round trip, independent of the video
    /// frame rate). `off` leaves the browser's own arrow over the video (outside pointer
    /// lock the capture does not draw the pointer into the picture).
    #[arg(help_heading = "Display", long, env = "KELPIE_REMOTE_CURSOR", default_value = "on", value_name = "on|off",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set,
          hide_possible_values = true)]
    pub remote_cursor: bool,

    #[command(flatten)]
    pub security: AuthArgs,

    #[command(flatten)]
    pub ice: IceArgs,

    #[command(flatten)]
    pub files: FileArgs,

    #[command(flatten)]
    pub clipboard: ClipboardArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands other than streaming.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Print a signed token for `--auth token` (uses KELPIE_TOKEN_SECRET or --token-secret-file).
    /// Open the desktop as `http://HOST:PORT/#token=TOKEN` (or `?token=`, which proxies may log). The token opens only the
    /// desktop named by --desktop-id, else by --base-path (or their KELPIE_* variables),
    /// so give `kelpie token` the same values as the server, e.g.
    /// `kelpie --base-path /desk/ token --role viewer`.
    Token {
        /// How long the token is valid, e.g. 30m, 8h, 7d.
        #[arg(long, default_value = "8h", value_parser = security::parse_duration)]
        ttl: std::time::Duration,
        /// The user name the token stands for (shown in logs, used for TURN credentials).
        #[arg(long, default_value = "kelpie")]
        user: String,
        /// What the holder may do: `owner` (controls, settings, hand-off, sharing),
        /// `guest` (watches; controls when an owner gives it control) or `viewer`
        /// (watches only: no input, clipboard or files).
        #[arg(long, default_value = "owner", value_parser = parse_role)]
        role: crate::auth::Role,
    },
}

fn parse_role(s: &str) -> Result<crate::auth::Role, String> {
    s.parse().map_err(|e: crate::auth::role::BadRole| e.to_string())
}

/// Normalises a base path to `/a/b/` form.
fn parse_base_path(s: &str) -> Result<String, String> {
    let trimmed = s.trim().trim_matches('/');
    if trimmed.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") && !trimmed.is_empty() {
        return Err(format!("{s:?} is not a clean URL path like /desktop/"));
    }
    if !trimmed.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%@+".contains(&b)) {
        return Err(format!("{s:?} has characters that need escaping; use a plain path like /desktop/"));
    }
    Ok(if trimmed.is_empty() { "/".to_string() } else { format!("/{trimmed}/") })
}

/// Why a configuration cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "refusing to listen on {0} without authentication: anyone who can reach it would control \
the desktop. Listen on 127.0.0.1 (and put an authenticating proxy in front), or choose an --auth mode"
    )]
    UnauthenticatedRemote(SocketAddr),
    #[error("display name {0:?} is not of the form :N or HOST:N")]
    BadDisplay(String),
    #[error("{0}")]
    Secret(String),
}

impl Config {
    /// Checks the rules that clap cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.security.auth == AuthMode::None && !self.listen.ip().is_loopback() {
            return Err(ConfigError::UnauthenticatedRemote(self.listen));
        }
        if let Some(d) = &self.display {
            if !is_display_name(d) {
                return Err(ConfigError::BadDisplay(d.clone()));
            }
        }
        Ok(())
    }
}

fn is_display_name(s: &str) -> bool {
    let Some((_host, rest)) = s.rsplit_once(':') else {
        return false;
    };
    let number = rest.split('.').next().unwrap_or("");
    !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
}

/// An inclusive range of UDP ports.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s.split_once('-').ok_or_else(|| format!("{s:?} is not MIN-MAX, e.g. 50000-50100"))?;
        let parse = |v: &str| v.trim().parse::<u16>().map_err(|_| format!("{v:?} is not a port number"));
        let (min, max) = (parse(a)?, parse(b)?);
        if min == 0 || min > max {
            return Err(format!("{min}-{max}: need 1 <= MIN <= MAX"));
        }
        Ok(Self { min, max })
    }
}

/// A VBV size in frame intervals, kept in tenths (1.5 frames = 15).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VbvFrames(pub u32);

fn parse_vbv_frames(s: &str) -> Result<VbvFrames, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of frames, e.g. 1 or 1.5"))?;
    if !(0.5..=10.0).contains(&v) {
        return Err(format!("{v} frames is outside 0.5..10"));
    }
    Ok(VbvFrames((v * 10.0).round() as u32))
}

impl Config {
    /// x264's tuning on a machine with `cores` CPUs: the measured defaults, then the flags.
    pub fn x264_tuning(&self, cores: u32) -> crate::media::X264Tuning {
        let mut t = crate::media::X264Tuning::for_cores(cores);
        if let Some(n) = self.x264_threads {
            t.threads = n;
        }
        t.sliced_threads = self.x264_sliced_threads;
        t.vbv_tenths = self.x264_vbv_frames.0;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x264_tuning_defaults_and_overrides() {
        let c = parse(&[]).unwrap();
        let t = c.x264_tuning(2);
        assert_eq!(t, crate::media::X264Tuning { threads: 1, sliced_threads: true, vbv_tenths: 10 });
        assert_eq!(c.x264_tuning(64).threads, 4, "more threads than 4 slices a 1080p frame too thin");
        assert_eq!(parse(&["--x264-threads", "2"]).unwrap().x264_tuning(2).threads, 2);
        let c = parse(&["--x264-threads", "1", "--x264-sliced-threads", "off", "--x264-vbv-frames", "1.5"]).unwrap();
        assert_eq!(c.x264_tuning(2), crate::media::X264Tuning { threads: 1, sliced_threads: false, vbv_tenths: 15 });
        assert!(parse(&["--x264-vbv-frames", "0.1"]).is_err());
        assert!(parse(&["--x264-vbv-frames", "lots"]).is_err());
        assert!(parse(&["--x264-threads", "0"]).is_err());
    }

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("kelpie").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_listen_on_loopback_at_60_fps() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.framerate, 60);
        assert!(c.adapt, "adaptation is on by default");
        assert!(!parse(&["--adapt", "off"]).unwrap().adapt);
        assert_eq!(c.size, ScreenSize { width: 1920, height: 1080 });
        assert_eq!(c.encoder, EncoderPreference::Auto);
        assert!(c.validate().is_ok());
        assert!(c.audio, "sound is on by default");
        assert_eq!(c.audio_bitrate, 128);
        assert!(!parse(&["--audio", "off"]).unwrap().audio);
        assert!(parse(&["--audio-bitrate", "8"]).is_err(), "below Opus's useful range");
    }

    #[test]
    fn unauthenticated_non_loopback_listen_is_refused() {
        let c = parse(&["--listen", "0.0.0.0:8080"]).unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::UnauthenticatedRemote(_))));
    }

    #[test]
    fn non_loopback_listen_is_allowed_with_authentication() {
        let c = parse(&["--listen", "0.0.0.0:8080", "--auth", "basic"]).unwrap();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn base_paths_are_normalised_and_checked() {
        assert_eq!(parse_base_path("/"), Ok("/".into()));
        assert_eq!(parse_base_path("desk"), Ok("/desk/".into()));
        assert_eq!(parse_base_path("/user/alice/kelpie"), Ok("/user/alice/kelpie/".into()));
        for bad in ["/a//b/", "/../x/", "/a b/", "/x?y"] {
            assert!(parse_base_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_subcommand_parses() {
        let c = parse(&["token", "--ttl", "30m", "--user", "alice"]).unwrap();
        assert!(
            matches!(c.command, Some(Command::Token { ref user, role: crate::auth::Role::Owner, .. }) if user == "alice")
        );
        let c = parse(&["token", "--role", "viewer"]).unwrap();
        assert!(matches!(c.command, Some(Command::Token { role: crate::auth::Role::Viewer, .. })));
        assert!(parse(&["token", "--role", "admin"]).is_err());
    }

    #[test]
    fn resize_is_on_by_default_and_can_be_switched_off() {
        assert!(parse(&[]).unwrap().resize);
        assert!(!parse(&["--resize", "off"]).unwrap().resize);
        assert_eq!(parse(&[]).unwrap().max_size, ScreenSize { width: 3840, height: 2160 });
        assert_eq!(parse(&["--max-size", "2560x1440"]).unwrap().max_size, ScreenSize { width: 2560, height: 1440 });
    }

    #[test]
    fn odd_or_garbage_sizes_are_rejected() {
        assert!(parse(&["--size", "1921x1080"]).is_err());
        assert!(parse(&["--size", "big"]).is_err());
        assert!(parse(&["--size", "10x10"]).is_err());
        assert_eq!("1280x720".parse::<ScreenSize>().unwrap(), ScreenSize { width: 1280, height: 720 });
    }

    #[test]
    fn ice_addresses_and_port_ranges_parse() {
        let c = parse(&["--ice-address", "127.0.0.1,::1", "--udp-ports", "50000-50010"]).unwrap();
        assert_eq!(c.ice_addresses.len(), 2);
        assert_eq!(c.udp_ports, Some(PortRange { min: 50000, max: 50010 }));
        assert!(parse(&["--udp-ports", "10-5"]).is_err());
        assert!(parse(&["--udp-ports", "0-5"]).is_err());
        assert!(parse(&["--ice-address", "not-an-ip"]).is_err());
    }

    #[test]
    fn gamepads_default_on_with_a_default_socket() {
        let c = parse(&[]).unwrap();
        assert!(c.gamepads && c.gamepad_socket.is_none());
        let c = parse(&["--gamepads", "off", "--gamepad-socket", "/tmp/x.sock"]).unwrap();
        assert!(!c.gamepads);
        assert_eq!(c.gamepad_socket.as_deref(), Some(std::path::Path::new("/tmp/x.sock")));
    }

    #[test]
    fn remote_cursor_defaults_on_and_can_be_turned_off() {
        assert!(parse(&[]).unwrap().remote_cursor);
        assert!(!parse(&["--remote-cursor", "off"]).unwrap().remote_cursor);
        assert!(parse(&["--remote-cursor", "maybe"]).is_err());
    }

    #[test]
    fn framerate_out_of_range_is_rejected() {
        assert!(parse(&["--framerate", "0"]).is_err());
        assert!(parse(&["--framerate", "500"]).is_err());
    }

    #[test]
    fn display_names_are_checked() {
        for good in [":0", ":12", "localhost:1", ":1.0"] {
            let c = parse(&["--display", good]).unwrap();
            assert!(c.validate().is_ok(), "{good}");
        }
        for bad in ["0", ":", ":x", "host"] {
            let c = parse(&["--display", bad]).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}
