//! `kelpie-turn-broker`: holds the TURN secret (coturn's `static-auth-secret`) where the
//! desktop cannot read it, and mints one time-limited credential per viewer for Kelpie's
//! `--turn-broker`.
//!
//! Run it beside Kelpie as another user (on Kubernetes: a sidecar container with its own
//! UID and the only mount of the secret). It listens on loopback by default: anyone who
//! can reach it can get credentials, which expire after `--turn-ttl` and name the desktop
//! (`--label`) in coturn's logs; at most `--per-minute` are issued a minute.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;
use kelpie::config::security::{load_secret, parse_duration};
use kelpie::turn::broker::Issuer;

#[derive(Parser, Debug)]
#[command(
    name = "kelpie-turn-broker",
    version,
    about = "Mints time-limited TURN credentials for Kelpie (--turn-broker) so that the desktop never holds the TURN secret",
    after_help = "The secret: KELPIE_TURN_SECRET or --turn-secret-file (the same one coturn's static-auth-secret has).\n\
                  Request: GET /turn?service=turn&username=NAME → {\"username\",\"password\",\"ttl\",\"uris\"} (the TURN REST API draft).\n\
                  GET /health answers ok."
)]
struct Args {
    /// Address to listen on. Keep it where only the desktop's Kelpie can reach it.
    #[arg(long, env = "KELPIE_TURN_BROKER_LISTEN", default_value = "127.0.0.1:3479")]
    listen: SocketAddr,

    /// File holding the secret shared with coturn (or set KELPIE_TURN_SECRET).
    #[arg(long, env = "KELPIE_TURN_SECRET_FILE", value_name = "PATH")]
    turn_secret_file: Option<PathBuf>,

    /// Lifetime of each credential, e.g. 3600s, 90m, 24h: a TURN allocation ends when its
    /// credential expires, so this bounds a viewer's relayed session.
    #[arg(long, env = "KELPIE_TURN_TTL", default_value = "24h", value_parser = parse_duration)]
    turn_ttl: Duration,

    /// Names the desktop in every credential (`EXPIRY:LABEL/VIEWER`), as coturn logs it.
    #[arg(long, env = "KELPIE_TURN_BROKER_LABEL", default_value = "kelpie")]
    label: String,

    /// Most credentials issued in any minute; more get 429.
    #[arg(long, env = "KELPIE_TURN_BROKER_PER_MINUTE", default_value_t = 60)]
    per_minute: usize,
}

#[derive(serde::Deserialize)]
struct Ask {
    #[serde(default)]
    username: String,
}

type Shared = Arc<Mutex<Issuer>>;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn turn(State(issuer): State<Shared>, Query(ask): Query<Ask>) -> Response {
    let issued = issuer.lock().unwrap_or_else(|e| e.into_inner()).issue(&ask.username, now_ms());
    match issued {
        Ok(c) => {
            tracing::info!(turn_user = %c.username, ttl_s = c.ttl, "credential issued");
            ([(header::CACHE_CONTROL, "no-store")], axum::Json(c)).into_response()
        }
        Err(e) => {
            tracing::warn!("refused: {e}");
            (StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response()
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).with_ansi(colour).init();
    let args = Args::parse();
    let secret = load_secret("KELPIE_TURN_SECRET", args.turn_secret_file.as_deref())?
        .context("no TURN secret: set KELPIE_TURN_SECRET or --turn-secret-file")?;
    // Read once; nothing this process might start should inherit it.
    std::env::remove_var("KELPIE_TURN_SECRET");
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "listening beyond loopback: whoever reaches this address can get TURN credentials");
    }
    let issuer: Shared = Arc::new(Mutex::new(Issuer::new(secret, args.turn_ttl, &args.label, args.per_minute)));
    let app = axum::Router::new().route("/turn", get(turn)).route("/health", get(|| async { "ok" })).with_state(issuer);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        listen = %args.listen, label = %args.label, ttl_s = args.turn_ttl.as_secs(), per_minute = args.per_minute,
        "TURN broker ready"
    );
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(stop).await.context("serving")?;
    Ok(())
}
