//! What GPU this process can see: read once at start-up from `/dev` and the driver
//! manifests, then handed to the pure rules that choose the apps' OpenGL path
//! ([`crate::display::gl`]) and which hardware encoders are worth probing
//! ([`crate::media::encoder::precheck`]).
//!
//! Why a fact sheet and not a probe per decision: every decision, and every log line that
//! explains it, then comes from the same reading, and the rules are unit-tested with
//! made-up sheets (NVIDIA present, absent, half-installed) that no test machine has.

use std::path::{Path, PathBuf};

/// Where the Vulkan loader looks for driver manifests (ICDs), in its own order.
const VULKAN_ICD_DIRS: [&str; 3] = ["/etc/vulkan/icd.d", "/usr/share/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"];
/// Where libglvnd looks for EGL vendor manifests.
const EGL_VENDOR_DIRS: [&str; 2] = ["/etc/glvnd/egl_vendor.d", "/usr/share/glvnd/egl_vendor.d"];
/// Where Mesa's DRI drivers (zink among them) live on Debian, x86_64 and arm64.
const DRI_DIRS: [&str; 3] = ["/usr/lib/x86_64-linux-gnu/dri", "/usr/lib/aarch64-linux-gnu/dri", "/usr/lib/dri"];
/// Where NVIDIA's user-space libraries appear: Debian's packages, the NVIDIA container
/// toolkit's mounts, and Apptainer's `--nv` (which binds them into `/.singularity.d/libs`).
const LIB_DIRS: [&str; 5] = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/.singularity.d/libs",
    "/usr/local/nvidia/lib64",
];

/// One reading of the machine's GPU state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuFacts {
    /// `/dev/nvidiactl` (or `/dev/nvidia0`) exists: an NVIDIA GPU is passed in.
    pub nvidia_device: bool,
    /// A Vulkan manifest naming NVIDIA's driver.
    pub nvidia_vulkan_icd: Option<PathBuf>,
    /// NVIDIA's Vulkan/GLX library, found even where its manifest is missing (Apptainer's
    /// `--nv` binds the libraries but not the JSON).
    pub nvidia_glx_lib: Option<PathBuf>,
    /// Mesa's EGL vendor manifest, which Xvfb is pinned to so that NVIDIA's EGL never loads
    /// into the X server.
    pub mesa_egl_vendor: Option<PathBuf>,
    /// Mesa's zink driver (OpenGL over Vulkan) is installed.
    pub mesa_zink: bool,
    /// DRM render nodes (`/dev/dri/renderD*`), which VA-API needs.
    pub render_nodes: Vec<PathBuf>,
}

impl GpuFacts {
    /// Reads the machine. Never fails: what cannot be read counts as absent.
    pub fn read() -> Self {
        let ld_dirs: Vec<PathBuf> =
            std::env::var_os("LD_LIBRARY_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
        let lib_dirs: Vec<PathBuf> = ld_dirs.into_iter().chain(LIB_DIRS.iter().map(PathBuf::from)).collect();
        Self {
            nvidia_device: Path::new("/dev/nvidiactl").exists() || Path::new("/dev/nvidia0").exists(),
            nvidia_vulkan_icd: manifests(&VULKAN_ICD_DIRS)
                .into_iter()
                .find(|(_, text)| names_nvidia(text))
                .map(|m| m.0),
            nvidia_glx_lib: lib_dirs.iter().map(|d| d.join("libGLX_nvidia.so.0")).find(|p| p.exists()),
            mesa_egl_vendor: EGL_VENDOR_DIRS.iter().map(|d| Path::new(d).join("50_mesa.json")).find(|p| p.exists()),
            mesa_zink: DRI_DIRS.iter().any(|d| Path::new(d).join("zink_dri.so").exists()),
            render_nodes: render_nodes(),
        }
    }

    /// One line for the start-up log.
    pub fn summary(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        format!(
            "NVIDIA device {}, NVIDIA Vulkan driver {}, Mesa zink {}, render nodes {}",
            yes(self.nvidia_device),
            match (&self.nvidia_vulkan_icd, &self.nvidia_glx_lib) {
                (Some(p), _) => p.display().to_string(),
                (None, Some(_)) => "library without manifest".into(),
                (None, None) => "no".into(),
            },
            yes(self.mesa_zink),
            self.render_nodes.len()
        )
    }
}

/// Does a Vulkan ICD manifest point at NVIDIA's driver? (`libGLX_nvidia.so.0` on Linux;
/// older drivers named `libnvidia-vulkan`.)
pub fn names_nvidia(manifest: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(manifest) else { return false };
    v.pointer("/ICD/library_path").and_then(|p| p.as_str()).is_some_and(|p| p.contains("nvidia"))
}

/// The Vulkan manifest Kelpie writes for the session when NVIDIA's library is there but
/// its manifest is not (Apptainer `--nv`).
pub fn nvidia_icd_manifest(lib: &Path) -> String {
    serde_json::json!({
        "file_format_version": "1.0.0",
        "ICD": { "library_path": lib.display().to_string(), "api_version": "1.3.0" }
    })
    .to_string()
}

fn manifests(dirs: &[&str]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut paths: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
        paths.sort();
        for p in paths {
            // Manifests are a few hundred bytes; a bound keeps a stray file from costing.
            if std::fs::metadata(&p).map(|m| m.len() <= 64 * 1024).unwrap_or(false) {
                if let Ok(text) = std::fs::read_to_string(&p) {
                    out.push((p, text));
                }
            }
        }
    }
    out
}

fn render_nodes() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/dev/dri") else { return Vec::new() };
    let mut nodes: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("renderD")))
        .collect();
    nodes.sort();
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_manifests_are_told_from_mesa_ones() {
        assert!(names_nvidia(
            r#"{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.242"}}"#
        ));
        assert!(!names_nvidia(r#"{"ICD":{"library_path":"/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"}}"#));
        assert!(!names_nvidia("not json"));
        assert!(!names_nvidia(r#"{"ICD":{}}"#));
    }

    #[test]
    fn a_written_manifest_is_one_the_rules_recognise() {
        let m = nvidia_icd_manifest(Path::new("/.singularity.d/libs/libGLX_nvidia.so.0"));
        assert!(names_nvidia(&m), "{m}");
    }

    #[test]
    fn the_summary_names_what_was_found() {
        let f = GpuFacts {
            nvidia_device: true,
            nvidia_glx_lib: Some("/x/libGLX_nvidia.so.0".into()),
            ..Default::default()
        };
        assert_eq!(
            f.summary(),
            "NVIDIA device yes, NVIDIA Vulkan driver library without manifest, Mesa zink no, render nodes 0"
        );
    }
}
