//! The actor with a recording desktop and fake transports: what reaches the desktop, in
//! which order, and what each participant's session is told.

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::*;
use crate::room::testing::{Did, NoOutbox, Recorder};

const LIMITS: Limits = Limits { max_participants: 3, max_framerate: 30, max_bitrate_kbps: 8000 };

fn actor() -> (Arc<RoomActor>, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let room = RoomActor::new(LIMITS, rec.clone(), rec.clone(), Audience::new(Arc::new(NoOutbox)));
    (room, rec)
}

fn enter(room: &Arc<RoomActor>, user: &str, role: Role) -> (Id, UnboundedReceiver<ServerMessage>) {
    let slot = room.reserve().expect("room not full");
    let id = slot.id;
    let (tx, rx) = unbounded_channel();
    room.join(slot, &Identity { user: user.into(), role }, tx);
    (id, rx)
}

fn key(down: bool) -> String {
    format!(r#"{{"t":"k","k":65,"d":{down}}}"#)
}

fn drain(rx: &mut UnboundedReceiver<ServerMessage>) -> Vec<ServerMessage> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        out.push(m);
    }
    out
}

#[test]
fn a_viewers_input_reaches_nothing_and_the_controllers_does() {
    let (room, rec) = actor();
    let (owner, _o) = enter(&room, "alice", Role::Owner);
    let (viewer, _v) = enter(&room, "eve", Role::Viewer);
    rec.take();
    for msg in [
        key(true),
        r#"{"t":"b","b":1,"d":true}"#.into(),
        r#"{"t":"w","dx":0,"dy":3}"#.into(),
        r#"{"t":"clip","id":1,"mime":"text/plain","seq":0,"last":true,"data":"aGk="}"#.into(),
        r#"{"t":"resize","w":800,"h":600}"#.into(),
        r#"{"t":"set","fps":15}"#.into(),
        r#"{"t":"lock","on":true}"#.into(),
    ] {
        room.on_inbound(viewer, &msg);
    }
    assert_eq!(rec.take(), vec![]);
    room.on_inbound(owner, &key(true));
    assert_eq!(rec.take(), vec![Did::Input(owner, InputEvent::Key { keysym: 65, down: true })]);
    let refused: u64 = room.refused().iter().map(|(_, n)| n).sum();
    assert_eq!(refused, 7);
    let by: std::collections::HashMap<_, _> = room.refused().into_iter().collect();
    assert_eq!((by[&Act::Input], by[&Act::Clipboard], by[&Act::Settings]), (3, 1, 1));
}

#[test]
fn anyone_present_may_ask_for_a_keyframe() {
    let (room, rec) = actor();
    let (viewer, _v) = enter(&room, "eve", Role::Viewer);
    rec.take();
    room.on_inbound(viewer, r#"{"t":"kf"}"#);
    assert_eq!(rec.take(), vec![Did::Keyframe]);
    room.leave(viewer);
    rec.take();
    room.on_inbound(viewer, r#"{"t":"kf"}"#);
    assert_eq!(rec.take(), vec![]);
}

#[test]
fn any_participant_may_test_its_own_connection() {
    let (room, rec) = actor();
    let (viewer, _v) = enter(&room, "carol", Role::Viewer);
    rec.take();
    room.on_inbound(viewer, r#"{"t":"ping","id":5}"#);
    room.on_inbound(viewer, r#"{"t":"probe","bytes":65536}"#);
    room.on_inbound(99, r#"{"t":"ping","id":6}"#);
    assert_eq!(
        rec.take(),
        vec![Did::SelfTest(viewer, SelfTest::Ping(5)), Did::SelfTest(viewer, SelfTest::Probe(65536))],
        "a stranger's ping is ignored"
    );
}

#[test]
fn leaving_releases_held_input_first_and_later_input_is_dropped() {
    let (room, rec) = actor();
    let (owner, _o) = enter(&room, "alice", Role::Owner);
    room.on_inbound(owner, &key(true));
    room.leave(owner);
    room.on_inbound(owner, &key(true));
    room.on_inbound(owner, r#"{"t":"lock","on":true}"#);
    let did = rec.take();
    assert_eq!(
        did,
        vec![
            Did::Input(owner, InputEvent::Key { keysym: 65, down: true }),
            Did::Release(owner),
            Did::Gone(owner),
            Did::Closed(owner),
        ]
    );
    assert!(room.is_empty());
    // Refusals of a departed participant are not counted as refusals.
    assert_eq!(room.refused().iter().map(|(_, n)| n).sum::<u64>(), 0);
}

#[test]
fn settings_are_clamped_before_they_reach_the_encoder() {
    let (room, rec) = actor();
    let (owner, _o) = enter(&room, "alice", Role::Owner);
    rec.take();
    room.on_inbound(owner, r#"{"t":"set","fps":120,"kbps":200000}"#);
    assert_eq!(rec.take(), vec![Did::Settings(Some(30), Some(8000))]);
}

#[test]
fn hand_off_moves_input_from_owner_to_guest_and_back() {
    let (room, rec) = actor();
    let (owner, mut o) = enter(&room, "alice", Role::Owner);
    let (guest, mut g) = enter(&room, "bob", Role::Guest);
    room.control(guest, ControlAction::Request, None);
    assert!(drain(&mut o).contains(&ServerMessage::Notice { text: "bob asks for control".into() }));
    room.control(owner, ControlAction::Grant, Some(&name(guest)));
    assert_eq!(rec.leader(), Some(Some(guest)), "the shared encode follows the new controller");
    rec.take();
    room.on_inbound(owner, &key(true));
    room.on_inbound(guest, &key(true));
    assert_eq!(rec.take(), vec![Did::Input(guest, InputEvent::Key { keysym: 65, down: true })]);
    let views = drain(&mut g);
    assert!(
        views.iter().any(|m| matches!(m, ServerMessage::Room { control: Some(c), .. } if *c == name(guest))),
        "{views:?}"
    );
    room.control(owner, ControlAction::Take, None);
    assert_eq!(rec.take(), vec![Did::Release(guest)]);
    assert_eq!(rec.leader(), Some(Some(owner)));
    room.on_inbound(guest, &key(false));
    assert_eq!(rec.take(), vec![]);
}

#[test]
fn a_full_room_refuses_and_a_dropped_reservation_frees_its_slot() {
    let (room, _rec) = actor();
    let a = room.reserve().unwrap();
    let _b = room.reserve().unwrap();
    let _c = room.reserve().unwrap();
    assert!(room.reserve().is_err());
    drop(a);
    assert!(room.reserve().is_ok());
}

#[test]
fn the_channel_opening_pushes_cursor_to_all_and_clipboard_to_owners_and_guests() {
    let (room, rec) = actor();
    let (owner, _o) = enter(&room, "alice", Role::Owner);
    let (viewer, _v) = enter(&room, "eve", Role::Viewer);
    rec.take();
    room.channel_open(owner);
    room.channel_open(viewer);
    assert_eq!(rec.take(), vec![Did::CursorReady(owner), Did::ClipReady(owner), Did::CursorReady(viewer)]);
}

#[test]
fn every_participant_hears_of_every_change() {
    let (room, _rec) = actor();
    let (owner, mut o) = enter(&room, "alice", Role::Owner);
    let (_viewer, mut v) = enter(&room, "eve", Role::Viewer);
    let last = |rx: &mut UnboundedReceiver<ServerMessage>| {
        drain(rx).into_iter().rev().find(|m| matches!(m, ServerMessage::Room { .. }))
    };
    let Some(ServerMessage::Room { participants, control, .. }) = last(&mut v) else { panic!("no room view") };
    assert_eq!(participants.len(), 2);
    assert_eq!(control, Some(name(owner)));
    room.leave(owner);
    let Some(ServerMessage::Room { participants, control, .. }) = last(&mut v) else { panic!("no room view") };
    assert_eq!((participants.len(), control), (1, None));
    drop(last(&mut o));
}

#[test]
fn only_the_controllers_gamepad_reaches_the_desktop_and_bad_ones_are_counted() {
    use crate::input::protocol::PadInput;
    let (room, rec) = actor();
    let (owner, _o) = enter(&room, "alice", Role::Owner);
    let (guest, _g) = enter(&room, "bob", Role::Guest);
    rec.take();
    let pad = r#"{"t":"gp","p":0,"b":[255],"a":[0,100]}"#;
    room.on_inbound(guest, pad);
    room.on_inbound(guest, r#"{"t":"gpoff","p":0}"#);
    assert_eq!(rec.take(), vec![], "a guest without control reaches nothing");
    let by: std::collections::HashMap<_, _> = room.refused().into_iter().collect();
    assert_eq!((by[&Act::Gamepad], by[&Act::Input]), (2, 0), "counted as gamepad refusals");

    room.on_inbound(owner, pad);
    assert_eq!(
        rec.take(),
        vec![Did::Gamepad(owner, PadInput::State { pad: 0, buttons: vec![255], axes: vec![0, 100] })]
    );
    for bad in [r#"{"t":"gp","p":7,"b":[],"a":[]}"#, r#"{"t":"gp","p":0,"b":[999],"a":[]}"#, r#"{"t":"gp","p":0}"#] {
        room.on_inbound(owner, bad);
    }
    room.on_inbound(owner, r#"{"t":"zz"}"#);
    assert_eq!(rec.take(), vec![]);
    assert_eq!(room.malformed_gamepad.load(Ordering::Relaxed), 3);
    assert_eq!(room.malformed.load(Ordering::Relaxed), 4);
}
