//! The embedded PulseAudio's start-up script (pure): a private socket, a null sink as the
//! default output, and the microphone's sink and virtual source as the default input.
//! Nothing else is loaded (`pulseaudio -n`): no hardware detection, no D-Bus, no X11
//! bell or session modules, no network protocol.

use std::path::Path;

use super::{MIC_SINK, MIC_SOURCE, OUT_SINK, RATE};

/// The native-protocol socket inside `dir`.
pub fn socket_path(dir: &Path) -> std::path::PathBuf {
    dir.join("native")
}

/// What libpulse clients are given as `PULSE_SERVER` for a socket in `dir`.
pub fn server_address(dir: &Path) -> String {
    format!("unix:{}", socket_path(dir).display())
}

/// The script for a daemon whose socket lives in `dir`.
///
/// Anonymous access on the socket is safe because of where it is: `dir` is created 0700
/// for this user, so no other local user can reach the socket (the same guarantee the X
/// display gets from its cookie), and there is no cookie to leak into the session.
pub fn startup_script(dir: &Path) -> String {
    let socket = socket_path(dir);
    let sink = |name: &str, what: &str| {
        format!(
            "load-module module-null-sink sink_name={name} rate={RATE} channels=2 \
sink_properties=\"device.description='{what}'\"\n"
        )
    };
    // `.fail`: a line that fails stops the daemon, instead of a server without our sinks.
    let mut s =
        format!(".fail\nload-module module-native-protocol-unix socket={} auth-anonymous=1\n", socket.display());
    s += &sink(OUT_SINK, "Kelpie (browser speakers)");
    s += &sink(MIC_SINK, "Kelpie microphone input");
    s += &format!(
        "load-module module-virtual-source source_name={MIC_SOURCE} master={MIC_SINK}.monitor \
source_properties=\"device.description='Kelpie (browser microphone)'\"\n"
    );
    s += &format!("set-default-sink {OUT_SINK}\nset-default-source {MIC_SOURCE}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_makes_a_private_socket_and_kelpies_defaults() {
        let s = startup_script(Path::new("/run/user/1000/kelpie-pulse-x"));
        assert!(s.starts_with(
            ".fail\nload-module module-native-protocol-unix socket=/run/user/1000/kelpie-pulse-x/native auth-anonymous=1\n"
        ));
        assert!(s.contains("load-module module-null-sink sink_name=kelpie_out rate=48000 channels=2"));
        assert!(s.contains("module-virtual-source source_name=kelpie_mic master=kelpie_mic_in.monitor"));
        assert!(s.ends_with("set-default-sink kelpie_out\nset-default-source kelpie_mic\n"));
        assert!(!s.contains("tcp"), "no network protocol");
        assert_eq!(server_address(Path::new("/tmp/p")), "unix:/tmp/p/native");
    }
}
