use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    kelpie::heap::tune_for_a_long_run();
    let config = kelpie::config::Config::parse();
    // Colours only for a person at a terminal: a log file or journal gets plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("KELPIE_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    if let Some(command) = &config.command {
        let out = kelpie::run_command(&config, command)?;
        println!("{out}");
        return Ok(());
    }
    // The embedded display's cookie goes into XAUTHORITY while this is the only thread.
    let cookie = match config.display {
        None => match kelpie::display::prepare_embedded() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!("{e}");
                std::process::exit(1);
            }
        },
        Some(_) => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Err(e) = runtime.block_on(kelpie::run(config, cookie)) {
        tracing::error!("{e}");
        kelpie::media::xlib::exit_now(e.exit_code());
    }
    Ok(())
}
