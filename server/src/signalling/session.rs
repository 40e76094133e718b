//! The per-viewer signalling state machine: no sockets, no GStreamer, no clock.
//!
//! The WebSocket handler feeds it [`Event`]s (client frames, media-engine results) and
//! carries out the [`Action`]s it returns. Keeping it pure lets the tests state the whole
//! conversation as "this goes in, exactly these come out".

use super::codec::{answer_rejects_video, CodecOutcome};
use super::messages::{
    parse_client_message, ClientMessage, ControlAction, ErrorCode, IceServer, Kind, Role, ServerMessage, StreamLimits,
    MAX_MESSAGE_BYTES, MAX_REASON_CHARS,
};
use crate::transport::frame::{self, FrameError};

/// WebSocket close codes used when the server ends a session.
pub mod close_code {
    /// The client broke the protocol.
    pub const POLICY: u16 = 1008;
    /// The server could not serve this viewer.
    pub const INTERNAL: u16 = 1011;
    /// Orderly shutdown.
    pub const NORMAL: u16 = 1000;
}

/// Where a viewer is in the offer/answer exchange.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for the media engine to produce our offer.
    CreatingOffer,
    /// Offer sent; waiting for the browser's answer.
    OfferSent,
    /// Answer passed to the media engine; waiting for it to accept.
    ApplyingAnswer,
    /// Negotiated; ICE and media flow.
    Established,
    /// Media and data-channel messages travel as binary frames on this socket.
    Socket,
    /// The session is over; every further event is ignored.
    Closed,
}

/// Something that happened to the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A text frame from the browser.
    ClientText(String),
    /// A binary frame from the browser.
    ClientBinary(Vec<u8>),
    /// The media engine created our offer.
    LocalOffer(String),
    /// The media engine found a local ICE candidate.
    LocalIce { candidate: String, sdp_mline_index: u32 },
    /// The media engine accepted the browser's answer.
    AnswerApplied,
    /// The viewer's WebRTC transport is up (DTLS done): media reaches it from now on.
    MediaConnected,
    /// The media engine rejected the answer.
    AnswerRejected(String),
    /// The media engine failed for this viewer (ICE failed, element error, ...).
    MediaFailed(String),
}

/// What the I/O shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send(ServerMessage),
    ApplyAnswer(String),
    AddRemoteIce {
        candidate: String,
        sdp_mline_index: u32,
    },
    /// Ask the encoder for a keyframe so the new viewer can start decoding at once.
    RequestKeyframe,
    /// Close the socket with this code and reason, then tear the viewer down.
    Close {
        code: u16,
        reason: String,
    },
    /// Hand a control request to the room (the room answers on its own).
    Control {
        action: ControlAction,
        to: Option<String>,
    },
    /// A data-channel message that arrived on the socket: hand it to the room.
    Inbound(String),
    /// The page received video frame `seq` at `at_us`: hand it to the socket's feed.
    Ack {
        seq: u32,
        at_us: u64,
    },
    /// A microphone packet that arrived on the socket: hand it to the socket's feed.
    Mic(bytes::Bytes),
    /// Close the current transport and open one of `kind` (the actions after this one
    /// assume it is open).
    Switch {
        kind: Kind,
        reason: String,
    },
    /// The browser lacks WebRTC H.264: log and count what became of it.
    Codec(CodecOutcome),
}

/// What a session starts with: who the participant is and how its media travels.
#[derive(Clone, Debug)]
pub struct Start {
    pub viewer_id: String,
    pub role: Role,
    pub user: String,
    pub ice_servers: Vec<IceServer>,
    pub relay_only: bool,
    /// The transport media starts on.
    pub transport: Kind,
    /// The transports the server offers; the page may switch among these.
    pub offered: Vec<Kind>,
    /// The desktop's sound is streamed.
    pub audio: bool,
    /// This run of the server ([`ServerMessage::Welcome`]'s `boot`).
    pub boot: String,
    /// The stream's ceilings.
    pub stream: StreamLimits,
}

/// Remote ICE candidates taken per offer: a browser gathers a handful per interface, and
/// each one taken costs connectivity checks towards the address it names (review #34).
/// The rest are ignored, not refused: a host with many interfaces still connects.
pub const MAX_REMOTE_CANDIDATES: u32 = 50;

/// One viewer's signalling conversation.
#[derive(Debug)]
pub struct Session {
    state: State,
    kind: Kind,
    offered: Vec<Kind>,
    /// Remote candidates taken since the last offer.
    remote_candidates: u32,
}

impl Session {
    /// Starts a session; the returned actions greet the viewer.
    pub fn start(start: Start) -> (Self, Vec<Action>) {
        let ice_transport_policy = if start.relay_only { "relay" } else { "all" };
        let welcome = ServerMessage::Welcome {
            viewer_id: start.viewer_id,
            role: start.role,
            user: start.user,
            ice_servers: start.ice_servers,
            ice_transport_policy,
            transport: start.transport,
            transports: start.offered.clone(),
            audio: start.audio,
            boot: start.boot,
            stream: start.stream,
        };
        let session = Self {
            state: media_state(start.transport),
            kind: start.transport,
            offered: start.offered,
            remote_candidates: 0,
        };
        (session, vec![Action::Send(welcome)])
    }

    /// The transport media travels on now.
    pub fn transport(&self) -> Kind {
        self.kind
    }

    /// A session refused before it starts, e.g. because the server is full.
    pub fn refuse(code: ErrorCode, message: String) -> Vec<Action> {
        let close = if code == ErrorCode::Internal { close_code::INTERNAL } else { close_code::POLICY };
        vec![
            Action::Send(ServerMessage::Error { code, message: message.clone() }),
            Action::Close { code: close, reason: truncate_reason(&message) },
        ]
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Feeds one event in and returns what to do about it.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        match event {
            Event::ClientText(text) => match parse_client_message(&text) {
                Ok(msg) => self.on_client_message(msg),
                Err(e) => self.fail(e.code, e.message),
            },
            Event::ClientBinary(bytes) if self.state == State::Socket => match frame::parse_client(&bytes) {
                Ok(frame::ClientFrame::Channel(text)) => vec![Action::Inbound(text.to_owned())],
                Ok(frame::ClientFrame::Ack { seq, at_us }) => vec![Action::Ack { seq, at_us }],
                Ok(frame::ClientFrame::Mic { packet, .. }) => vec![Action::Mic(bytes::Bytes::copy_from_slice(packet))],
                Err(e @ FrameError::TooLarge(_)) => self.fail(ErrorCode::TooLarge, e.to_string()),
                Err(e) => self.fail(ErrorCode::BadFrame, e.to_string()),
            },
            // The page acknowledged frames that were on their way when media moved.
            Event::ClientBinary(bytes) if frame::is_ack(&bytes) || frame::is_mic(&bytes) => Vec::new(),
            Event::ClientBinary(bytes) => self.fail(
                if bytes.len() > MAX_MESSAGE_BYTES { ErrorCode::TooLarge } else { ErrorCode::BinaryUnsupported },
                format!("binary frame of {} bytes: media is on WebRTC, and signalling is JSON text", bytes.len()),
            ),
            Event::LocalOffer(sdp) if self.state == State::CreatingOffer => {
                self.state = State::OfferSent;
                self.remote_candidates = 0;
                vec![Action::Send(ServerMessage::Offer { sdp })]
            }
            Event::LocalOffer(_) => Vec::new(),
            Event::LocalIce { .. } if self.state == State::Socket => Vec::new(),
            Event::LocalIce { candidate, sdp_mline_index } => {
                vec![Action::Send(ServerMessage::Ice { candidate, sdp_mline_index })]
            }
            Event::AnswerApplied => {
                if self.state == State::ApplyingAnswer {
                    self.state = State::Established;
                }
                Vec::new()
            }
            // A keyframe sent before DTLS completes is lost; ask once the viewer can get it.
            Event::MediaConnected => vec![Action::RequestKeyframe],
            Event::AnswerRejected(why) => self.fail(ErrorCode::BadSdp, format!("answer rejected: {why}")),
            Event::MediaFailed(why) => self.fail(ErrorCode::Internal, why),
        }
    }

    fn on_client_message(&mut self, msg: ClientMessage) -> Vec<Action> {
        match msg {
            ClientMessage::Ping => vec![Action::Send(ServerMessage::Pong)],
            ClientMessage::Control { action, to } => vec![Action::Control { action, to }],
            ClientMessage::Transport { kind, reason } => self.switch(kind, reason),
            ClientMessage::Codec { webrtc: true, .. } => Vec::new(),
            ClientMessage::Codec { webrtc: false, websocket: true } => vec![Action::Codec(CodecOutcome::Websocket)],
            // The page shows the user what to do and stops; so does the session.
            ClientMessage::Codec { webrtc: false, websocket: false } => {
                self.state = State::Closed;
                vec![
                    Action::Codec(CodecOutcome::NoDecoder),
                    Action::Close { code: close_code::NORMAL, reason: "this browser cannot decode H.264".into() },
                ]
            }
            ClientMessage::Answer { sdp } => {
                if self.state != State::OfferSent {
                    return self.fail(ErrorCode::Unexpected, format!("answer not expected in state {:?}", self.state));
                }
                if let Err(why) = check_answer_sdp(&sdp) {
                    return self.fail(ErrorCode::BadSdp, why);
                }
                // Refused here, by name: webrtcbin would only say that media 0 lacks an
                // ice-ufrag, and a page that retried on that would loop for ever.
                if answer_rejects_video(&sdp) {
                    let mut out = vec![Action::Codec(CodecOutcome::AnswerRejected)];
                    out.extend(self.fail(ErrorCode::UnsupportedCodec, UNSUPPORTED_CODEC.into()));
                    return out;
                }
                self.state = State::ApplyingAnswer;
                vec![Action::ApplyAnswer(sdp)]
            }
            ClientMessage::Ice { candidate, sdp_mline_index } => {
                if !matches!(self.state, State::ApplyingAnswer | State::Established) {
                    return self.fail(ErrorCode::Unexpected, "ICE candidate before the answer".into());
                }
                if candidate.is_empty() {
                    // End of candidates: nothing for webrtcbin to do.
                    return Vec::new();
                }
                if !candidate.starts_with("candidate:") || candidate.contains(['\r', '\n']) {
                    return self.fail(ErrorCode::BadMessage, "ICE candidate must be one \"candidate:...\" line".into());
                }
                if self.remote_candidates >= MAX_REMOTE_CANDIDATES {
                    return Vec::new();
                }
                self.remote_candidates += 1;
                vec![Action::AddRemoteIce { candidate, sdp_mline_index }]
            }
        }
    }

    /// The page asks for another transport: switch if the server offers it.
    fn switch(&mut self, kind: Kind, reason: String) -> Vec<Action> {
        if !self.offered.contains(&kind) {
            let offered: Vec<&str> = self.offered.iter().map(|k| k.as_str()).collect();
            let text = format!("this server does not offer the {kind} transport (it offers {})", offered.join(", "));
            return vec![Action::Send(ServerMessage::Notice { text })];
        }
        if kind == self.kind {
            return Vec::new();
        }
        self.kind = kind;
        self.state = media_state(kind);
        vec![Action::Switch { kind, reason: printable(&reason) }, Action::Send(ServerMessage::Transport { kind })]
    }

    fn fail(&mut self, code: ErrorCode, message: String) -> Vec<Action> {
        self.state = State::Closed;
        Self::refuse(code, message)
    }
}

/// The error for an answer that rejects the video: what the user can do about it.
const UNSUPPORTED_CODEC: &str = "this browser's WebRTC cannot decode H.264 (its answer rejected the video). \
     Reload the page: a current Kelpie page then uses the WebSocket transport, which needs HTTPS (or localhost). \
     In Firefox, enabling the OpenH264 plugin (Add-ons, Plugins) makes WebRTC work too";

/// Cheap structural checks before the answer reaches the media engine, so that obvious
/// garbage gets a precise message rather than a generic engine failure.
fn check_answer_sdp(sdp: &str) -> Result<(), String> {
    if !sdp.starts_with("v=0") {
        return Err("SDP must start with \"v=0\"".into());
    }
    if !sdp.lines().any(|l| l.starts_with("m=video ")) {
        return Err("SDP answer has no video media section".into());
    }
    if !sdp.lines().any(|l| l.starts_with("a=fingerprint:")) {
        return Err("SDP answer has no DTLS fingerprint".into());
    }
    Ok(())
}

/// Where a session on `kind` starts: waiting for our offer, or straight to socket media.
fn media_state(kind: Kind) -> State {
    match kind {
        Kind::Webrtc => State::CreatingOffer,
        Kind::Websocket => State::Socket,
    }
}

/// A browser-supplied reason as one log-safe line of at most [`MAX_REASON_CHARS`].
fn printable(reason: &str) -> String {
    reason.chars().filter(|c| !c.is_control()).take(MAX_REASON_CHARS).collect()
}

/// Close reasons must fit a WebSocket control frame (123 bytes).
pub fn truncate_reason(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() + c.len_utf8() > 120 {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 AA\r\n";

    fn start_on(transport: Kind, role: Role) -> Start {
        Start {
            viewer_id: "v1".into(),
            role,
            user: "kelpie".into(),
            ice_servers: vec![],
            relay_only: false,
            transport,
            offered: vec![Kind::Webrtc, Kind::Websocket],
            audio: true,
            boot: "b00t".into(),
            stream: StreamLimits { framerate: 60, bitrate_kbps: 8000 },
        }
    }

    fn fresh() -> Session {
        Session::start(start_on(Kind::Webrtc, Role::Owner)).0
    }

    fn started() -> Session {
        let (mut s, out) = Session::start(start_on(Kind::Webrtc, Role::Owner));
        assert!(matches!(out.as_slice(), [Action::Send(ServerMessage::Welcome { .. })]));
        assert_eq!(
            s.handle(Event::LocalOffer("OFFER".into())),
            vec![Action::Send(ServerMessage::Offer { sdp: "OFFER".into() })]
        );
        s
    }

    fn answer_json() -> String {
        serde_json::json!({"type": "answer", "sdp": ANSWER}).to_string()
    }

    fn error_code(actions: &[Action]) -> Option<ErrorCode> {
        match actions {
            [Action::Send(ServerMessage::Error { code, .. }), Action::Close { .. }] => Some(*code),
            _ => None,
        }
    }

    #[test]
    fn full_exchange_ends_established_and_asks_for_a_keyframe_once_connected() {
        let mut s = started();
        assert_eq!(s.handle(Event::ClientText(answer_json())), vec![Action::ApplyAnswer(ANSWER.into())]);
        let ice = r#"{"type":"ice","candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMLineIndex":0}"#;
        assert_eq!(
            s.handle(Event::ClientText(ice.into())),
            vec![Action::AddRemoteIce {
                candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
                sdp_mline_index: 0
            }]
        );
        assert!(s.handle(Event::AnswerApplied).is_empty());
        assert_eq!(s.state(), State::Established);
        assert_eq!(s.handle(Event::MediaConnected), vec![Action::RequestKeyframe]);
    }

    #[test]
    fn local_candidates_are_forwarded_in_any_live_state() {
        let mut s = fresh();
        let out = s.handle(Event::LocalIce { candidate: "candidate:x".into(), sdp_mline_index: 0 });
        assert_eq!(out, vec![Action::Send(ServerMessage::Ice { candidate: "candidate:x".into(), sdp_mline_index: 0 })]);
    }

    #[test]
    fn answer_before_offer_is_unexpected() {
        let mut s = fresh();
        assert_eq!(error_code(&s.handle(Event::ClientText(answer_json()))), Some(ErrorCode::Unexpected));
        assert!(s.is_closed());
    }

    #[test]
    fn second_answer_is_unexpected() {
        let mut s = started();
        s.handle(Event::ClientText(answer_json()));
        assert_eq!(error_code(&s.handle(Event::ClientText(answer_json()))), Some(ErrorCode::Unexpected));
    }

    #[test]
    fn malformed_frames_close_with_their_error_code() {
        for (frame, code) in [
            ("not json".to_string(), ErrorCode::BadJson),
            (r#"{"type":"launch_missiles"}"#.to_string(), ErrorCode::UnknownType),
            (serde_json::json!({"type":"answer","sdp":"hello"}).to_string(), ErrorCode::BadSdp),
            ("x".repeat(10 * 1024 * 1024), ErrorCode::TooLarge),
        ] {
            let mut s = started();
            let out = s.handle(Event::ClientText(frame));
            assert_eq!(error_code(&out), Some(code));
            assert!(matches!(out[1], Action::Close { code: close_code::POLICY, .. }));
            assert!(s.is_closed());
        }
    }

    #[test]
    fn binary_frames_are_refused() {
        let mut s = started();
        assert_eq!(error_code(&s.handle(Event::ClientBinary(vec![1, b'{', b'}']))), Some(ErrorCode::BinaryUnsupported));
    }

    #[test]
    fn a_socket_session_carries_channel_frames_and_refuses_malformed_ones() {
        let (mut s, out) = Session::start(start_on(Kind::Websocket, Role::Guest));
        assert!(matches!(&out[0], Action::Send(ServerMessage::Welcome { transport: Kind::Websocket, .. })));
        assert_eq!(s.state(), State::Socket);
        assert_eq!(
            s.handle(Event::ClientBinary(frame::channel(r#"{"t":"k"}"#).to_vec())),
            vec![Action::Inbound(r#"{"t":"k"}"#.into())]
        );
        assert_eq!(s.handle(Event::MediaConnected), vec![Action::RequestKeyframe]);
        assert!(s.handle(Event::LocalIce { candidate: "candidate:x".into(), sdp_mline_index: 0 }).is_empty());
        for (bad, code) in [
            (vec![], ErrorCode::BadFrame),
            (vec![9, 1, 2], ErrorCode::BadFrame),
            (vec![1, 0xff], ErrorCode::BadFrame),
            (vec![1; frame::MAX_CLIENT_FRAME + 1], ErrorCode::TooLarge),
        ] {
            let (mut s, _) = Session::start(start_on(Kind::Websocket, Role::Guest));
            assert_eq!(error_code(&s.handle(Event::ClientBinary(bad))), Some(code));
            assert!(s.is_closed());
        }
        let (mut s, _) = Session::start(start_on(Kind::Websocket, Role::Guest));
        assert_eq!(error_code(&s.handle(Event::ClientText(answer_json()))), Some(ErrorCode::Unexpected));
    }

    #[test]
    fn switching_transport_closes_one_opens_the_other_and_says_so() {
        let mut s = started();
        let ask = r#"{"type":"transport","kind":"websocket","reason":"no media\nwithin 3 s"}"#;
        assert_eq!(
            s.handle(Event::ClientText(ask.into())),
            vec![
                Action::Switch { kind: Kind::Websocket, reason: "no mediawithin 3 s".into() },
                Action::Send(ServerMessage::Transport { kind: Kind::Websocket }),
            ]
        );
        assert_eq!(s.state(), State::Socket);
        assert!(s.handle(Event::ClientText(ask.into())).is_empty(), "already there");
        // Back to WebRTC: a fresh offer is expected.
        let back = r#"{"type":"transport","kind":"webrtc"}"#;
        assert_eq!(
            s.handle(Event::ClientText(back.into()))[0],
            Action::Switch { kind: Kind::Webrtc, reason: String::new() }
        );
        assert_eq!(s.state(), State::CreatingOffer);
        assert_eq!(s.transport(), Kind::Webrtc);
        assert_eq!(
            s.handle(Event::LocalOffer("O".into())),
            vec![Action::Send(ServerMessage::Offer { sdp: "O".into() })]
        );
    }

    #[test]
    fn a_transport_the_server_does_not_offer_gets_a_notice_not_a_switch() {
        let mut start = start_on(Kind::Webrtc, Role::Owner);
        start.offered = vec![Kind::Webrtc];
        let (mut s, _) = Session::start(start);
        let out = s.handle(Event::ClientText(r#"{"type":"transport","kind":"websocket"}"#.into()));
        let [Action::Send(ServerMessage::Notice { text })] = out.as_slice() else { panic!("{out:?}") };
        assert!(text.contains("does not offer the websocket transport"), "{text}");
        assert_eq!(s.transport(), Kind::Webrtc);
        assert!(!s.is_closed());
    }

    #[test]
    fn engine_rejection_of_the_answer_is_bad_sdp() {
        let mut s = started();
        s.handle(Event::ClientText(answer_json()));
        assert_eq!(error_code(&s.handle(Event::AnswerRejected("no".into()))), Some(ErrorCode::BadSdp));
    }

    #[test]
    fn nothing_happens_after_close() {
        let mut s = started();
        s.handle(Event::ClientText("garbage".into()));
        assert!(s.handle(Event::ClientText(r#"{"type":"ping"}"#.into())).is_empty());
        assert!(s.handle(Event::LocalIce { candidate: "candidate:x".into(), sdp_mline_index: 0 }).is_empty());
    }

    #[test]
    fn ping_gets_pong_and_end_of_candidates_is_ignored() {
        let mut s = started();
        assert_eq!(s.handle(Event::ClientText(r#"{"type":"ping"}"#.into())), vec![Action::Send(ServerMessage::Pong)]);
        s.handle(Event::ClientText(answer_json()));
        assert!(s.handle(Event::ClientText(r#"{"type":"ice","candidate":"","sdpMLineIndex":0}"#.into())).is_empty());
    }

    #[test]
    fn remote_candidates_past_the_cap_are_ignored_not_refused() {
        let mut s = started();
        s.handle(Event::ClientText(answer_json()));
        let ice = |n: u32| {
            format!(
                r#"{{"type":"ice","candidate":"candidate:{n} 1 udp 1 10.0.0.{} 9 typ host","sdpMLineIndex":0}}"#,
                n % 250
            )
        };
        let taken = (0..MAX_REMOTE_CANDIDATES + 20)
            .filter(|&n| matches!(s.handle(Event::ClientText(ice(n))).as_slice(), [Action::AddRemoteIce { .. }]))
            .count();
        assert_eq!(taken, MAX_REMOTE_CANDIDATES as usize);
        assert!(!s.is_closed(), "ignored, not refused");
    }

    #[test]
    fn candidate_with_line_breaks_is_refused() {
        let mut s = started();
        s.handle(Event::ClientText(answer_json()));
        let bad = serde_json::json!({"type":"ice","candidate":"candidate:1\r\na=evil","sdpMLineIndex":0}).to_string();
        assert_eq!(error_code(&s.handle(Event::ClientText(bad))), Some(ErrorCode::BadMessage));
    }

    #[test]
    fn control_requests_go_to_the_room_in_any_live_state() {
        let (mut s, _) = Session::start(start_on(Kind::Webrtc, Role::Guest));
        let out = s.handle(Event::ClientText(r#"{"type":"control","action":"request"}"#.into()));
        assert_eq!(out, vec![Action::Control { action: ControlAction::Request, to: None }]);
        assert!(!s.is_closed());
    }

    #[test]
    fn close_reason_fits_a_control_frame() {
        let out = Session::refuse(ErrorCode::Internal, "é".repeat(500));
        let Action::Close { code, reason } = &out[1] else { panic!("no close") };
        assert_eq!(*code, close_code::INTERNAL);
        assert!(reason.len() <= 123);
    }

    #[test]
    fn an_answer_that_rejects_the_video_is_refused_by_name_and_counted() {
        let mut s = started();
        let firefox = ANSWER.replace("m=video 9 UDP/TLS/RTP/SAVPF 96", "m=video 0 UDP/TLS/RTP/SAVPF 0");
        let out = s.handle(Event::ClientText(serde_json::json!({"type": "answer", "sdp": firefox}).to_string()));
        let [Action::Codec(CodecOutcome::AnswerRejected), Action::Send(ServerMessage::Error { code, message }), Action::Close { .. }] =
            out.as_slice()
        else {
            panic!("{out:?}")
        };
        assert_eq!(*code, ErrorCode::UnsupportedCodec);
        assert!(message.contains("cannot decode H.264") && message.contains("OpenH264"), "{message}");
        assert!(s.is_closed());
    }

    #[test]
    fn a_codec_report_is_counted_and_only_a_page_with_no_decoder_ends_the_session() {
        let report = |webrtc: bool, websocket: bool| {
            serde_json::json!({"type": "codec", "webrtc": webrtc, "websocket": websocket}).to_string()
        };
        let mut s = started();
        assert!(s.handle(Event::ClientText(report(true, true))).is_empty());
        assert_eq!(s.handle(Event::ClientText(report(false, true))), vec![Action::Codec(CodecOutcome::Websocket)]);
        assert!(!s.is_closed());
        let out = s.handle(Event::ClientText(report(false, false)));
        assert!(
            matches!(
                out.as_slice(),
                [Action::Codec(CodecOutcome::NoDecoder), Action::Close { code: close_code::NORMAL, .. }]
            ),
            "{out:?}"
        );
        assert!(s.is_closed());
        // A malformed report is a protocol error like any other.
        let mut s = started();
        let out = s.handle(Event::ClientText(r#"{"type":"codec","webrtc":"no"}"#.into()));
        assert_eq!(error_code(&out), Some(ErrorCode::BadMessage));
    }
}
