//! Which OpenGL the embedded session's apps get: the NVIDIA GPU through Mesa's zink
//! (OpenGL over NVIDIA's Vulkan driver), or Mesa's llvmpipe on the CPU.
//!
//! Why zink and not VirtualGL: Debian packages no VirtualGL, and its GLX interposer needs
//! either setuid fakers or a preload in every app. Zink is in Debian's Mesa, needs no
//! privilege, and renders into Xvfb's windows through the ordinary GLX path, so ParaView,
//! VMD or Blender started from the desktop's menu use the GPU unchanged. Selkies 2.x made
//! the same move. EGL apps (headless ParaView, PyTorch3D) reach NVIDIA through libglvnd
//! on their own; the image ships the vendor manifest they need.
//!
//! Xvfb itself must never load zink or NVIDIA's EGL: it is a CPU framebuffer, and both
//! have been seen to hang or crash it. Its environment drops the zink variables and pins
//! libglvnd to Mesa.

use std::path::PathBuf;

use crate::gpu::GpuFacts;

/// What the operator asked for (`--gl`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GlMode {
    /// The NVIDIA GPU when one is usable, else llvmpipe; the log says which and why.
    Auto,
    /// The GPU, or refuse to start (for images that promise it).
    Gpu,
    /// Always Mesa's llvmpipe on the CPU.
    Software,
}

/// The renderer apps in the session get.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum GlPath {
    Zink,
    Llvmpipe,
}

/// Variables that select zink: set for the session, removed from Xvfb.
pub const ZINK_VARIABLES: [&str; 4] =
    ["MESA_LOADER_DRIVER_OVERRIDE", "GALLIUM_DRIVER", "LIBGL_KOPPER_DRI2", "__GLX_VENDOR_LIBRARY_NAME"];

/// The chosen path, the environment that makes it so, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlPlan {
    pub path: GlPath,
    /// Added to the session's environment.
    pub session_env: Vec<(&'static str, String)>,
    /// Added to Xvfb's environment (after [`ZINK_VARIABLES`] are removed from it).
    pub xvfb_env: Vec<(&'static str, String)>,
    /// A Vulkan manifest to write for the session (NVIDIA's library without its JSON),
    /// whose path the session's `VK_ICD_FILENAMES` already names.
    pub write_icd: Option<(PathBuf, String)>,
    pub reason: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--gl gpu: {0}")]
pub struct GpuGlUnavailable(pub String);

/// Chooses the session's OpenGL from `facts`; `runtime_dir` is where a missing Vulkan
/// manifest would be written (private to this user).
pub fn plan(mode: GlMode, facts: &GpuFacts, runtime_dir: &std::path::Path) -> Result<GlPlan, GpuGlUnavailable> {
    // Whatever the path, Xvfb never loads NVIDIA's EGL when one is visible.
    let xvfb_env: Vec<(&'static str, String)> = match (&facts.mesa_egl_vendor, facts.nvidia_device) {
        (Some(mesa), true) => vec![("__EGL_VENDOR_LIBRARY_FILENAMES", mesa.display().to_string())],
        _ => Vec::new(),
    };
    let software = |reason: String| GlPlan {
        path: GlPath::Llvmpipe,
        session_env: Vec::new(),
        xvfb_env: xvfb_env.clone(),
        write_icd: None,
        reason,
    };
    if mode == GlMode::Software {
        return Ok(software("--gl software: apps render with Mesa llvmpipe on the CPU".into()));
    }
    let missing = if !facts.nvidia_device {
        Some("no NVIDIA GPU is visible (/dev/nvidiactl absent)".to_string())
    } else if facts.nvidia_vulkan_icd.is_none() && facts.nvidia_glx_lib.is_none() {
        Some(
            "an NVIDIA GPU is visible but not its Vulkan driver (libGLX_nvidia.so.0): with Docker or Kubernetes \
             set NVIDIA_DRIVER_CAPABILITIES to include graphics; with Apptainer use --nv"
                .to_string(),
        )
    } else if !facts.mesa_zink {
        Some("Mesa's zink driver is not installed (apt-get install libgl1-mesa-dri)".to_string())
    } else {
        None
    };
    if let Some(why) = missing {
        return match mode {
            GlMode::Gpu => Err(GpuGlUnavailable(why)),
            _ => Ok(software(format!("{why}; apps render with Mesa llvmpipe on the CPU"))),
        };
    }
    let mut session_env = vec![
        ("MESA_LOADER_DRIVER_OVERRIDE", "zink".to_string()),
        ("GALLIUM_DRIVER", "zink".to_string()),
        // Xvfb has no DRI3: zink presents through the DRI2-style copy path.
        ("LIBGL_KOPPER_DRI2", "1".to_string()),
        // GLX in Xvfb is Mesa's; NVIDIA's GLX library would refuse a non-NVIDIA X server.
        ("__GLX_VENDOR_LIBRARY_NAME", "mesa".to_string()),
    ];
    let write_icd = match (&facts.nvidia_vulkan_icd, &facts.nvidia_glx_lib) {
        (Some(_), _) => None,
        (None, Some(lib)) => {
            let path = runtime_dir.join("kelpie-nvidia-icd.json");
            session_env.push(("VK_ICD_FILENAMES", path.display().to_string()));
            Some((path, crate::gpu::nvidia_icd_manifest(lib)))
        }
        (None, None) => unreachable!("checked above"),
    };
    let reason = match &write_icd {
        None => "an NVIDIA GPU and its Vulkan driver are visible: apps render on the GPU through Mesa zink".into(),
        Some((p, _)) => format!(
            "an NVIDIA GPU and its Vulkan library are visible, without a manifest (Apptainer --nv): wrote {}; \
             apps render on the GPU through Mesa zink",
            p.display()
        ),
    };
    Ok(GlPlan { path: GlPath::Zink, session_env, xvfb_env, write_icd, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn nvidia() -> GpuFacts {
        GpuFacts {
            nvidia_device: true,
            nvidia_vulkan_icd: Some("/etc/vulkan/icd.d/nvidia_icd.json".into()),
            nvidia_glx_lib: Some("/usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0".into()),
            mesa_egl_vendor: Some("/usr/share/glvnd/egl_vendor.d/50_mesa.json".into()),
            mesa_zink: true,
            render_nodes: vec![],
        }
    }

    const RUN: &str = "/tmp/kelpie-runtime-1000";

    #[test]
    fn an_nvidia_gpu_with_its_vulkan_driver_gets_zink_and_xvfb_stays_on_mesa() {
        let p = plan(GlMode::Auto, &nvidia(), Path::new(RUN)).unwrap();
        assert_eq!(p.path, GlPath::Zink);
        let keys: Vec<&str> = p.session_env.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ZINK_VARIABLES.to_vec());
        assert!(p.session_env.contains(&("GALLIUM_DRIVER", "zink".into())));
        assert_eq!(
            p.xvfb_env,
            vec![("__EGL_VENDOR_LIBRARY_FILENAMES", "/usr/share/glvnd/egl_vendor.d/50_mesa.json".into())]
        );
        assert!(p.xvfb_env.iter().all(|(k, _)| !ZINK_VARIABLES.contains(k)));
        assert_eq!(p.write_icd, None);
    }

    #[test]
    fn no_nvidia_device_means_llvmpipe_and_says_so() {
        let facts = GpuFacts { mesa_zink: true, mesa_egl_vendor: nvidia().mesa_egl_vendor, ..Default::default() };
        let p = plan(GlMode::Auto, &facts, Path::new(RUN)).unwrap();
        assert_eq!(p.path, GlPath::Llvmpipe);
        assert!(p.session_env.is_empty());
        assert!(p.xvfb_env.is_empty(), "no NVIDIA EGL to keep out of Xvfb");
        assert!(p.reason.contains("no NVIDIA GPU is visible"), "{}", p.reason);
    }

    #[test]
    fn a_gpu_without_the_graphics_capability_is_explained() {
        let facts = GpuFacts { nvidia_vulkan_icd: None, nvidia_glx_lib: None, ..nvidia() };
        let p = plan(GlMode::Auto, &facts, Path::new(RUN)).unwrap();
        assert_eq!(p.path, GlPath::Llvmpipe);
        assert!(p.reason.contains("NVIDIA_DRIVER_CAPABILITIES"), "{}", p.reason);
        // Xvfb is still kept off NVIDIA's EGL: the device is there.
        assert_eq!(p.xvfb_env.len(), 1);
    }

    #[test]
    fn apptainer_nv_libraries_without_a_manifest_get_one_written() {
        let facts = GpuFacts {
            nvidia_vulkan_icd: None,
            nvidia_glx_lib: Some("/.singularity.d/libs/libGLX_nvidia.so.0".into()),
            ..nvidia()
        };
        let p = plan(GlMode::Auto, &facts, Path::new(RUN)).unwrap();
        assert_eq!(p.path, GlPath::Zink);
        let (path, json) = p.write_icd.clone().unwrap();
        assert_eq!(path, Path::new(RUN).join("kelpie-nvidia-icd.json"));
        assert!(json.contains("/.singularity.d/libs/libGLX_nvidia.so.0"));
        assert!(p.session_env.contains(&("VK_ICD_FILENAMES", path.display().to_string())));
    }

    #[test]
    fn missing_zink_falls_back_in_auto_and_refuses_in_gpu_mode() {
        let facts = GpuFacts { mesa_zink: false, ..nvidia() };
        assert_eq!(plan(GlMode::Auto, &facts, Path::new(RUN)).unwrap().path, GlPath::Llvmpipe);
        let err = plan(GlMode::Gpu, &facts, Path::new(RUN)).unwrap_err();
        assert!(err.to_string().contains("zink"), "{err}");
        assert!(plan(GlMode::Gpu, &GpuFacts::default(), Path::new(RUN)).is_err());
        assert_eq!(plan(GlMode::Gpu, &nvidia(), Path::new(RUN)).unwrap().path, GlPath::Zink);
    }

    #[test]
    fn software_mode_ignores_the_gpu() {
        let p = plan(GlMode::Software, &nvidia(), Path::new(RUN)).unwrap();
        assert_eq!(p.path, GlPath::Llvmpipe);
        assert!(p.session_env.is_empty());
        assert_eq!(p.xvfb_env.len(), 1);
    }
}
