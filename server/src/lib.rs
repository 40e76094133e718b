//! Kelpie: stream a Linux desktop to browsers over WebRTC.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | flags and `KELPIE_*` environment |
//! | [`display`] | attach to an X display or start an embedded Xvfb + session |
//! | [`media`] | the shared capture/encode pipeline and per-viewer webrtcbin branches |
//! | [`signalling`] | the `/ws` JSON protocol and its pure state machine |
//! | [`input`] | data-channel input parsing, keysym mapping, XTest injection |
//! | [`http`] | the axum router: web client, `/health`, `/ws` |
//!
//! Start-up wires these in dependency order in [`run`]; shutdown goes in reverse.

pub mod config;
pub mod display;
pub mod http;
pub mod input;
pub mod media;
pub mod signalling;
pub mod web;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use config::Config;
use display::Display;
use media::{Desktop, EncodeParams};

/// Why Kelpie could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(
        "GStreamer could not start: {0}. Install gstreamer1.0-plugins-{{base,good,bad,ugly}} and gstreamer1.0-nice"
    )]
    Gstreamer(String),
    #[error(transparent)]
    Display(#[from] display::DisplayError),
    #[error(transparent)]
    Media(#[from] media::MediaError),
    #[error("cannot listen on {addr}: {why}")]
    Listen { addr: std::net::SocketAddr, why: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Worker threads for software video work: all cores up to four (x264 slices and
/// videoconvert stop scaling for 1080p beyond that).
fn video_threads() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(4) as u32)
}

/// Runs Kelpie until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), RunError> {
    config.validate()?;
    gst::init().map_err(|e| RunError::Gstreamer(e.to_string()))?;
    kelpiegst::plugin_register_static().map_err(|e| RunError::Gstreamer(e.to_string()))?;
    media::xlib::install_io_error_handler();

    let screen = tokio::task::block_in_place(|| match &config.display {
        Some(name) => Display::attach(name),
        None => Display::spawn_embedded(config.size, config.session.as_deref()),
    })?;
    tracing::info!(x_display = %screen.name, width = screen.width, height = screen.height, "capturing display");

    let params = EncodeParams { bitrate_kbps: config.bitrate, framerate: config.framerate, threads: video_threads() };
    let choice = tokio::task::block_in_place(|| media::select_encoder(config.encoder, &params))?;
    let ice =
        media::IceSettings { addresses: config.ice_addresses.clone(), ports: config.udp_ports.map(|r| (r.min, r.max)) };
    let desktop = Desktop::start(&screen.name, choice.kind, &params, ice)?;
    let input = input::InputInjector::start(screen.name.clone());

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|why| RunError::Listen { addr: config.listen, why })?;
    let addr = listener.local_addr().map_err(RunError::Serve)?;
    let app = Arc::new(http::App {
        desktop: desktop.clone(),
        input,
        display: screen.name.clone(),
        width: screen.width,
        height: screen.height,
        framerate: config.framerate,
        max_viewers: config.max_viewers as usize,
        allowed_origins: config.allowed_origins.clone(),
        ice_servers: Vec::new(),
        next_viewer: AtomicU64::new(0),
    });
    tracing::info!("Kelpie is streaming display {} at http://{addr}/", screen.name);

    axum::serve(listener, http::router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(RunError::Serve)?;

    tracing::info!("shutting down");
    desktop.shutdown();
    drop(screen);
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}
