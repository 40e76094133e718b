//! Asks the TURN broker for one viewer's credential (the socket side of
//! `turn::broker`). Bounded in time and size; a broker that fails costs that viewer its
//! relay, never the connection: the log says why, and the page can still fall back to
//! the WebSocket transport.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::turn::broker::{parse_reply, BrokerError, BrokerUrl, Issued, MAX_REPLY_BYTES};
use crate::turn::{IceServers, ViewerIce};

/// How long one request may take, connect to last byte: the viewer waits for it.
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach the TURN broker at {url}: {why}")]
    Io { url: String, why: String },
    #[error("the TURN broker at {url} took over {}s", TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("the TURN broker at {url}: {why}")]
    Reply { url: String, why: BrokerError },
}

/// ICE servers for a viewer named `user`: the TURN entry comes from the broker, when one
/// is configured.
pub async fn viewer_ice(ice: &IceServers, user: &str, now_unix: u64) -> ViewerIce {
    let Some(url) = ice.broker() else { return ice.for_viewer(user, now_unix) };
    match fetch(url, user).await {
        Ok(issued) => {
            tracing::debug!(broker = %url, turn_user = %issued.username, ttl_s = issued.ttl, "TURN credential issued");
            ice.with_credential(Some((issued.username, issued.password)))
        }
        Err(e) => {
            tracing::warn!("{e}; this viewer gets no TURN relay");
            ice.with_credential(None)
        }
    }
}

async fn fetch(url: &BrokerUrl, user: &str) -> Result<Issued, FetchError> {
    let shown = url.to_string();
    let io = |e: std::io::Error| FetchError::Io { url: shown.clone(), why: e.to_string() };
    let exchange = async {
        let mut stream = TcpStream::connect((url.host.as_str(), url.port)).await.map_err(io)?;
        stream.write_all(url.request(user).as_bytes()).await.map_err(io)?;
        let mut raw = Vec::new();
        // One byte over the limit is enough to know the reply is too long.
        (&mut stream).take(MAX_REPLY_BYTES as u64 + 1).read_to_end(&mut raw).await.map_err(io)?;
        parse_reply(&raw).map_err(|why| FetchError::Reply { url: shown.clone(), why })
    };
    tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| FetchError::Timeout { url: url.to_string() })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn::TurnCredentials;
    use tokio::net::TcpListener;

    fn servers(port: u16) -> IceServers {
        IceServers {
            stun_urls: vec![],
            turn_urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            credentials: TurnCredentials::Broker(BrokerUrl::parse(&format!("http://127.0.0.1:{port}/turn")).unwrap()),
            force_relay: false,
        }
    }

    /// A one-shot broker on loopback that answers `reply` and hands back what it was asked.
    async fn one_shot(reply: String) -> (u16, tokio::task::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (port, task)
    }

    #[tokio::test]
    async fn the_brokers_credential_reaches_the_viewer() {
        let body = r#"{"username":"9:d/al","password":"x","ttl":5}"#;
        let (port, asked) = one_shot(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len())).await;
        let ice = viewer_ice(&servers(port), "al", 0).await;
        assert_eq!(ice.browser[0].username.as_deref(), Some("9:d/al"));
        assert!(asked.await.unwrap().starts_with("GET /turn?service=turn&username=al HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn a_failing_broker_costs_the_relay_not_the_viewer() {
        let (port, _asked) = one_shot("HTTP/1.1 429 Too Many Requests\r\n\r\n".into()).await;
        assert!(viewer_ice(&servers(port), "al", 0).await.browser.is_empty());
        // Nobody listening.
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        assert!(viewer_ice(&servers(free), "al", 0).await.browser.is_empty());
    }
}
