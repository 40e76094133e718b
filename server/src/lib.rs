//! Kelpie: stream a Linux desktop to browsers over WebRTC.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | flags and `KELPIE_*` environment |
//! | [`display`] | attach to an X display or start an embedded Xvfb + session |
//! | [`media`] | the shared capture/encode pipeline and per-viewer webrtcbin branches |
//! | [`signalling`] | the `/ws` JSON protocol and its pure state machine |
//! | [`input`] | data-channel input parsing, keysym mapping, XTest injection |
//! | [`files`] | browser file transfer: name policy and the files folder |
//! | [`clipboard`] | clipboard sync with X: UTF-8 text and PNG images, both ways |
//! | [`cursor`] | the X cursor image, sent to browsers as their CSS cursor |
//! | [`http`] | the axum router: web client, `/health`, `/ws` |
//!
//! Start-up wires these in dependency order in [`run`]; shutdown goes in reverse.

pub mod auth;
pub mod clipboard;
pub mod config;
pub mod cursor;
pub mod display;
pub mod files;
pub mod http;
pub mod input;
pub mod media;
pub mod metrics;
pub mod screen;
pub mod signalling;
pub mod turn;
pub mod web;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use config::{Command, Config};
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
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}; the X display is gone, Kelpie stops (exit status 3)")]
    DisplayLost(String),
}

impl RunError {
    /// Process exit status: 3 when the display died (as with ximagesrc's Xlib handler), so a
    /// supervisor can tell "desktop gone" from a configuration error (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::DisplayLost(_) => media::xlib::EXIT_X_GONE,
            _ => 1,
        }
    }
}

/// Runs a subcommand other than streaming; returns what to print.
pub fn run_command(config: &Config, command: &Command) -> Result<String, RunError> {
    match command {
        Command::Token { ttl, user } => {
            let key = config.security.token_key()?;
            let expires = http::now_unix() + ttl.as_secs();
            key.mint(user, expires).map_err(|e| RunError::Config(config::ConfigError::Secret(e.to_string())))
        }
    }
}

/// Worker threads for software video work: all cores up to four (x264 slices and
/// videoconvert stop scaling for 1080p beyond that).
fn video_threads() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(4) as u32)
}

/// Runs Kelpie until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), RunError> {
    config.validate()?;
    // Secrets and ICE settings are checked before anything starts, so a typo costs nothing.
    let auth = config.security.build()?;
    let ice_servers = config.ice.build()?;
    let tls = match (&config.security.tls_cert, &config.security.tls_key) {
        (Some(cert), Some(key)) => Some(http::load_tls(cert, key).map_err(RunError::Tls)?),
        _ => None,
    };
    tracing::info!(auth = ?config.security.auth, tls = tls.is_some(), base_path = %config.base_path, "access settings");
    gst::init().map_err(|e| RunError::Gstreamer(e.to_string()))?;
    kelpiegst::plugin_register_static().map_err(|e| RunError::Gstreamer(e.to_string()))?;
    media::xlib::install_io_error_handler();
    media::warm_up_dtls();

    let screen = tokio::task::block_in_place(|| match &config.display {
        Some(name) => Display::attach(name),
        None => Display::spawn_embedded(config.size, config.max_size, config.session.as_deref()),
    })?;
    tracing::info!(x_display = %screen.name, width = screen.width, height = screen.height, "capturing display");

    let params = EncodeParams { bitrate_kbps: config.bitrate, framerate: config.framerate, threads: video_threads() };
    let choice = tokio::task::block_in_place(|| media::select_encoder(config.encoder, &params))?;
    let ice =
        media::IceSettings { addresses: config.ice_addresses.clone(), ports: config.udp_ports.map(|r| (r.min, r.max)) };
    let desktop = Desktop::start(config.capture, &screen.name, choice.kind, &params, ice)?;
    let input = input::InputInjector::start(screen.name.clone());
    let cursor = config.remote_cursor.then(|| cursor::RemoteCursor::start(screen.name.clone(), desktop.clone()));

    let clipboard = clipboard::Clipboard::start(&config.clipboard, screen.name.clone(), desktop.clone());

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
        ice: ice_servers,
        auth,
        limiter: Mutex::new(Default::default()),
        base_path: config.base_path.clone(),
        tls: tls.is_some(),
        next_viewer: AtomicU64::new(0),
        clipboard,
        files: Arc::new(http::files::FilesState::from_config(&config.files, &config.allowed_origins)),
        cursor,
        resizer: config.resize.then(|| screen::Resizer::start(screen.name.clone())),
        pointer_locked: Mutex::new(Default::default()),
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("Kelpie is streaming display {} at {scheme}://{addr}{}", screen.name, config.base_path);

    let router = http::router(app);
    let mut fatal = desktop.fatal_error();
    let stop = async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = fatal.wait_for(Option::is_some) => {}
        }
    };
    match tls {
        Some(tls) => {
            let service = router.into_make_service_with_connect_info::<http::Peer>();
            axum::serve(http::TlsListener::new(listener, tls), service)
                .with_graceful_shutdown(stop)
                .await
                .map_err(RunError::Serve)?
        }
        None => {
            let service = router.into_make_service_with_connect_info::<http::Peer>();
            axum::serve(listener, service).with_graceful_shutdown(stop).await.map_err(RunError::Serve)?
        }
    }

    let lost = desktop.fatal_error().borrow().clone();
    tracing::info!("shutting down");
    desktop.shutdown();
    drop(screen);
    match lost {
        Some(why) => Err(RunError::DisplayLost(why)),
        None => Ok(()),
    }
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
