//! The WebSocket side of the protocol: opening `/ws` like a browser would, and a raw socket
//! for tests that send the server malformed or out-of-order messages.
//!
//! Browsers always send an `Origin` header on WebSocket upgrades and Kelpie rejects foreign
//! origins, so by default we send the origin a page served by Kelpie itself would have:
//! `http://<host>:<port>` of the WebSocket URL.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::{ClientError, Result};

/// How long the TCP connect plus WebSocket upgrade may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a single send may block (the server not reading).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// A client WebSocket to the server.
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Which `Origin` header the upgrade request carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origin {
    /// `http(s)://host:port` of the WebSocket URL: what a page served by Kelpie sends.
    #[default]
    SameAsUrl,
    /// This exact value (to test that foreign origins are refused).
    Value(String),
    /// No `Origin` header at all, like a non-browser client.
    Omit,
}

impl Origin {
    /// `None` means [`Origin::SameAsUrl`], `Some(v)` means [`Origin::Value`].
    pub fn from_option(origin: Option<&str>) -> Self {
        origin.map_or(Origin::SameAsUrl, |v| Origin::Value(v.to_owned()))
    }
}

/// The origin a page loaded from the same host and port as `ws_url` would send:
/// `ws://127.0.0.1:8080/ws` → `http://127.0.0.1:8080`.
pub fn origin_for_url(ws_url: &str) -> Result<String> {
    let uri: Uri = ws_url.parse().map_err(|_| ClientError::Url(ws_url.to_owned()))?;
    let scheme = match uri.scheme_str() {
        Some("ws") | Some("http") => "http",
        Some("wss") | Some("https") => "https",
        _ => return Err(ClientError::Url(ws_url.to_owned())),
    };
    let authority = uri.authority().ok_or_else(|| ClientError::Url(ws_url.to_owned()))?;
    // Browsers never put credentials in Origin.
    let host_port = authority.as_str().rsplit_once('@').map_or(authority.as_str(), |(_, hp)| hp);
    Ok(format!("{scheme}://{host_port}"))
}

/// Opens the WebSocket with the requested `Origin`, bounded by [`HANDSHAKE_TIMEOUT`].
pub async fn open(ws_url: &str, origin: &Origin) -> Result<WsStream> {
    open_with_headers(ws_url, origin, &[]).await
}

/// [`open`] with extra request headers (`Authorization`, `Cookie`, proxy headers).
pub async fn open_with_headers(ws_url: &str, origin: &Origin, headers: &[(String, String)]) -> Result<WsStream> {
    let mut request = ws_url.into_client_request()?;
    for (name, value) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientError::Url(name.clone()))?;
        let value = HeaderValue::from_str(value).map_err(|_| ClientError::Url(value.clone()))?;
        request.headers_mut().insert(name, value);
    }
    let value = match origin {
        Origin::SameAsUrl => Some(origin_for_url(ws_url)?),
        Origin::Value(v) => Some(v.clone()),
        Origin::Omit => None,
    };
    if let Some(value) = value {
        let header = HeaderValue::from_str(&value).map_err(|_| ClientError::Url(value.clone()))?;
        request.headers_mut().insert("Origin", header);
    }
    let (ws, _response) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .map_err(|_| ClientError::timeout("websocket handshake", HANDSHAKE_TIMEOUT))??;
    Ok(ws)
}

/// One thing received on a signalling socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A text frame (normally one JSON object).
    Text(String),
    /// A binary frame (the server should never send one).
    Binary(Vec<u8>),
    /// The socket is closed; `code` is the close frame's code if there was one.
    Closed {
        /// Close code, e.g. 1008 after a protocol error.
        code: Option<u16>,
        /// Close reason.
        reason: String,
    },
}

/// What the server said when it refused a message: the `error` and the close that follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRefusal {
    /// The `code` field of the `error` message (`bad_json`, `too_large`, …).
    pub code: String,
    /// The `message` field.
    pub message: String,
    /// The WebSocket close code that followed (1008 or 1011), if the socket was closed.
    pub close_code: Option<u16>,
}

/// Translates a tungstenite read result into [`Incoming`]; `None` for control frames.
pub(crate) fn classify(item: Option<Result<Message, tungstenite::Error>>) -> Option<Incoming> {
    match item {
        Some(Ok(Message::Text(text))) => Some(Incoming::Text(text.as_str().to_owned())),
        Some(Ok(Message::Binary(data))) => Some(Incoming::Binary(data.to_vec())),
        Some(Ok(Message::Close(frame))) => Some(closed(frame)),
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => None,
        // A reset or EOF after (or instead of) the close handshake: closed all the same.
        Some(Err(_)) | None => Some(Incoming::Closed { code: None, reason: String::new() }),
    }
}

fn closed(frame: Option<CloseFrame>) -> Incoming {
    match frame {
        Some(frame) => Incoming::Closed { code: Some(u16::from(frame.code)), reason: frame.reason.as_str().to_owned() },
        None => Incoming::Closed { code: None, reason: String::new() },
    }
}

/// Parses a text frame as a server message: a JSON object with a string `type`.
pub fn parse_server_message(text: &str) -> Result<Value> {
    let value: Value = serde_json::from_str(text)?;
    if value.get("type").and_then(Value::as_str).is_none() {
        return Err(ClientError::Protocol(format!("message without a string type: {text}")));
    }
    Ok(value)
}

/// Turns an `error` message into [`ClientError::Server`], passes anything else through.
pub(crate) fn reject_server_error(msg: Value) -> Result<Value> {
    if msg["type"] == "error" {
        return Err(ClientError::Server {
            code: msg["code"].as_str().unwrap_or_default().to_owned(),
            message: msg["message"].as_str().unwrap_or_default().to_owned(),
        });
    }
    Ok(msg)
}

/// A bare signalling WebSocket, for tests of the server's handling of bad clients.
///
/// It does no WebRTC at all; it sends exactly what it is told to and reports exactly what
/// arrives, so malformed JSON, binary frames, oversized frames and out-of-order answers can be
/// thrown at the server. Every receive takes a timeout.
pub struct SignallingSocket {
    ws: WsStream,
}

impl SignallingSocket {
    /// Connects to `ws_url`; `origin` as in [`Origin::from_option`].
    pub async fn connect(ws_url: &str, origin: Option<&str>) -> Result<Self> {
        Self::connect_with_origin(ws_url, &Origin::from_option(origin)).await
    }

    /// Connects with full control over the `Origin` header (including none).
    pub async fn connect_with_origin(ws_url: &str, origin: &Origin) -> Result<Self> {
        Ok(Self { ws: open(ws_url, origin).await? })
    }

    /// Connects with extra request headers (credentials, cookies).
    pub async fn connect_with_headers(ws_url: &str, headers: &[(String, String)]) -> Result<Self> {
        Ok(Self { ws: open_with_headers(ws_url, &Origin::SameAsUrl, headers).await? })
    }

    async fn send(&mut self, message: Message) -> Result<()> {
        tokio::time::timeout(SEND_TIMEOUT, self.ws.send(message))
            .await
            .map_err(|_| ClientError::timeout("websocket send", SEND_TIMEOUT))??;
        Ok(())
    }

    /// Sends a text frame verbatim.
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.send(Message::text(text)).await
    }

    /// Sends a JSON value as a text frame.
    pub async fn send_json(&mut self, value: &Value) -> Result<()> {
        self.send(Message::text(value.to_string())).await
    }

    /// Sends a binary frame (which the protocol forbids).
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.send(Message::binary(data.to_vec())).await
    }

    /// The next text, binary or close event, skipping pings and pongs.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Incoming> {
        let deadline = Instant::now() + timeout;
        loop {
            let item = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| ClientError::timeout("a signalling message", timeout))?;
            if let Some(incoming) = classify(item) {
                return Ok(incoming);
            }
        }
    }

    /// The next message as JSON; a close or binary frame is an error.
    pub async fn recv_json(&mut self, timeout: Duration) -> Result<Value> {
        match self.recv(timeout).await? {
            Incoming::Text(text) => parse_server_message(&text),
            Incoming::Binary(_) => Err(ClientError::Protocol("binary frame".into())),
            Incoming::Closed { code, reason } => Err(ClientError::Closed { code, reason }),
        }
    }

    /// The next message whose `type` is `ty`, skipping others (e.g. `ice` before `offer`).
    /// An `error` message ends the wait with [`ClientError::Server`] unless `ty` is `"error"`.
    pub async fn recv_type(&mut self, ty: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self.recv_json(left).await.map_err(|e| match e {
                ClientError::Timeout { .. } => ClientError::timeout(format!("a {ty:?} message"), timeout),
                other => other,
            })?;
            if msg["type"] == ty {
                return Ok(msg);
            }
            reject_server_error(msg)?;
        }
    }

    /// Waits for the server to refuse something: an `error` message, then the close.
    /// Other messages before the error (`welcome`, `offer`, `ice`) are skipped.
    pub async fn expect_refusal(&mut self, timeout: Duration) -> Result<ServerRefusal> {
        let deadline = Instant::now() + timeout;
        let error = self.recv_type("error", timeout).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        let close_code = self.wait_closed(left).await?;
        Ok(ServerRefusal {
            code: error["code"].as_str().unwrap_or_default().to_owned(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            close_code,
        })
    }

    /// Reads until the socket closes, returning the close code. Messages are discarded.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<Option<u16>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Ok(Incoming::Closed { code, .. }) => return Ok(code),
                Ok(_) => {}
                Err(ClientError::Timeout { .. }) => return Err(ClientError::timeout("the socket to close", timeout)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes politely (close frame, then wait briefly for the server's close).
    pub async fn close(mut self) -> Result<()> {
        let _ = tokio::time::timeout(SEND_TIMEOUT, self.ws.close(None)).await;
        let _ = self.wait_closed(Duration::from_secs(2)).await;
        Ok(())
    }

    /// The underlying stream, for anything not covered here.
    pub fn into_inner(self) -> WsStream {
        self.ws
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_follows_the_url() {
        assert_eq!(origin_for_url("ws://127.0.0.1:8080/ws").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(origin_for_url("wss://kelpie.example:443/ws").unwrap(), "https://kelpie.example:443");
        assert_eq!(origin_for_url("ws://localhost/ws?x=1").unwrap(), "http://localhost");
        assert_eq!(origin_for_url("ws://[::1]:9000/ws").unwrap(), "http://[::1]:9000");
        assert!(origin_for_url("ftp://x/ws").is_err());
        assert!(origin_for_url("not a url").is_err());
    }

    #[test]
    fn server_messages_need_a_type() {
        assert!(parse_server_message(r#"{"type":"pong"}"#).is_ok());
        assert!(parse_server_message(r#"{"type":1}"#).is_err());
        assert!(parse_server_message("[]").is_err());
        assert!(parse_server_message("nope").is_err());
        let err = reject_server_error(serde_json::json!({
            "type": "error", "code": "server_full", "message": "3 viewers"
        }))
        .unwrap_err();
        assert_eq!(err.server_code(), Some("server_full"));
    }
}
