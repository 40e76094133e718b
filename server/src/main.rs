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
        kelpie::media::xlib::exit_now(e.exit_code());
    }
    Ok(())
}
