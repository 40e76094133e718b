//! H.264 encoder choice: the chain each encoder gets, and the fallback order.
//!
//! Every chain is tuned for interactive latency: no B-frames (no reordering delay),
//! constant bitrate with a VBV of about one frame (no frame may take longer than a frame
//! interval to send), no periodic keyframes (a keyframe is several times a P-frame and
//! stalls the link; viewers ask for one with PLI/FIR when they need it), and the
//! constrained-baseline profile that every browser decodes in hardware and software.

use std::fmt;

use super::spec::Stage;

/// x264 treats a keyframe interval of this size as "never" (X264_KEYINT_MAX_INFINITE).
const X264_KEYINT_INFINITE: u32 = 1 << 30;
/// x264's lowest quantiser. Its default (10) caps a still screen's refinement below what
/// small text needs to look exact; 4 is visually lossless.
const X264_QP_MIN: u32 = 4;
/// How far x264's quantiser may move from one frame to the next. Its default (4) needs
/// half a second of repeats to bring a just-scrolled page from motion quality to sharp;
/// a still screen's repeats are cheap, so it may drop fast.
const X264_QP_STEP: u32 = 16;
/// VA-API encoders cap the GOP at 1024 frames; the largest is the closest to "never".
const VA_KEYINT_MAX: u32 = 1024;

/// Which encoder the operator asked for (`--encoder`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EncoderPreference {
    /// Best available: NVENC, VA-API, then x264.
    Auto,
    /// Software x264 (always available).
    X264,
    /// NVIDIA NVENC (nvcudah264enc or nvh264enc).
    Nvh264,
    /// VA-API (Intel/AMD) vah264enc or vah264lpenc.
    Vah264,
}

/// A concrete encoder element.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum EncoderKind {
    /// NVENC through the CUDA-mode element GStreamer 1.22 added.
    NvCudaH264,
    /// NVENC through the older element, present on every nvcodec build.
    NvH264,
    /// VA-API (Intel, AMD).
    VaH264,
    /// VA-API low-power (Intel fixed-function) mode.
    VaH264Lp,
    /// Software x264: always the last resort.
    X264,
}

impl EncoderKind {
    pub fn factory(self) -> &'static str {
        match self {
            EncoderKind::NvCudaH264 => "nvcudah264enc",
            EncoderKind::NvH264 => "nvh264enc",
            EncoderKind::VaH264 => "vah264enc",
            EncoderKind::VaH264Lp => "vah264lpenc",
            EncoderKind::X264 => "x264enc",
        }
    }

    pub fn is_hardware(self) -> bool {
        self != EncoderKind::X264
    }

    /// The Debian package or driver a missing element usually points to.
    pub fn install_hint(self) -> &'static str {
        match self {
            EncoderKind::NvCudaH264 | EncoderKind::NvH264 => {
                "needs an NVIDIA GPU with its driver (libnvidia-encode) and gstreamer1.0-plugins-bad"
            }
            EncoderKind::VaH264 | EncoderKind::VaH264Lp => {
                "needs a VA-API GPU driver (intel-media-va-driver or mesa-va-drivers) and gstreamer1.0-plugins-bad"
            }
            EncoderKind::X264 => "install gstreamer1.0-plugins-ugly",
        }
    }
}

impl fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.factory())
    }
}

/// What the encoder must produce.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EncodeParams {
    pub bitrate_kbps: u32,
    pub framerate: u32,
    /// Worker threads for software conversion (`videoconvert`, ximagesrc capture only).
    pub threads: u32,
    /// x264's threading and rate-control buffer.
    pub x264: X264Tuning,
}

/// How x264 spreads a frame over threads and how much it may overshoot one frame's bits.
/// The defaults ([`X264Tuning::for_cores`]) come from the encoder sweep of `make bench`
/// (`tests/bench/sweep.mjs`, recorded in `docs/benchmarks.md`); `--x264-*` overrides them.
/// There is no 8×8-transform switch: it is a High-profile tool, and the stream is
/// constrained baseline (what every browser decodes), so x264 never uses it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct X264Tuning {
    /// Encoder threads.
    pub threads: u32,
    /// Slice-based threading: every thread works on the same frame, so a frame costs no
    /// extra latency; without it x264 pipelines frames (one frame of delay per thread).
    pub sliced_threads: bool,
    /// The VBV (rate-control buffer) in tenths of a frame interval: 10 lets one frame
    /// carry one frame's worth of bits, so its send time on a link at the bitrate is
    /// bounded by a frame interval; more lets a scene change look better at first, for
    /// as much latency on a link at capacity.
    pub vbv_tenths: u32,
}

impl X264Tuning {
    /// The default for a machine with `cores` CPUs: one thread fewer than the CPUs (1 to
    /// 4), sliced; a one-frame VBV. On 2 cores, with the desktop and often the browser
    /// on the same machine, one x264 thread delivered as many frames as two, sooner and
    /// with fewer bits lost to slice borders (the sweep of 2026-12-03 in
    /// docs/benchmarks.md: medians of three runs each, 47.1 against 43.3 fps, 74 against
    /// 85 ms glass-to-glass, 39.1 against 37.6 dB); the core left over runs capture and
    /// the rest of the session. Selkies makes the same choice (threads = CPUs − 1).
    pub const fn for_cores(cores: u32) -> Self {
        let threads = if cores <= 2 {
            1
        } else if cores > 5 {
            4
        } else {
            cores - 1
        };
        Self { threads, sliced_threads: true, vbv_tenths: 10 }
    }
}

impl EncodeParams {
    /// One frame's worth of bits, in kbit: the VBV size that bounds per-frame send time.
    fn vbv_kbit(&self) -> u32 {
        self.bitrate_kbps.div_ceil(self.framerate.max(1))
    }

    /// x264's VBV in milliseconds: [`X264Tuning::vbv_tenths`] of a frame interval, rounded up.
    fn x264_vbv_ms(&self) -> u32 {
        (100 * self.x264.vbv_tenths.max(1)).div_ceil(self.framerate.max(1))
    }
}

/// The caps every chain ends with: what browsers accept and our payloader expects.
pub const H264_OUTPUT_CAPS: &str = "video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au";

/// The raw format the capture produces.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RawFormat {
    /// `ximagesrc`: needs conversion before a software encoder.
    Bgrx,
    /// `kelpiexsrc`: already the encoder's format.
    I420,
}

/// Convert + encode stages for `kind`, from raw video to H.264 byte-stream.
pub fn encoder_stages(kind: EncoderKind, p: &EncodeParams) -> Vec<Stage> {
    encoder_stages_from(kind, p, RawFormat::Bgrx)
}

/// Convert + encode stages for `kind` when the capture produces `input`.
pub fn encoder_stages_from(kind: EncoderKind, p: &EncodeParams, input: RawFormat) -> Vec<Stage> {
    let enc = Stage::element(kind.factory()).named("encoder");
    let convert = match input {
        RawFormat::Bgrx => {
            vec![Stage::element("videoconvert").prop("n-threads", p.threads), Stage::caps("video/x-raw,format=I420")]
        }
        RawFormat::I420 => vec![],
    };
    let mut stages = match kind {
        EncoderKind::X264 => convert
            .into_iter()
            .chain([enc
                .prop("speed-preset", "ultrafast")
                .prop("tune", "zerolatency")
                .prop("pass", "cbr")
                .prop("bitrate", p.bitrate_kbps)
                .prop("vbv-buf-capacity", p.x264_vbv_ms())
                .prop("key-int-max", X264_KEYINT_INFINITE)
                .prop("bframes", 0)
                .prop("b-adapt", false)
                .prop("rc-lookahead", 0)
                .prop("sync-lookahead", 0)
                .prop("mb-tree", false)
                .prop("qp-min", X264_QP_MIN)
                .prop("qp-step", X264_QP_STEP)
                .prop("sliced-threads", p.x264.sliced_threads)
                .prop("threads", p.x264.threads)
                .prop("aud", false)
                .prop("insert-vui", true)])
            .collect(),
        EncoderKind::NvCudaH264 => vec![
            Stage::element("cudaupload"),
            Stage::element("cudaconvert"),
            Stage::caps("video/x-raw(memory:CUDAMemory),format=NV12"),
            enc.prop("preset", "low-latency-hq")
                .prop("rate-control", "cbr")
                .prop("bitrate", p.bitrate_kbps)
                .prop("vbv-buffer-size", p.vbv_kbit())
                .prop("gop-size", -1)
                .prop("b-frames", 0)
                .prop("rc-lookahead", 0)
                .prop("zero-reorder-delay", true)
                .prop("aud", false),
        ],
        EncoderKind::NvH264 => vec![
            Stage::element("cudaupload"),
            Stage::element("cudaconvert"),
            Stage::caps("video/x-raw(memory:CUDAMemory),format=NV12"),
            enc.prop("preset", "low-latency-hq")
                .prop("rc-mode", "cbr-ld-hq")
                .prop("zerolatency", true)
                .prop("bitrate", p.bitrate_kbps)
                .prop("vbv-buffer-size", p.vbv_kbit())
                .prop("gop-size", -1)
                .prop("bframes", 0)
                .prop("rc-lookahead", 0)
                .prop("aud", false),
        ],
        EncoderKind::VaH264 | EncoderKind::VaH264Lp => vec![
            Stage::element("vapostproc"),
            Stage::caps("video/x-raw(memory:VAMemory),format=NV12"),
            enc.prop("rate-control", "cbr")
                .prop("bitrate", p.bitrate_kbps)
                .prop("cpb-size", p.vbv_kbit())
                .prop("key-int-max", VA_KEYINT_MAX)
                .prop("b-frames", 0)
                .prop("ref-frames", 1)
                .prop("cabac", false)
                .prop("dct8x8", false)
                .prop("target-usage", 7)
                .prop("aud", false),
        ],
    };
    stages.push(Stage::caps(output_caps(kind)));
    stages
}

/// H.264 level x264 is told to signal whatever the resolution. x264 otherwise picks the
/// level from the frame size, so a resize would change `profile-level-id` in the RTP caps,
/// which every viewer's webrtcbin negotiated and then refuses (not-negotiated). x264 also
/// refuses to open when a frame size and rate exceed the level asked for: 5.2 covers
/// 4096x2160 up to 60 fps and 1080p up to 240 fps, and every browser decodes it.
pub const X264_FIXED_LEVEL: &str = "5.2";

/// The caps after the encoder: [`H264_OUTPUT_CAPS`], plus the fixed level for x264 (which
/// honours a level asked for downstream; hardware encoders pick their own).
pub fn output_caps(kind: EncoderKind) -> String {
    match kind {
        EncoderKind::X264 => format!("{H264_OUTPUT_CAPS},level=(string){X264_FIXED_LEVEL}"),
        _ => H264_OUTPUT_CAPS.to_string(),
    }
}

/// The encoders to try, best first, for what the operator asked.
pub fn candidates(pref: EncoderPreference) -> Vec<EncoderKind> {
    use EncoderKind::*;
    match pref {
        EncoderPreference::Auto => vec![NvCudaH264, NvH264, VaH264, VaH264Lp, X264],
        EncoderPreference::Nvh264 => vec![NvCudaH264, NvH264, X264],
        EncoderPreference::Vah264 => vec![VaH264, VaH264Lp, X264],
        EncoderPreference::X264 => vec![X264],
    }
}

/// Whether `kind` is worth probing on a machine with `facts`: a GPU encoder with no GPU
/// device to open is passed over at once, with the reason the log gives, instead of
/// loading its driver libraries to find out.
pub fn precheck(kind: EncoderKind, facts: &crate::gpu::GpuFacts) -> Result<(), String> {
    match kind {
        EncoderKind::NvCudaH264 | EncoderKind::NvH264 if !facts.nvidia_device => {
            Err("no NVIDIA GPU is visible (/dev/nvidiactl absent)".into())
        }
        EncoderKind::VaH264 | EncoderKind::VaH264Lp if facts.render_nodes.is_empty() => {
            Err("no DRM render node is visible (/dev/dri/renderD*)".into())
        }
        _ => Ok(()),
    }
}

/// The outcome of encoder selection, with the reasons the better ones were passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderChoice {
    pub kind: EncoderKind,
    pub rejected: Vec<(EncoderKind, String)>,
    pub preference: EncoderPreference,
}

impl EncoderChoice {
    /// Log lines that explain the choice; warnings when a requested GPU encoder fell back.
    pub fn explanation(&self) -> Vec<String> {
        let mut lines: Vec<String> =
            self.rejected.iter().map(|(k, why)| format!("{k} not usable: {why} ({})", k.install_hint())).collect();
        let asked_for_hardware = matches!(self.preference, EncoderPreference::Nvh264 | EncoderPreference::Vah264);
        if asked_for_hardware && !self.kind.is_hardware() {
            lines.push(format!(
                "requested encoder {:?} is unavailable: falling back to {} (software, more CPU)",
                self.preference, self.kind
            ));
        } else if !self.kind.is_hardware() && !self.rejected.is_empty() {
            lines.push(format!("no hardware H.264 encoder found: falling back to {} (software)", self.kind));
        }
        lines.push(format!("using H.264 encoder {}", self.kind));
        lines
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no usable H.264 encoder: {}", .0.iter().map(|(k, w)| format!("{k}: {w}")).collect::<Vec<_>>().join("; "))]
pub struct NoEncoder(pub Vec<(EncoderKind, String)>);

/// Picks the first candidate that `probe` can really run.
pub fn choose(
    pref: EncoderPreference,
    mut probe: impl FnMut(EncoderKind) -> Result<(), String>,
) -> Result<EncoderChoice, NoEncoder> {
    let mut rejected = Vec::new();
    for kind in candidates(pref) {
        match probe(kind) {
            Ok(()) => return Ok(EncoderChoice { kind, rejected, preference: pref }),
            Err(why) => rejected.push((kind, why)),
        }
    }
    Err(NoEncoder(rejected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::spec::Chain;

    const P: EncodeParams = EncodeParams {
        bitrate_kbps: 6000,
        framerate: 60,
        threads: 2,
        x264: X264Tuning { threads: 2, sliced_threads: true, vbv_tenths: 10 },
    };

    fn chain(kind: EncoderKind) -> Chain {
        Chain(encoder_stages(kind, &P))
    }

    #[test]
    fn x264_tuning_reaches_the_element() {
        let p = EncodeParams { x264: X264Tuning { threads: 1, sliced_threads: false, vbv_tenths: 15 }, ..P };
        let c = Chain(encoder_stages(EncoderKind::X264, &p));
        let line = c.launch_line();
        assert!(line.contains("vbv-buf-capacity=25 "), "1.5 frames at 60 fps: {line}");
        assert!(line.contains("sliced-threads=false threads=1 "), "{line}");
    }

    #[test]
    fn the_measured_x264_defaults_are_pinned() {
        // Chosen from the encoder sweep in docs/benchmarks.md (tests/bench/sweep.mjs).
        assert_eq!(X264Tuning::for_cores(2), X264Tuning { threads: 1, sliced_threads: true, vbv_tenths: 10 });
        assert_eq!(X264Tuning::for_cores(1).threads, 1);
        assert_eq!(X264Tuning::for_cores(4).threads, 3);
        assert_eq!(X264Tuning::for_cores(16).threads, 4);
        let line = Chain(encoder_stages(EncoderKind::X264, &EncodeParams { x264: X264Tuning::for_cores(2), ..P }))
            .launch_line();
        assert!(line.contains("vbv-buf-capacity=17 ") && line.contains("sliced-threads=true threads=1 "), "{line}");
    }

    #[test]
    fn x264_chain_is_low_latency_cbr_without_periodic_keyframes() {
        let c = chain(EncoderKind::X264);
        assert_eq!(
            c.launch_line(),
            "videoconvert n-threads=2 ! video/x-raw,format=I420 ! x264enc name=encoder speed-preset=ultrafast \
tune=zerolatency pass=cbr bitrate=6000 vbv-buf-capacity=17 key-int-max=1073741824 bframes=0 b-adapt=false \
rc-lookahead=0 sync-lookahead=0 mb-tree=false qp-min=4 qp-step=16 sliced-threads=true threads=2 aud=false insert-vui=true ! \
video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au,level=(string)5.2"
        );
    }

    #[test]
    fn i420_capture_skips_software_conversion() {
        let c = Chain(encoder_stages_from(EncoderKind::X264, &P, RawFormat::I420));
        assert_eq!(c.factories(), vec!["x264enc"]);
        let gpu = Chain(encoder_stages_from(EncoderKind::NvH264, &P, RawFormat::I420));
        assert_eq!(
            gpu.factories(),
            vec!["cudaupload", "cudaconvert", "nvh264enc"],
            "GPU chains convert on the GPU either way"
        );
    }

    #[test]
    fn nvcuda_chain_converts_on_the_gpu_with_one_frame_vbv() {
        let c = chain(EncoderKind::NvCudaH264);
        assert_eq!(c.factories(), vec!["cudaupload", "cudaconvert", "nvcudah264enc"]);
        let enc = c.find("nvcudah264enc").unwrap();
        assert_eq!(enc.get("rate-control"), Some("cbr"));
        assert_eq!(enc.get("vbv-buffer-size"), Some("100")); // 6000 kbit/s / 60 fps
        assert_eq!(enc.get("gop-size"), Some("-1"));
        assert_eq!(enc.get("b-frames"), Some("0"));
        assert_eq!(enc.get("zero-reorder-delay"), Some("true"));
        assert!(c.launch_line().contains("video/x-raw(memory:CUDAMemory),format=NV12"));
    }

    #[test]
    fn legacy_nvenc_chain_uses_low_delay_cbr() {
        let c = chain(EncoderKind::NvH264);
        assert_eq!(c.factories(), vec!["cudaupload", "cudaconvert", "nvh264enc"]);
        let enc = c.find("nvh264enc").unwrap();
        assert_eq!(enc.get("rc-mode"), Some("cbr-ld-hq"));
        assert_eq!(enc.get("zerolatency"), Some("true"));
        assert_eq!(enc.get("bframes"), Some("0"));
        assert_eq!(enc.get("gop-size"), Some("-1"));
    }

    #[test]
    fn vaapi_chains_convert_with_vapostproc() {
        for kind in [EncoderKind::VaH264, EncoderKind::VaH264Lp] {
            let c = chain(kind);
            assert_eq!(c.factories(), vec!["vapostproc", kind.factory()]);
            let enc = c.find(kind.factory()).unwrap();
            assert_eq!(enc.get("rate-control"), Some("cbr"));
            assert_eq!(enc.get("b-frames"), Some("0"));
            assert_eq!(enc.get("cpb-size"), Some("100"));
            assert_eq!(enc.get("key-int-max"), Some("1024"));
        }
    }

    #[test]
    fn every_chain_ends_in_browser_decodable_h264() {
        for kind in candidates(EncoderPreference::Auto) {
            let last = encoder_stages(kind, &P).last().cloned();
            assert!(matches!(&last, Some(Stage::Caps(c)) if c.starts_with(H264_OUTPUT_CAPS)), "{kind}: {last:?}");
        }
        assert!(output_caps(EncoderKind::X264).ends_with(",level=(string)5.2"));
    }

    #[test]
    fn auto_prefers_nvenc_then_vaapi_then_x264() {
        let choice = choose(EncoderPreference::Auto, |_| Ok(())).unwrap();
        assert_eq!(choice.kind, EncoderKind::NvCudaH264);
        let choice =
            choose(
                EncoderPreference::Auto,
                |k| if k.factory().starts_with("nv") { Err("no GPU".into()) } else { Ok(()) },
            )
            .unwrap();
        assert_eq!(choice.kind, EncoderKind::VaH264);
    }

    #[test]
    fn failing_hardware_encoder_falls_back_to_x264_with_a_clear_log_line() {
        let choice = choose(EncoderPreference::Nvh264, |k| {
            if k.is_hardware() {
                Err("NvEncOpenEncodeSessionEx failed".into())
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(choice.kind, EncoderKind::X264);
        assert_eq!(choice.rejected.len(), 2);
        let lines = choice.explanation();
        assert!(lines[0].starts_with("nvcudah264enc not usable: NvEncOpenEncodeSessionEx failed"), "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l == "requested encoder Nvh264 is unavailable: falling back to x264enc (software, more CPU)"),
            "{lines:?}"
        );
        assert_eq!(lines.last().unwrap(), "using H.264 encoder x264enc");
    }

    #[test]
    fn explicit_x264_never_probes_hardware() {
        let mut probed = Vec::new();
        let choice = choose(EncoderPreference::X264, |k| {
            probed.push(k);
            Ok(())
        })
        .unwrap();
        assert_eq!(probed, vec![EncoderKind::X264]);
        assert_eq!(choice.explanation(), vec!["using H.264 encoder x264enc".to_string()]);
    }

    #[test]
    fn nothing_usable_is_an_error_listing_every_reason() {
        let err = choose(EncoderPreference::Vah264, |k| Err(format!("{k} missing"))).unwrap_err();
        assert_eq!(err.0.len(), 3);
        assert!(err.to_string().contains("x264enc: x264enc missing"));
    }

    fn facts(nvidia: bool, render: bool) -> crate::gpu::GpuFacts {
        crate::gpu::GpuFacts {
            nvidia_device: nvidia,
            render_nodes: if render { vec!["/dev/dri/renderD128".into()] } else { vec![] },
            ..Default::default()
        }
    }

    /// The machine's GPU facts decide which chain runs: each candidate is prechecked
    /// against them, then probed (here a probe that says every element works).
    fn chosen(pref: EncoderPreference, f: &crate::gpu::GpuFacts) -> EncoderChoice {
        choose(pref, |k| precheck(k, f)).unwrap()
    }

    #[test]
    fn an_nvidia_gpu_gets_nv12_on_the_gpu_into_nvenc() {
        let c = chosen(EncoderPreference::Auto, &facts(true, false));
        assert_eq!(c.kind, EncoderKind::NvCudaH264);
        let stages = chain(c.kind);
        assert_eq!(stages.factories(), vec!["cudaupload", "cudaconvert", "nvcudah264enc"]);
        assert!(
            stages.launch_line().contains("video/x-raw(memory:CUDAMemory),format=NV12"),
            "{}",
            stages.launch_line()
        );
    }

    #[test]
    fn no_gpu_devices_means_x264_with_every_reason_logged() {
        let c = chosen(EncoderPreference::Auto, &facts(false, false));
        assert_eq!(c.kind, EncoderKind::X264);
        let lines = c.explanation();
        assert!(lines[0].starts_with("nvcudah264enc not usable: no NVIDIA GPU is visible"), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("vah264enc not usable: no DRM render node")), "{lines:?}");
        assert_eq!(lines.last().unwrap(), "using H.264 encoder x264enc");
    }

    #[test]
    fn a_render_node_without_nvidia_tries_va_api() {
        assert_eq!(chosen(EncoderPreference::Auto, &facts(false, true)).kind, EncoderKind::VaH264);
        // An NVIDIA device that cannot encode (H100/H200 have no NVENC) falls through to the
        // probe's verdict, here a refusal.
        let c = choose(EncoderPreference::Auto, |k| {
            precheck(k, &facts(true, false))?;
            if k.is_hardware() {
                Err("no NVENC on this GPU".into())
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(c.kind, EncoderKind::X264);
        assert!(c.explanation()[0].contains("no NVENC on this GPU"));
    }
}
