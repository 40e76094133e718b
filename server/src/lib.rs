//! Kelpie: stream a Linux desktop to browsers over WebRTC.
//!
//! Layers point down only (`docs/architecture.md` draws them):
//!
//! | layer | module | job |
//! |---|---|---|
//! | wiring | [`run`], [`app`] | start the parts in dependency order, adapt them to the ports, stop in reverse |
//! | shells | [`http`] | the page, `/ws`, `files/`, `share`, `/health`, `/metrics`, auth middleware, TLS |
//! | session | [`room`] | participants, roles, control hand-off, settings clamps (pure rules + thin actor) |
//! | media | [`media`] | the shared capture/encode pipeline, its tracks, per-participant webrtcbin transports |
//! | desktop | [`display`], [`input`], [`clipboard`], [`cursor`], [`screen`] | everything that talks to X |
//! | ports | [`outbox`], [`transport`] | the traits the layers meet at |
//! | pure cores | [`signalling`], [`auth`], [`files`], [`turn`], [`metrics`], [`latency`], [`web`] | protocols, tokens, names, rendering |
//! | flags | [`config`] | flags and `KELPIE_*` environment; may name domain types, never the reverse |

pub mod adapt;
pub mod app;
pub mod auth;
pub mod banner;
mod child;
pub mod clipboard;
pub mod config;
pub mod cursor;
pub mod display;
pub mod files;
pub mod gamepad;
pub mod gpu;
pub mod heap;
pub mod http;
pub mod input;
pub mod latency;
pub mod media;
pub mod metrics;
pub mod outbox;
pub mod room;
pub mod screen;
pub mod signalling;
pub mod sound;
pub mod transport;
pub mod turn;
pub mod web;

use std::sync::{Arc, Mutex};

use config::{Command, Config};
use display::Display;
use media::{Desktop, EncodeParams};

/// How long a stopping Kelpie waits for open connections (downloads, sockets) to end.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

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
    Gl(#[from] display::gl::GpuGlUnavailable),
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
    #[error("the pipeline failed again after its restart ({0}); Kelpie stops (exit status 4)")]
    PipelineFailed(String),
}

impl RunError {
    /// Process exit status: 3 when the display died (as with ximagesrc's Xlib handler), so a
    /// supervisor can tell "desktop gone" from a configuration error (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::DisplayLost(_) => media::xlib::EXIT_X_GONE,
            RunError::PipelineFailed(_) => media::recovery::EXIT_PIPELINE_FAILED,
            _ => 1,
        }
    }
}

/// Runs a subcommand other than streaming; returns what to print.
pub fn run_command(config: &Config, command: &Command) -> Result<String, RunError> {
    match command {
        Command::Token { ttl, user, role } => {
            let key = config.security.token_key()?;
            let claims = auth::Claims {
                user: user.clone(),
                role: *role,
                desktop: config.security.desktop(&config.base_path),
                expires_unix: http::now_unix() + ttl.as_secs(),
            };
            key.mint(&claims).map_err(|e| RunError::Config(config::ConfigError::Secret(e.to_string())))
        }
    }
}

/// Worker threads for software video work: all cores up to four (x264 slices and
/// videoconvert stop scaling for 1080p beyond that).
fn video_threads() -> u32 {
    cores().min(4)
}

fn cores() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
}

/// Runs Kelpie until Ctrl-C or SIGTERM. `cookie` is the embedded display's access cookie
/// ([`display::prepare_embedded`]); without `--display` one is made here if none is given.
pub async fn run(config: Config, cookie: Option<display::XCookie>) -> Result<(), RunError> {
    config.validate()?;
    // Secrets and ICE settings are checked before anything starts, so a typo costs nothing.
    let desktop_id = config.security.desktop(&config.base_path);
    let auth = config.security.build(&desktop_id)?;
    let ice_servers = config.ice.build()?;
    let tls = match (&config.security.tls_cert, &config.security.tls_key) {
        (Some(cert), Some(key)) => Some(http::load_tls(cert, key).map_err(RunError::Tls)?),
        _ => None,
    };
    tracing::info!(
        auth = ?config.security.auth,
        tls = tls.is_some(),
        base_path = %config.base_path,
        desktop_id,
        share_links = if auth.tokens_per_run { "per-run secret" } else { "token secret" },
        "access settings"
    );
    gst::init().map_err(|e| RunError::Gstreamer(e.to_string()))?;
    kelpiegst::plugin_register_static().map_err(|e| RunError::Gstreamer(e.to_string()))?;
    media::xlib::install_io_error_handler();
    media::run_default_main_context();
    media::warm_up_dtls();

    // The embedded desktop's sound server starts first: the session is pointed at it.
    let pulse = if config.audio && config.display.is_none() {
        match tokio::task::block_in_place(sound::pulse::Daemon::start) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!("{e}; the desktop has no sound (video streams anyway)");
                None
            }
        }
    } else {
        None
    };
    let gpu = gpu::GpuFacts::read();
    tracing::info!("GPU: {}", gpu.summary());
    let gl = gl_plan(&config, &gpu)?;
    let mut session_env: Vec<(&str, String)> = pulse.iter().map(|p| ("PULSE_SERVER", p.server())).collect();
    session_env.extend(gl.session_env.iter().cloned());
    if config.gamepads {
        session_env.extend(gamepad_session_env(config.gamepad_socket.as_deref()));
    }
    // The gamepad socket is named after the display; the embedded session finds it ready.
    let mut gamepads = None;
    let mut start_pads = |display: &str| {
        if config.gamepads && gamepads.is_none() {
            gamepads = start_gamepads(config.gamepad_socket.clone(), display);
        }
    };
    let screen = tokio::task::block_in_place(|| match &config.display {
        Some(name) => Display::attach(name),
        None => {
            let cookie = match cookie {
                Some(c) => c,
                None => display::prepare_embedded()?,
            };
            Display::spawn_embedded(
                config.size,
                config.max_size,
                config.session.as_deref(),
                &session_env,
                &gl.xvfb_env,
                cookie,
                &mut start_pads,
            )
        }
    })?;
    start_pads(&screen.name);
    tracing::info!(x_display = %screen.name, width = screen.width, height = screen.height, "capturing display");

    let params = EncodeParams {
        bitrate_kbps: config.bitrate,
        framerate: config.framerate,
        threads: video_threads(),
        x264: config.x264_tuning(cores()),
    };
    tracing::debug!(x264 = ?params.x264, "encoder tuning");
    let choice = tokio::task::block_in_place(|| media::select_encoder(config.encoder, &params, &gpu))?;
    let ice =
        media::IceSettings { addresses: config.ice_addresses.clone(), ports: config.udp_ports.map(|r| (r.min, r.max)) };
    let desktop = Desktop::start(
        config.capture,
        &screen.name,
        choice.kind,
        &params,
        ice,
        media::LinkSettings { adapt: config.adapt, fec_percent: config.fec },
        config.audio.then(|| media::AudioSettings {
            bitrate_kbps: config.audio_bitrate,
            server: pulse.as_ref().map(sound::pulse::Daemon::server),
        }),
    )?;
    let input = input::InputInjector::start(screen.name.clone());
    let outbox: Arc<dyn outbox::Outbox> = desktop.clone();
    let cursor = config.remote_cursor.then(|| cursor::RemoteCursor::start(screen.name.clone(), outbox.clone()));
    // The clipboard reaches only those the room lets have it (owners and guests).
    let audience = room::Audience::new(outbox);
    let clipboard =
        clipboard::Clipboard::start(config.clipboard.settings(), screen.name.clone(), Arc::new(audience.clone()));
    let desk = app::DesktopDesk {
        desktop: desktop.clone(),
        input: input.clone(),
        clipboard,
        cursor,
        resizer: config.resize.then(|| screen::Resizer::start(screen.name.clone(), config.max_size)),
        gamepads: gamepads.clone(),
    };
    let limits = room::Limits {
        max_participants: config.max_viewers as usize,
        max_framerate: config.framerate,
        max_bitrate_kbps: config.bitrate,
    };
    let room = room::RoomActor::new(limits, Arc::new(desk), desktop.clone(), audience);
    if let Some(g) = &gamepads {
        // An app that cannot use the pads says so to whoever is driving them.
        let room = Arc::downgrade(&room);
        g.on_report(move |text| {
            if let Some(r) = room.upgrade() {
                r.notify_controller(text);
            }
        });
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|why| RunError::Listen { addr: config.listen, why })?;
    let addr = listener.local_addr().map_err(RunError::Serve)?;
    let ops_listener = match config.ops_listen {
        Some(ops) => Some(tokio::net::TcpListener::bind(ops).await.map_err(|why| RunError::Listen { addr: ops, why })?),
        None => None,
    };
    let status = app::DesktopStatus {
        desktop: desktop.clone(),
        room: room.clone(),
        input,
        display: screen.name.clone(),
        width: screen.width,
        height: screen.height,
        framerate: config.framerate,
        gamepads: gamepads.clone(),
    };
    let app = Arc::new(http::App {
        room,
        status: Arc::new(status),
        allowed_origins: config.allowed_origins.clone(),
        ice: ice_servers,
        auth,
        throttle: Mutex::new(Default::default()),
        slow_checks: tokio::sync::Semaphore::new(http::SLOW_CHECKS),
        trusted_proxies: config.security.trusted_proxies.clone(),
        cookie_secure: config.security.cookie_secure,
        refusal_log: Default::default(),
        hosts: http::host::HostPolicy::new(
            &config.public_host,
            &config.allowed_origins,
            matches!(config.security.auth, config::AuthMode::None),
        ),
        base_path: config.base_path.clone(),
        tls: tls.is_some(),
        files: Arc::new(http::files::FilesState::from_config(&config.files, &config.allowed_origins)),
        transport: config.transport,
        audio: config.audio,
        codec: Default::default(),
        boot: http::boot_id(),
        conns: Default::default(),
        ops_elsewhere: ops_listener.is_some(),
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("Kelpie is streaming display {} at {scheme}://{addr}{}", screen.name, config.base_path);
    let wildcard = addr.ip().is_unspecified();
    let banner = banner::Banner {
        display: format!("{} ({}x{})", screen.name, screen.width, screen.height),
        encoder: desktop.encoder_kind.factory().to_string(),
        audio: config.audio,
        access: match config.security.auth {
            config::AuthMode::None => banner::Access::Loopback,
            config::AuthMode::Basic => banner::Access::Basic(config.security.basic_user.clone()),
            config::AuthMode::Token => banner::Access::Token,
            config::AuthMode::TrustedHeader => banner::Access::TrustedHeader,
        },
        urls: banner::urls(
            scheme,
            addr,
            &config.base_path,
            wildcard.then(banner::host_name).flatten().as_deref(),
            wildcard.then(banner::outward_address).flatten(),
        ),
    };
    // After the log lines, for the person at the terminal (the log has the same facts).
    eprint!("\n{}", banner.render());

    let conns = app.conns.clone();
    let ops_app = app.clone();
    let router = http::router(app);
    drill_on_sigusr2(desktop.clone());
    let mut fatal = desktop.fatal_error();
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let stop = async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = fatal.wait_for(Option::is_some) => {}
        }
        let _ = stopping.send(true);
    };
    // Graceful shutdown lets requests in flight finish, but not for ever: a slow download
    // must not keep a stopped Kelpie alive.
    let mut grace_rx = stopped.clone();
    let grace = async move {
        let _ = grace_rx.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let limits = http::serve::Limits::new(config.max_connections as usize);
    if let Some(ops) = ops_listener {
        let ops_addr = ops.local_addr().map_err(RunError::Serve)?;
        tracing::info!(
            "/health, /livez and /metrics are served at http://{ops_addr} (--ops-listen), without \
             authentication; the main address no longer serves /health or /metrics"
        );
        let ops_router = http::ops_router(ops_app);
        // Its own small connection cap and counters: a busy scraper never takes the
        // desktop's connections, nor the other way round.
        let ops_serve = http::serve::serve(
            ops,
            None,
            ops_router,
            http::serve::Limits::new(16),
            Default::default(),
            stopped.clone(),
        );
        tokio::spawn(ops_serve);
    }
    let serve = http::serve::serve(listener, tls, router, limits, conns, stopped);
    tokio::select! {
        _ = async { tokio::join!(serve, stop) } => {}
        _ = grace => tracing::warn!(
            "connections still open {} s after the stop signal: closing them",
            SHUTDOWN_GRACE.as_secs()
        ),
    }

    let fatal = desktop.fatal_error().borrow().clone();
    tracing::info!("shutting down");
    desktop.shutdown();
    drop(gamepads);
    drop(screen);
    drop(pulse);
    match fatal {
        Some(media::Fatal::DisplayLost(why)) => Err(RunError::DisplayLost(why)),
        Some(media::Fatal::PipelineFailed(why)) => Err(RunError::PipelineFailed(why)),
        None => Ok(()),
    }
}

/// The gamepad socket for display `display`: `--gamepad-socket`, else the per-user,
/// per-display default that `kelpie-gamepad` finds by itself. Failing to make it costs the
/// gamepads only.
fn start_gamepads(given: Option<std::path::PathBuf>, display: &str) -> Option<Arc<gamepad::Gamepads>> {
    let (path, ours) = match given {
        Some(p) => (p, false),
        None => (kelpie_gamepad::paths::default_socket_here(Some(display)), true),
    };
    match gamepad::Gamepads::start(path, ours) {
        Ok(g) => Some(Arc::new(g)),
        Err(e) => {
            tracing::warn!("{e}; gamepads are off (everything else works)");
            None
        }
    }
}

/// The embedded session's OpenGL ([`display::gl`]), its manifest written, the choice
/// logged. An attached display's session is not Kelpie's to set up.
fn gl_plan(config: &Config, gpu: &gpu::GpuFacts) -> Result<display::gl::GlPlan, RunError> {
    let runtime_dir =
        std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    if config.display.is_some() {
        tracing::info!("--display: the session's OpenGL is the existing desktop's own");
        return Ok(display::gl::plan(display::gl::GlMode::Software, gpu, &runtime_dir)?);
    }
    let mut plan = display::gl::plan(config.gl, gpu, &runtime_dir)?;
    if let Some((path, json)) = plan.write_icd.take() {
        if let Err(e) = std::fs::write(&path, json) {
            tracing::warn!("cannot write {}: {e}; apps render with Mesa llvmpipe on the CPU", path.display());
            return Ok(display::gl::plan(display::gl::GlMode::Software, gpu, &runtime_dir)?);
        }
    }
    tracing::info!(path = ?plan.path, "session OpenGL: {}", plan.reason);
    Ok(plan)
}

/// What Kelpie's own session needs for gamepads: the socket when it is not the default,
/// and `kelpie-gamepad` on its `PATH` when it sits next to this binary.
fn gamepad_session_env(socket: Option<&std::path::Path>) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if let Some(s) = socket {
        env.push((kelpie_gamepad::paths::SOCKET_ENV, s.display().to_string()));
    }
    let dir = std::env::current_exe().ok().and_then(|e| e.parent().map(std::path::Path::to_path_buf));
    if let Some(dir) = dir.filter(|d| d.join("kelpie-gamepad").is_file()) {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        env.push(("PATH", format!("{}:{path}", dir.display())));
    }
    env
}

/// `kill -USR2 PID` makes the encoder report an error: a drill of the recovery (one
/// pipeline restart, then exit status 4), for tests and operators (docs/reliability.md).
fn drill_on_sigusr2(desktop: Arc<media::Desktop>) {
    let Ok(mut usr2) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2()) else { return };
    tokio::spawn(async move {
        while usr2.recv().await.is_some() {
            desktop.inject_encoder_error();
        }
    });
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
