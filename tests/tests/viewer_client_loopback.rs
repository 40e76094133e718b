//! Checks `ViewerClient` and `SignallingSocket` against a stand-in server built from
//! webrtc-rs, so the test client is known to work before it is pointed at Kelpie.
//!
//! The stand-in speaks `docs/protocol.md` (Origin check, welcome, server offer with a
//! send-only H.264 track and an `input` data channel, trickle ICE, ping/pong, errors for
//! binary and non-JSON frames) and replays RTP packets captured from GStreamer's
//! `rtph264pay` (`testdata/rtp-176x144.rtpstream`) at 30 frames per second.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kelpie_tests::{ClientError, Origin, SignallingSocket, ViewerClient};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_H264;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use webrtc::data_channel::DataChannelEvent;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateInit,
    RTCPeerConnectionIceEvent, RTCSessionDescription,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

const SSRC: u32 = 0x4b45_4c50;
const FPS: u64 = 30;
const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42c01f";

fn h264_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The captured packets as (marker, timestamp offset index, payload) per frame.
fn captured_frames() -> Vec<Vec<(bool, Vec<u8>)>> {
    let data = include_bytes!("../testdata/rtp-176x144.rtpstream");
    let mut frames: Vec<Vec<(bool, Vec<u8>)>> = vec![Vec::new()];
    let mut rest = &data[..];
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let packet = &rest[2..2 + len];
        rest = &rest[2 + len..];
        let marker = packet[1] & 0x80 != 0;
        let csrc = usize::from(packet[0] & 0x0f);
        frames.last_mut().unwrap().push((marker, packet[12 + 4 * csrc..].to_vec()));
        if marker {
            frames.push(Vec::new());
        }
    }
    frames.pop();
    frames
}

struct ServerHandler {
    candidates: mpsc::UnboundedSender<String>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ServerHandler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let msg = json!({"type": "ice", "candidate": init.candidate, "sdpMLineIndex": 0});
            let _ = self.candidates.send(msg.to_string());
        }
    }
}

/// A stand-in Kelpie. Input messages arriving on the data channel go to `input_tx`.
struct FakeServer {
    url: String,
    input_rx: mpsc::UnboundedReceiver<String>,
    /// Every message a client sent on the socket, in order.
    signalling_rx: mpsc::UnboundedReceiver<Value>,
}

async fn start_fake_server() -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    let (sig_tx, signalling_rx) = mpsc::unbounded_channel();
    let origin = format!("http://{addr}");
    tokio::spawn(async move {
        let mut viewer = 0;
        while let Ok((stream, _)) = listener.accept().await {
            viewer += 1;
            tokio::spawn(serve(stream, origin.clone(), viewer, input_tx.clone(), sig_tx.clone()));
        }
    });
    FakeServer { url: format!("ws://{addr}/ws"), input_rx, signalling_rx }
}

async fn serve(
    stream: TcpStream,
    origin: String,
    viewer: u32,
    input_tx: mpsc::UnboundedSender<String>,
    sig_tx: mpsc::UnboundedSender<Value>,
) {
    // The path picks a misbehaviour: `/full` refuses the viewer, `/reject-answer` refuses
    // its answer; anything else behaves.
    let mut path = String::new();
    // The error type is what tungstenite's handshake callback requires.
    #[allow(clippy::result_large_err)]
    let check_origin = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        path = req.uri().path().to_owned();
        match req.headers().get("origin").and_then(|v| v.to_str().ok()) {
            Some(o) if o == origin => Ok(resp),
            _ => {
                let mut refusal = ErrorResponse::new(Some("bad origin".into()));
                *refusal.status_mut() = 403.try_into().unwrap();
                Err(refusal)
            }
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, check_origin).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    if path == "/full" {
        let error = json!({"type": "error", "code": "server_full", "message": "1 viewer at most"});
        let _ = sink.send(Message::text(error.to_string())).await;
        let _ = sink.send(Message::Close(Some(CloseFrame { code: CloseCode::Policy, reason: "".into() }))).await;
        return;
    }
    let reject_answer = path == "/reject-answer";
    let welcome = json!({
        "type": "welcome", "viewer_id": format!("v{viewer}"), "role": "owner",
        "ice_servers": [],
    });
    sink.send(Message::text(welcome.to_string())).await.unwrap();

    let (cand_tx, mut cand_rx) = mpsc::unbounded_channel();
    let mut media = MediaEngine::default();
    media
        .register_codec(RTCRtpCodecParameters { rtp_codec: h264_codec(), payload_type: 96 }, RtpCodecKind::Video)
        .unwrap();
    let pc: Arc<dyn PeerConnection> = Arc::new(
        PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_handler(Arc::new(ServerHandler { candidates: cand_tx }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .unwrap(),
    );
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "kelpie".to_owned(),
        "screen".to_owned(),
        "screen".to_owned(),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(SSRC), ..Default::default() },
            codec: h264_codec(),
            ..Default::default()
        }],
    )));
    pc.add_transceiver_from_track(
        track.clone() as Arc<dyn TrackLocal>,
        Some(RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Sendonly, ..Default::default() }),
    )
    .await
    .unwrap();
    let dc = pc.create_data_channel("input", None).await.unwrap();
    tokio::spawn(async move {
        while let Some(event) = dc.poll().await {
            if let DataChannelEvent::OnMessage(msg) = event {
                let _ = input_tx.send(String::from_utf8_lossy(&msg.data).into_owned());
            }
        }
    });
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer.clone()).await.unwrap();
    sink.send(Message::text(json!({"type": "offer", "sdp": offer.sdp}).to_string())).await.unwrap();

    // Replay the captured frames forever, renumbered into one continuous stream.
    let frames = captured_frames();
    let sender = tokio::spawn({
        let track = track.clone();
        async move {
            let mut seq = 1000u16;
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / FPS));
            for n in 0u32.. {
                tick.tick().await;
                for (marker, payload) in &frames[n as usize % frames.len()] {
                    let packet = rtc::rtp::packet::Packet {
                        header: rtc::rtp::header::Header {
                            version: 2,
                            marker: *marker,
                            payload_type: 96,
                            sequence_number: seq,
                            timestamp: n * (90000 / FPS as u32),
                            ssrc: SSRC,
                            ..Default::default()
                        },
                        payload: bytes::Bytes::from(payload.clone()),
                    };
                    seq = seq.wrapping_add(1);
                    let _ = track.write_rtp(packet).await;
                }
            }
        }
    });

    loop {
        tokio::select! {
            Some(candidate) = cand_rx.recv() => {
                if sink.send(Message::text(candidate)).await.is_err() {
                    break;
                }
            }
            incoming = source.next() => {
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Value>(&text) {
                        Ok(msg) => {
                            let _ = sig_tx.send(msg.clone());
                            if reject_answer && msg["type"] == "answer" {
                                Some(("bad_sdp", 1008))
                            } else {
                                handle(&pc, &msg).await
                            }
                        }
                        Err(_) => Some(("bad_json", 1008)),
                    },
                    Some(Ok(Message::Binary(_))) => Some(("binary_unsupported", 1008)),
                    Some(Ok(_)) => None,
                    Some(Err(_)) | None => break,
                };
                match reply {
                    Some(("pong", _)) => {
                        let _ = sink.send(Message::text(r#"{"type":"pong"}"#)).await;
                    }
                    Some((code, close)) => {
                        let error = json!({"type": "error", "code": code, "message": code});
                        let _ = sink.send(Message::text(error.to_string())).await;
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code: CloseCode::from(close),
                                reason: "".into(),
                            })))
                            .await;
                        break;
                    }
                    None => {}
                }
            }
        }
    }
    sender.abort();
    let _ = pc.close().await;
}

/// Applies a client message; returns what to answer (`pong`, or an error code and close code).
async fn handle(pc: &Arc<dyn PeerConnection>, msg: &Value) -> Option<(&'static str, u16)> {
    match msg["type"].as_str() {
        Some("answer") => {
            let sdp = msg["sdp"].as_str()?.to_owned();
            let answer = RTCSessionDescription::answer(sdp).ok()?;
            pc.set_remote_description(answer).await.err().map(|_| ("bad_sdp", 1008))
        }
        Some("ice") => {
            let init = RTCIceCandidateInit {
                candidate: msg["candidate"].as_str()?.to_owned(),
                sdp_mline_index: Some(0),
                ..Default::default()
            };
            let _ = pc.add_ice_candidate(init).await;
            None
        }
        Some("ping") => Some(("pong", 0)),
        _ => Some(("unknown_type", 1008)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_receives_video_and_sends_input() {
    let mut server = start_fake_server().await;
    let viewer = ViewerClient::connect(&server.url, None).await.unwrap();
    assert_eq!(viewer.role(), "owner");
    assert!(viewer.offer_sdp().contains("H264"));

    let stats = viewer.wait_for_keyframes(2, Duration::from_secs(10)).await.unwrap();
    assert_eq!((stats.width, stats.height), (Some(176), Some(144)));
    assert_eq!(stats.sps.map(|s| s.profile_idc), Some(66));
    assert!(stats.first_packet_after <= stats.first_frame_after);
    assert_eq!(stats.depacketize_errors, 0);
    assert_eq!(stats.peer_state, "connected");

    let fps = viewer.measure_fps(Duration::from_secs(2)).await.unwrap();
    eprintln!("fps {fps:.1}; {:?}", viewer.stats());
    assert!((25.0..=35.0).contains(&fps), "fps {fps}");
    let stats = viewer.stats();
    assert_eq!(stats.incomplete_frames, 0, "{stats:?}");
    assert_eq!(stats.lost_packets, 0, "{stats:?}");

    viewer.send_input(&json!({"t": "m", "x": 10, "y": 20})).await.unwrap();
    viewer.send_raw_data_channel("{garbage").await.unwrap();
    viewer.request_keyframe().await.unwrap();
    viewer.send_pli().await.unwrap();
    let mut received = Vec::new();
    while received.len() < 3 {
        let msg =
            tokio::time::timeout(Duration::from_secs(5), server.input_rx.recv()).await.expect("input message").unwrap();
        received.push(msg);
    }
    assert_eq!(received, vec![r#"{"t":"m","x":10,"y":20}"#, "{garbage", r#"{"t":"kf"}"#]);

    viewer.ping(Duration::from_secs(5)).await.unwrap();

    // The client answered before sending any candidate, and trickled at least one.
    let mut sent = Vec::new();
    while let Ok(msg) = server.signalling_rx.try_recv() {
        sent.push(msg);
    }
    assert_eq!(sent[0]["type"], "answer");
    let candidates: Vec<&Value> = sent.iter().filter(|m| m["type"] == "ice").collect();
    assert!(candidates.iter().any(|m| m["candidate"].as_str().unwrap().contains("127.0.0.1")));
    assert!(candidates.iter().all(|m| m["sdpMLineIndex"] == 0));

    viewer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_viewers_at_once() {
    let server = start_fake_server().await;
    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(ViewerClient::connect(&server.url, None).await.unwrap());
    }
    for v in &viewers {
        v.wait_for_frames(10, Duration::from_secs(10)).await.unwrap();
    }
    let ids: std::collections::HashSet<_> = viewers.iter().map(|v| v.viewer_id()).collect();
    assert_eq!(ids.len(), 3);
    // Dropping without close must not hang or panic.
    drop(viewers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_is_checked() {
    let server = start_fake_server().await;
    let err = ViewerClient::connect(&server.url, Some("http://evil.example")).await.err().expect("refused");
    assert_eq!(err.http_status(), Some(403), "{err}");
    let err = SignallingSocket::connect_with_origin(&server.url, &Origin::Omit).await.err().expect("refused");
    assert_eq!(err.http_status(), Some(403));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signalling_socket_sees_refusals() {
    let server = start_fake_server().await;
    let t = Duration::from_secs(5);

    let mut ws = SignallingSocket::connect(&server.url, None).await.unwrap();
    let welcome = ws.recv_type("welcome", t).await.unwrap();
    assert_eq!(welcome["viewer_id"], "v1");
    let offer = ws.recv_type("offer", t).await.unwrap();
    assert!(offer["sdp"].as_str().unwrap().starts_with("v=0"));
    ws.send_json(&json!({"type": "ping"})).await.unwrap();
    ws.recv_type("pong", t).await.unwrap();
    ws.send_binary(&[1, 2, 3]).await.unwrap();
    let refusal = ws.expect_refusal(t).await.unwrap();
    assert_eq!(refusal.code, "binary_unsupported");
    assert_eq!(refusal.close_code, Some(1008));

    let mut ws = SignallingSocket::connect(&server.url, None).await.unwrap();
    ws.send_text("{not json").await.unwrap();
    let refusal = ws.expect_refusal(t).await.unwrap();
    assert_eq!(refusal.code, "bad_json");

    // Waiting for something that never comes is a timeout, not a hang.
    let mut ws = SignallingSocket::connect(&server.url, None).await.unwrap();
    let err = ws.recv_type("never", Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    ws.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_end_connect_quickly() {
    let server = start_fake_server().await;
    let base = server.url.trim_end_matches("/ws");

    let started = std::time::Instant::now();
    let err = ViewerClient::connect(&format!("{base}/full"), None).await.err().expect("refused");
    assert_eq!(err.server_code(), Some("server_full"), "{err}");

    let err = ViewerClient::connect(&format!("{base}/reject-answer"), None).await.err().expect("refused");
    assert_eq!(err.server_code(), Some("bad_sdp"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}
