//! TLS for deployments without a TLS proxy in front (rustls), and the options every
//! accepted connection gets (`tune`); the accept loop itself is [`super::serve`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;

/// Loads a PEM certificate chain and key into a server configuration.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate PEM in {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read private key {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The peer address of a connection, plain or TLS (axum's `ConnectInfo` payload, put in
/// every request by [`super::serve`]).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Unsent bytes the kernel may hold for one connection before the socket stops being
/// writable. Without a limit Linux buffers up to megabytes per connection, which for
/// video on the WebSocket transport means seconds of old frames queued in front of the
/// new ones on a slow link; with it the feed sees the socket is busy and skips to a fresh
/// keyframe instead. 64 KiB is a few frames at typical bitrates and does not limit
/// throughput (the congestion window is not affected).
const NOTSENT_LOWAT: libc::c_int = 64 * 1024;

/// Per-connection socket options: no Nagle delay (input echoes and small frames go out at
/// once) and a bound on unsent data ([`NOTSENT_LOWAT`]).
pub(super) fn tune(tcp: &mut TcpStream) {
    use std::os::fd::AsRawFd;
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
    let value = NOTSENT_LOWAT;
    // SAFETY: a valid socket fd and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!("TCP_NOTSENT_LOWAT: {}", std::io::Error::last_os_error());
    }
}
