//! Connects `ViewerClient`s to a running Kelpie and prints what they receive, once a second.
//!
//! For poking at a server by hand:
//!
//! ```sh
//! cargo run -j2 -p kelpie-tests --example viewer -- ws://127.0.0.1:8080/ws --seconds 10 --viewers 2
//! ```

use std::time::Duration;

use kelpie_tests::{ViewerClient, ViewerOptions};

struct Args {
    url: String,
    seconds: u64,
    viewers: usize,
    bind: Vec<String>,
    pli_ms: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { url: String::new(), seconds: 10, viewers: 1, bind: Vec::new(), pli_ms: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            it.next().and_then(|v| v.parse().ok()).ok_or(format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--seconds" => args.seconds = number("--seconds")?,
            "--viewers" => args.viewers = number("--viewers")? as usize,
            "--pli" => args.pli_ms = Some(number("--pli")?),
            "--bind" => args.bind.push(it.next().ok_or("--bind needs ADDR:PORT")?),
            url if !url.starts_with("--") && args.url.is_empty() => args.url = url.to_owned(),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    if args.url.is_empty() {
        return Err("usage: viewer WS_URL [--seconds N] [--viewers N] [--bind ADDR:PORT ...] [--pli MS]".into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let mut viewers = Vec::new();
    for _ in 0..args.viewers {
        let defaults = ViewerOptions::default();
        let options = ViewerOptions {
            pli_until_keyframe: args.pli_ms.map(Duration::from_millis),
            udp_addrs: if args.bind.is_empty() { defaults.udp_addrs.clone() } else { args.bind.clone() },
            ..defaults
        };
        let viewer = ViewerClient::connect_with(&args.url, options).await?;
        println!("connected {} as {} after {:?}", viewer.viewer_id(), viewer.role(), viewer.elapsed());
        viewers.push(viewer);
    }
    let mut last: Vec<u64> = vec![0; viewers.len()];
    for _ in 0..args.seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for (viewer, last) in viewers.iter().zip(last.iter_mut()) {
            let s = viewer.stats();
            println!(
                "{}: {} fps, {} frames ({} key, {} incomplete, {} after key), {} lost, {:.0} kB, {:?}x{:?}, first frame {:?}, first key {:?}, max gap {:?}, {}",
                viewer.viewer_id(),
                s.frames - *last,
                s.frames,
                s.keyframes,
                s.incomplete_frames,
                s.incomplete_after_keyframe,
                s.lost_packets,
                s.bytes as f64 / 1000.0,
                s.width,
                s.height,
                s.first_frame_after,
                s.first_keyframe_after,
                s.max_frame_gap,
                s.peer_state,
            );
            *last = s.frames;
        }
    }
    for viewer in viewers {
        viewer.close().await?;
    }
    Ok(())
}
