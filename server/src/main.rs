use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = kelpie::config::Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("KELPIE_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    if let Some(command) = &config.command {
        let out = kelpie::run_command(&config, command)?;
        println!("{out}");
        return Ok(());
    }
    if let Err(e) = kelpie::run(config).await {
        tracing::error!("{e}");
        exit_now(e.exit_code());
    }
    Ok(())
}

/// Exits without running atexit handlers: X, clipboard and GStreamer threads may still be
/// running when Kelpie gives up (the display died), and library destructors racing them
/// could turn the promised exit status into a crash.
fn exit_now(code: i32) -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit ends the process at once; nothing runs after it.
    unsafe { libc::_exit(code) }
}
