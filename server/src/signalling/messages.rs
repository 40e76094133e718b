//! The JSON messages of the signalling WebSocket (see `docs/protocol.md`).

use serde::{Deserialize, Serialize};

pub use crate::auth::Role;
pub use crate::transport::Kind;
pub use crate::turn::IceServer;

/// A transport switch's reason is shown in the server's log; longer ones are cut.
pub const MAX_REASON_CHARS: usize = 200;

/// Largest signalling frame accepted. Real SDP answers are a few KiB; anything near this
/// limit is a bug or an attack, and is answered with `too_large`.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Messages the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        viewer_id: String,
        role: Role,
        /// The name the credentials gave (shown to the others in the participants list).
        user: String,
        ice_servers: Vec<IceServer>,
        /// `"relay"` when media must go through TURN, else `"all"` (RTCIceTransportPolicy).
        ice_transport_policy: &'static str,
        /// The transport this participant's media starts on.
        transport: Kind,
        /// The transports this server offers (`--transport`): the page may switch among them.
        transports: Vec<Kind>,
        /// The desktop's sound is streamed (`--audio`): the page offers sound controls and,
        /// on the WebSocket, the microphone before the first audio frame (PulseAudio may
        /// be away).
        audio: bool,
        /// This run of the server (random, fixed until it restarts): a page that sees
        /// another one after a reconnect knows the desktop is a new session.
        boot: String,
        /// The stream's ceilings (`--framerate`, `--bitrate`): what "server default" means
        /// in the page's settings, and the most a participant may ask for.
        stream: StreamLimits,
    },
    /// Media moves to `kind` from now on: for WebRTC an offer follows, for the WebSocket
    /// binary frames do.
    Transport {
        kind: Kind,
    },
    Offer {
        sdp: String,
    },
    Ice {
        candidate: String,
        #[serde(rename = "sdpMLineIndex")]
        sdp_mline_index: u32,
    },
    Pong,
    Error {
        code: ErrorCode,
        message: String,
    },
    /// Who is here and who holds control; sent after the welcome and after every change.
    Room {
        /// The receiving participant's id.
        you: String,
        /// The id of the participant holding keyboard and mouse, if any.
        control: Option<String>,
        participants: Vec<ParticipantView>,
    },
    /// A line for the person: a control request arrived, control moved, a request was refused.
    Notice {
        text: String,
    },
}

/// One participant as the others see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParticipantView {
    pub id: String,
    pub user: String,
    pub role: Role,
    /// Holds keyboard and mouse.
    pub control: bool,
    /// Has asked for control and not been answered yet.
    pub requesting: bool,
}

/// What a participant asks of the room about control.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Ask for control (owners get it at once when nobody holds it).
    Request,
    /// Give control up.
    Release,
    /// Take control (owners).
    Take,
    /// Give control to participant `to` (owners).
    Grant,
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        // Serialising these plain enums cannot fail: no maps with non-string keys, no floats.
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"serialisation"}"#.into())
    }
}

/// The stream's ceilings, as the welcome tells them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StreamLimits {
    pub framerate: u32,
    pub bitrate_kbps: u32,
}

/// Messages a client may send.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Answer {
        sdp: String,
    },
    Ice {
        candidate: String,
        #[serde(rename = "sdpMLineIndex")]
        sdp_mline_index: u32,
    },
    Ping,
    Control {
        action: ControlAction,
        /// The participant id (`v3`) for `grant`.
        #[serde(default)]
        to: Option<String>,
    },
    /// Carry media on `kind` from now on (the page's automatic fallback, or its settings).
    Transport {
        kind: Kind,
        /// Why the page asks, for the server's log ("no WebRTC media within 3 s").
        #[serde(default)]
        reason: String,
    },
    /// What this browser can decode the H.264 video with: WebRTC, and WebCodecs (the
    /// WebSocket transport). A page sends it once, only when WebRTC cannot, so that the
    /// server logs and counts it (`signalling::codec`).
    Codec {
        webrtc: bool,
        websocket: bool,
    },
}

/// Machine-readable error codes, stable for clients.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    BadMessage,
    TooLarge,
    BinaryUnsupported,
    /// A binary frame on the WebSocket transport that is not one a browser may send.
    BadFrame,
    Unexpected,
    BadSdp,
    /// The browser cannot decode the H.264 video over WebRTC (its answer rejected it).
    UnsupportedCodec,
    ServerFull,
    Internal,
}

/// Why a client frame was not a valid [`ClientMessage`].
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub code: ErrorCode,
    pub message: String,
}

const CLIENT_TYPES: [&str; 6] = ["answer", "ice", "ping", "control", "transport", "codec"];

/// Parses a text frame, classifying failures so the client gets a precise error code.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError {
            code: ErrorCode::TooLarge,
            message: format!("message of {} bytes exceeds the {} byte limit", text.len(), MAX_MESSAGE_BYTES),
        });
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ParseError { code: ErrorCode::BadJson, message: format!("not JSON: {e}") })?;
    let Some(kind) = value.get("type").and_then(|t| t.as_str()).map(str::to_owned) else {
        return Err(ParseError {
            code: ErrorCode::BadJson,
            message: "expected a JSON object with a string \"type\"".into(),
        });
    };
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        let shown: String = kind.chars().take(40).collect();
        return Err(ParseError {
            code: ErrorCode::UnknownType,
            message: format!("unknown message type {shown:?}; expected one of {CLIENT_TYPES:?}"),
        });
    }
    serde_json::from_value(value)
        .map_err(|e| ParseError { code: ErrorCode::BadMessage, message: format!("malformed {kind:?} message: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_parses() {
        let m = parse_client_message(r#"{"type":"answer","sdp":"v=0\r\n"}"#).unwrap();
        assert_eq!(m, ClientMessage::Answer { sdp: "v=0\r\n".into() });
    }

    #[test]
    fn ice_uses_browser_field_names() {
        let m = parse_client_message(
            r#"{"type":"ice","candidate":"candidate:1 1 UDP 1 127.0.0.1 5000 typ host","sdpMLineIndex":0}"#,
        )
        .unwrap();
        assert!(matches!(m, ClientMessage::Ice { sdp_mline_index: 0, .. }));
    }

    #[test]
    fn control_messages_parse() {
        let m = parse_client_message(r#"{"type":"control","action":"grant","to":"v3"}"#).unwrap();
        assert_eq!(m, ClientMessage::Control { action: ControlAction::Grant, to: Some("v3".into()) });
        let m = parse_client_message(r#"{"type":"control","action":"request"}"#).unwrap();
        assert_eq!(m, ClientMessage::Control { action: ControlAction::Request, to: None });
        let bad = parse_client_message(r#"{"type":"control","action":"steal"}"#).unwrap_err();
        assert_eq!(bad.code, ErrorCode::BadMessage);
    }

    #[test]
    fn transport_requests_parse_and_unknown_kinds_are_refused() {
        let m = parse_client_message(r#"{"type":"transport","kind":"websocket","reason":"no media"}"#).unwrap();
        assert_eq!(m, ClientMessage::Transport { kind: Kind::Websocket, reason: "no media".into() });
        let m = parse_client_message(r#"{"type":"transport","kind":"webrtc"}"#).unwrap();
        assert_eq!(m, ClientMessage::Transport { kind: Kind::Webrtc, reason: String::new() });
        let bad = parse_client_message(r#"{"type":"transport","kind":"carrier-pigeon"}"#).unwrap_err();
        assert_eq!(bad.code, ErrorCode::BadMessage);
    }

    #[test]
    fn errors_are_classified() {
        let code = |t: &str| parse_client_message(t).unwrap_err().code;
        assert_eq!(code("not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code(r#"{"type":5}"#), ErrorCode::BadJson);
        assert_eq!(code(r#"{"type":"offer","sdp":"x"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"answer"}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":"ice","candidate":"c","sdpMLineIndex":-1}"#), ErrorCode::BadMessage);
        assert_eq!(code(&"x".repeat(MAX_MESSAGE_BYTES + 1)), ErrorCode::TooLarge);
    }

    #[test]
    fn server_messages_serialise_as_documented() {
        let j = ServerMessage::Ice { candidate: "c".into(), sdp_mline_index: 0 }.to_json();
        assert_eq!(j, r#"{"type":"ice","candidate":"c","sdpMLineIndex":0}"#);
        let j = ServerMessage::Error { code: ErrorCode::TooLarge, message: "m".into() }.to_json();
        assert_eq!(j, r#"{"type":"error","code":"too_large","message":"m"}"#);
        let j = ServerMessage::Welcome {
            viewer_id: "v1".into(),
            role: Role::Guest,
            user: "bob".into(),
            ice_servers: vec![],
            ice_transport_policy: "all",
            transport: Kind::Webrtc,
            transports: vec![Kind::Webrtc, Kind::Websocket],
            audio: true,
            boot: "0123abcd".into(),
            stream: StreamLimits { framerate: 60, bitrate_kbps: 8000 },
        }
        .to_json();
        assert_eq!(
            j,
            r#"{"type":"welcome","viewer_id":"v1","role":"guest","user":"bob","ice_servers":[],"ice_transport_policy":"all","transport":"webrtc","transports":["webrtc","websocket"],"audio":true,"boot":"0123abcd","stream":{"framerate":60,"bitrate_kbps":8000}}"#
        );
        assert_eq!(
            ServerMessage::Transport { kind: Kind::Websocket }.to_json(),
            r#"{"type":"transport","kind":"websocket"}"#
        );
        let j = ServerMessage::Room {
            you: "v2".into(),
            control: Some("v1".into()),
            participants: vec![ParticipantView {
                id: "v1".into(),
                user: "alice".into(),
                role: Role::Owner,
                control: true,
                requesting: false,
            }],
        }
        .to_json();
        assert_eq!(
            j,
            r#"{"type":"room","you":"v2","control":"v1","participants":[{"id":"v1","user":"alice","role":"owner","control":true,"requesting":false}]}"#
        );
    }
}
