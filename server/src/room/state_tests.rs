//! Room conversations: participants join, ask, grant, take, release and leave, and the
//! tests assert on exactly what the room then lets each do. Time is a fake clock.

use super::*;

const LIMITS: Limits = Limits { max_participants: 4, max_framerate: 30, max_bitrate_kbps: 8000 };

fn room() -> Room {
    Room::new(LIMITS)
}

fn join(r: &mut Room, id: Id, user: &str, role: Role) -> Vec<Effect> {
    r.reserve().expect("a free slot");
    r.join(id, user, role)
}

fn t0() -> Instant {
    Instant::now()
}

fn controls(r: &mut Room, id: Id) -> bool {
    r.authorize(id, Act::Input).is_ok()
}

fn notices(effects: &[Effect]) -> Vec<(Id, &str)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notice { to, text } => Some((*to, text.as_str())),
            _ => None,
        })
        .collect()
}

#[test]
fn the_first_owner_gets_control_and_is_announced() {
    let mut r = room();
    let out = join(&mut r, 1, "alice", Role::Owner);
    assert_eq!(out, vec![Effect::ControlMoved { from: None, to: Some(1) }, Effect::Announce]);
    assert_eq!(r.controller(), Some(1));
    assert!(controls(&mut r, 1));
}

#[test]
fn a_second_owner_or_a_reconnect_does_not_steal_control() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    let out = join(&mut r, 2, "alice", Role::Owner);
    assert_eq!(out, vec![Effect::Announce]);
    assert_eq!(r.controller(), Some(1));
    assert_eq!(r.authorize(2, Act::Resize).map_err(|e| e.0), Err(Refusal::NoControl));
}

#[test]
fn guests_and_viewers_alone_hold_nothing() {
    let mut r = room();
    join(&mut r, 1, "g", Role::Guest);
    join(&mut r, 2, "v", Role::Viewer);
    assert_eq!(r.controller(), None);
    assert_eq!(r.authorize(1, Act::Input).map_err(|e| e.0), Err(Refusal::NoControl));
    assert_eq!(r.authorize(2, Act::Input).map_err(|e| e.0), Err(Refusal::Role(Role::Viewer)));
}

#[test]
fn hand_off_guest_asks_owner_grants_then_takes_back() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    join(&mut r, 2, "bob", Role::Guest);
    let now = t0();

    let asked = r.control(2, ControlAction::Request, None, now);
    assert_eq!(notices(&asked), vec![(1, "bob asks for control")]);
    let ServerMessage::Room { participants, .. } = r.view_for(1) else { panic!("not a room view") };
    assert!(participants.iter().any(|p| p.id == "v2" && p.requesting));
    assert!(!controls(&mut r, 2));

    let granted = r.control(1, ControlAction::Grant, Some(2), now);
    assert!(granted.contains(&Effect::ReleaseInput(1)), "{granted:?}");
    assert!(notices(&granted).contains(&(2, "alice gave you control")));
    assert!(controls(&mut r, 2));
    assert!(!controls(&mut r, 1));
    let ServerMessage::Room { participants, control, .. } = r.view_for(2) else { panic!() };
    assert_eq!(control.as_deref(), Some("v2"));
    assert!(participants.iter().all(|p| !p.requesting));

    let taken = r.control(1, ControlAction::Take, None, now);
    assert!(taken.contains(&Effect::ReleaseInput(2)), "{taken:?}");
    assert!(notices(&taken).contains(&(2, "alice took control")));
    assert!(controls(&mut r, 1));
    assert!(!controls(&mut r, 2));
}

#[test]
fn guests_cannot_take_or_grant_and_viewers_cannot_even_ask() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    join(&mut r, 2, "bob", Role::Guest);
    join(&mut r, 3, "eve", Role::Viewer);
    let now = t0();
    r.control(2, ControlAction::Take, None, now);
    r.control(2, ControlAction::Grant, Some(2), now);
    assert_eq!(r.controller(), Some(1));
    let out = r.control(3, ControlAction::Request, None, now);
    assert_eq!(notices(&out), vec![(3, "view-only participants cannot control")]);
    let ServerMessage::Room { participants, .. } = r.view_for(1) else { panic!() };
    assert!(participants.iter().all(|p| !p.requesting));
    // An owner cannot give control to a viewer either.
    let out = r.control(1, ControlAction::Grant, Some(3), now);
    assert_eq!(notices(&out), vec![(1, "view-only participants cannot control")]);
    assert_eq!(r.controller(), Some(1));
}

#[test]
fn an_owner_asking_when_nobody_controls_gets_control_at_once() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    join(&mut r, 2, "carol", Role::Owner);
    r.control(1, ControlAction::Release, None, t0());
    // Release passes to the owner present longest other than alice: carol.
    assert_eq!(r.controller(), Some(2));
    r.control(2, ControlAction::Release, None, t0());
    assert_eq!(r.controller(), Some(1));
    let mut solo = room();
    join(&mut solo, 1, "alice", Role::Owner);
    solo.control(1, ControlAction::Release, None, t0());
    assert_eq!(solo.controller(), None);
    solo.control(1, ControlAction::Request, None, t0());
    assert_eq!(solo.controller(), Some(1));
}

#[test]
fn releasing_without_control_changes_nothing() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    join(&mut r, 2, "bob", Role::Guest);
    let out = r.control(2, ControlAction::Release, None, t0());
    assert_eq!(notices(&out), vec![(2, "you do not have control")]);
    assert_eq!(r.controller(), Some(1));
}

#[test]
fn when_the_holder_leaves_control_goes_to_the_owner_present_longest() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    join(&mut r, 2, "bob", Role::Guest);
    join(&mut r, 3, "carol", Role::Owner);
    r.control(1, ControlAction::Grant, Some(2), t0());
    let out = r.leave(2);
    assert!(!out.contains(&Effect::ReleaseInput(2)), "a departed id needs no release: {out:?}");
    assert_eq!(r.controller(), Some(1));
    assert!(notices(&out).contains(&(1, "you have control")));
    r.leave(1);
    assert_eq!(r.controller(), Some(3));
    r.leave(3);
    assert_eq!(r.controller(), None);
    assert!(r.is_empty());
}

#[test]
fn a_departed_participant_is_refused_everything() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    r.leave(1);
    assert_eq!(r.authorize(1, Act::Input).map_err(|e| e.0), Err(Refusal::Gone));
    assert!(r.leave(1).is_empty());
    assert!(r.control(1, ControlAction::Take, None, t0()).is_empty());
}

#[test]
fn settings_need_control_and_are_clamped_to_the_operator_limits() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    join(&mut r, 2, "eve", Role::Viewer);
    assert_eq!(
        r.settings(1, Some(120), Some(200_000)).map_err(|e| e.0),
        Ok(Settings { framerate: Some(30), bitrate_kbps: Some(8000) })
    );
    assert_eq!(
        r.settings(1, Some(15), Some(2000)).map_err(|e| e.0),
        Ok(Settings { framerate: Some(15), bitrate_kbps: Some(2000) })
    );
    assert_eq!(r.settings(1, None, None).map_err(|e| e.0), Ok(Settings { framerate: None, bitrate_kbps: None }));
    assert_eq!(r.settings(2, Some(15), None).map_err(|e| e.0), Err(Refusal::Role(Role::Viewer)));
}

#[test]
fn the_clipboard_is_for_owners_and_guests_and_browser_writes_need_control() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    join(&mut r, 2, "bob", Role::Guest);
    join(&mut r, 3, "eve", Role::Viewer);
    assert_eq!(r.clipboard_audience(), vec![1, 2]);
    assert!(r.authorize(1, Act::Clipboard).is_ok());
    assert_eq!(r.authorize(2, Act::Clipboard).map_err(|e| e.0), Err(Refusal::NoControl));
    assert_eq!(r.authorize(3, Act::Clipboard).map_err(|e| e.0), Err(Refusal::Role(Role::Viewer)));
}

#[test]
fn refusals_are_logged_once_per_participant() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    join(&mut r, 2, "eve", Role::Viewer);
    let (_, first) = r.authorize(2, Act::Input).unwrap_err();
    assert_eq!(first, vec![Effect::LogRefusal { id: 2, act: Act::Input, why: Refusal::Role(Role::Viewer) }]);
    let (_, second) = r.authorize(2, Act::Resize).unwrap_err();
    assert!(second.is_empty());
    let counted: std::collections::HashMap<_, _> = r.refused().into_iter().collect();
    assert_eq!(
        (counted[&Act::Input], counted[&Act::Resize], counted[&Act::Settings]),
        (1, 1, 0),
        "every refusal counts"
    );
}

#[test]
fn the_cursor_is_drawn_only_while_the_holder_is_in_pointer_lock() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    join(&mut r, 2, "bob", Role::Guest);
    assert!(r.pointer_lock(2, true).is_err(), "a guest without control cannot lock");
    assert_eq!(r.pointer_lock(1, true).map_err(|e| e.0), Ok(vec![Effect::ShowPointer(true)]));
    // Control moving away from the locked holder stops the drawing.
    let out = r.control(1, ControlAction::Grant, Some(2), t0());
    assert!(out.contains(&Effect::ShowPointer(false)), "{out:?}");
    assert_eq!(r.pointer_lock(1, false).map_err(|e| e.0), Ok(vec![]));
    assert_eq!(r.pointer_lock(2, true).map_err(|e| e.0), Ok(vec![Effect::ShowPointer(true)]));
    let out = r.leave(2);
    assert!(out.contains(&Effect::ShowPointer(false)), "{out:?}");
}

#[test]
fn slots_are_reserved_before_the_greeting_and_given_back() {
    let mut r = Room::new(Limits { max_participants: 2, ..LIMITS });
    assert!(r.reserve().is_ok());
    assert!(r.reserve().is_ok());
    assert_eq!(r.reserve(), Err(Full(2)), "two greetings in flight fill the room");
    r.unreserve();
    r.join(1, "alice", Role::Owner);
    assert_eq!((r.len(), r.reserved()), (1, 0), "joining uses up the reservation");
    assert!(r.reserve().is_ok());
    assert_eq!(r.reserve(), Err(Full(2)));
    r.leave(1);
    assert!(r.reserve().is_ok());
}

#[test]
fn unanswered_requests_expire() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    join(&mut r, 2, "bob", Role::Guest);
    let now = t0();
    r.control(2, ControlAction::Request, None, now);
    assert!(r.expire(now + REQUEST_TTL - Duration::from_secs(1)).is_empty());
    assert_eq!(r.expire(now + REQUEST_TTL), vec![Effect::Announce]);
    let ServerMessage::Room { participants, .. } = r.view_for(1) else { panic!() };
    assert!(participants.iter().all(|p| !p.requesting));
}

#[test]
fn names_round_trip() {
    assert_eq!(name(7), "v7");
    assert_eq!(parse_name("v7"), Some(7));
    assert_eq!(parse_name("7"), None);
    assert_eq!(parse_name("vx"), None);
}

#[test]
fn input_beyond_the_rate_is_refused_and_counted_and_the_rate_refills() {
    let mut r = room();
    join(&mut r, 1, "alice", Role::Owner);
    let t = t0();
    // A 1,000-character txt never fits the text bucket; a short one does.
    assert_eq!(r.authorize_input(1, 1000, t).map_err(|e| e.0), Err(Refusal::TooFast));
    assert_eq!(r.authorize_input(1, 10, t), Ok(()));
    // A flood of events: the burst passes, then refusals, counted as `rate`.
    let passed = (0..2000).filter(|_| r.authorize_input(1, 0, t).is_ok()).count();
    assert_eq!(passed, rate::EVENTS.0 as usize - 1, "the burst, less the txt above");
    let by: std::collections::HashMap<Act, u64> = r.refused().into_iter().collect();
    assert_eq!(by[&Act::Rate], 1 + (2000 - passed) as u64);
    // A second later there is room again.
    assert_eq!(r.authorize_input(1, 0, t + Duration::from_secs(1)), Ok(()));
    // Without control the answer is still "no control", not "too fast".
    join(&mut r, 2, "bob", Role::Guest);
    assert_eq!(r.authorize_input(2, 0, t).map_err(|e| e.0), Err(Refusal::NoControl));
}
