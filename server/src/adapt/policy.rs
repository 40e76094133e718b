//! One shared encode, many viewers: which viewer's estimate the encoder follows, within
//! which bounds, at which frame rate, and which viewers it leaves behind.
//!
//! - The encoder follows the **leader**: the participant holding control, whose picture
//!   is the one being worked in. With nobody in control it follows the best-connected
//!   viewer: nobody drags the others down.
//! - **Bounds**: `--bitrate` (or the settings panel's choice) is the ceiling; the floor
//!   keeps one bad reading, or an idle screen, from collapsing the picture.
//! - A viewer whose estimate is well under the target is **behind**: the shell serves it
//!   from the same encode as long as it keeps up and skips it to the next keyframe when
//!   it does not (never a standing queue for it, never a slower encode for everyone).
//! - **Frame rate drops before resolution**: below the bitrate at which the picture holds
//!   [`FULL_RATE_BITS_PER_PIXEL`] per pixel per frame, fewer frames get the bits, down to a
//!   third of the full rate. The resolution never changes (a viewer's pointer maps to the
//!   desktop's pixels 1:1).

/// Bits per pixel per frame under which the frame rate, not the picture, gives way.
/// 0.03 keeps 1080p30 at full rate down to ~1.9 Mbit/s.
pub const FULL_RATE_BITS_PER_PIXEL: f64 = 0.03;
/// A viewer is behind when its estimate is under this share of the target.
pub const BEHIND: f64 = 0.8;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub ceiling_bps: f64,
    pub floor_bps: f64,
}

impl Bounds {
    /// The default floor for a ceiling: an eighth of it, within 250 kbit/s..1 Mbit/s.
    pub fn with_default_floor(ceiling_bps: f64) -> Self {
        Bounds { ceiling_bps, floor_bps: (ceiling_bps / 8.0).clamp(250e3, 1e6).min(ceiling_bps) }
    }
}

/// One viewer as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewer {
    pub id: u64,
    /// `None` until its transport has reported (or for a transport without feedback).
    pub estimate_bps: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub target_bps: f64,
    pub framerate: u32,
    pub leader: Option<u64>,
    pub behind: Vec<u64>,
}

/// The plan for `viewers` now. `pixels` is the desktop's size, `max_fps` the frame rate
/// the pipeline runs at.
pub fn plan(bounds: Bounds, max_fps: u32, pixels: u64, controller: Option<u64>, viewers: &[Viewer]) -> Plan {
    let estimated = || viewers.iter().filter_map(|v| v.estimate_bps.map(|e| (v.id, e)));
    let leader = controller
        .and_then(|c| estimated().find(|(id, _)| *id == c))
        .or_else(|| estimated().max_by(|a, b| a.1.total_cmp(&b.1)));
    let target = leader.map_or(bounds.ceiling_bps, |(_, e)| e).clamp(bounds.floor_bps, bounds.ceiling_bps);
    let leader_id = leader.map(|(id, _)| id);
    let behind =
        estimated().filter(|(id, e)| Some(*id) != leader_id && *e < BEHIND * target).map(|(id, _)| id).collect();
    Plan { target_bps: target, framerate: framerate_for(target, pixels, max_fps), leader: leader_id, behind }
}

/// A viewer moved to a rung stays there at least this long before moving up again: each
/// move costs a keyframe, and a link that just failed the main rate should prove itself.
pub const STAY_LOW: std::time::Duration = std::time::Duration::from_secs(5);
/// ...and after moving up, this long before it may be moved down again.
pub const STAY_MAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a viewer that is not the leader should be on the low rung: down as soon as its
/// estimate is [`BEHIND`] the main target (a joining viewer's starting guess included, so
/// that a slow link's first keyframe is one it can carry), back up once it carries the
/// main target whole, at once while its estimate is still only growing (`congested`
/// false: nothing has limited it yet), after [`STAY_LOW`] once its path has been full.
pub fn wants_low(
    on_low: bool,
    estimate_bps: f64,
    congested: bool,
    main_target_bps: f64,
    since_move: std::time::Duration,
) -> bool {
    if on_low {
        !(estimate_bps >= main_target_bps && (since_move >= STAY_LOW || !congested))
    } else {
        estimate_bps < BEHIND * main_target_bps && since_move >= STAY_MAIN
    }
}

/// The low rung's bitrate: what its slowest viewer carries, within the bounds and never
/// above the main encode.
pub fn low_target(bounds: Bounds, main_target_bps: f64, estimates: impl IntoIterator<Item = f64>) -> f64 {
    let slowest = estimates.into_iter().fold(f64::INFINITY, f64::min);
    let top = main_target_bps.min(bounds.ceiling_bps);
    if slowest.is_finite() {
        slowest.clamp(bounds.floor_bps.min(top), top)
    } else {
        top
    }
}

/// Loss over the last second above which a viewer's link is lossy.
pub const LOSSY: f64 = 0.003;
/// A link stays lossy this long after its last loss: random loss comes and goes.
pub const LOSSY_HOLDS: std::time::Duration = std::time::Duration::from_secs(10);

/// The forward error correction a viewer gets: none on a link that has not lost packets
/// for [`LOSSY_HOLDS`] (parity costs bandwidth, server CPU and a little latency: measured
/// at 1080p60, 23 % of a core and 11 ms glass-to-glass), `configured` while it does.
pub fn fec_percent(configured: u32, since_loss: Option<std::time::Duration>) -> u32 {
    match since_loss {
        Some(d) if d < LOSSY_HOLDS => configured,
        _ => 0,
    }
}

/// The frame rate `bps` can carry at `pixels` per frame ([`FULL_RATE_BITS_PER_PIXEL`]).
pub fn framerate_for(bps: f64, pixels: u64, max_fps: u32) -> u32 {
    let knee = pixels as f64 * f64::from(max_fps) * FULL_RATE_BITS_PER_PIXEL;
    if knee <= 0.0 || bps >= knee {
        return max_fps;
    }
    let lowest = max_fps.div_ceil(3).max(1);
    ((f64::from(max_fps) * bps / knee).round() as u32).clamp(lowest, max_fps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HD: u64 = 1920 * 1080;
    const B: Bounds = Bounds { ceiling_bps: 8e6, floor_bps: 1e6 };

    fn v(id: u64, mbps: f64) -> Viewer {
        Viewer { id, estimate_bps: Some(mbps * 1e6) }
    }

    #[test]
    fn the_encoder_follows_the_participant_in_control() {
        let p = plan(B, 30, HD, Some(2), &[v(1, 20.0), v(2, 3.0), v(3, 2.0)]);
        assert_eq!(p.target_bps, 3e6);
        assert_eq!(p.leader, Some(2));
        assert_eq!(p.behind, vec![3], "2 Mbit/s is under 80 % of 3; 20 is not behind");
    }

    #[test]
    fn a_slow_viewer_does_not_drag_the_controller_down() {
        let p = plan(B, 30, HD, Some(1), &[v(1, 20.0), v(2, 3.0)]);
        assert_eq!(p.target_bps, 8e6, "the ceiling bounds the controller's estimate");
        assert_eq!(p.behind, vec![2]);
        assert_eq!(p.framerate, 30);
    }

    #[test]
    fn nobody_in_control_follows_the_best_connected_viewer() {
        let p = plan(B, 30, HD, None, &[v(1, 2.0), v(2, 5.0)]);
        assert_eq!((p.leader, p.target_bps), (Some(2), 5e6));
        // A controller without an estimate yet (just joined, or no feedback): the same.
        let p = plan(B, 30, HD, Some(3), &[v(1, 2.0), v(2, 5.0), Viewer { id: 3, estimate_bps: None }]);
        assert_eq!(p.leader, Some(2));
    }

    #[test]
    fn without_estimates_the_ceiling_holds() {
        let p = plan(B, 60, HD, Some(1), &[Viewer { id: 1, estimate_bps: None }]);
        assert_eq!((p.target_bps, p.framerate, p.leader), (8e6, 60, None));
        assert!(plan(B, 60, HD, None, &[]).behind.is_empty());
    }

    #[test]
    fn the_floor_keeps_a_collapsed_estimate_from_ruining_the_picture() {
        let p = plan(B, 30, HD, Some(1), &[v(1, 0.05)]);
        assert_eq!(p.target_bps, 1e6);
    }

    #[test]
    fn frame_rate_gives_way_before_resolution() {
        assert_eq!(framerate_for(3e6, HD, 30), 30);
        let knee = HD as f64 * 30.0 * FULL_RATE_BITS_PER_PIXEL;
        assert_eq!(framerate_for(knee, HD, 30), 30);
        assert_eq!(framerate_for(knee / 2.0, HD, 30), 15);
        assert_eq!(framerate_for(1.0, HD, 30), 10, "never under a third");
        assert_eq!(framerate_for(1e6, 1280 * 720, 30), 30, "a smaller screen needs fewer bits");
        assert_eq!(framerate_for(1e6, 0, 30), 30);
    }

    #[test]
    fn a_viewer_moves_down_at_once_and_up_only_after_proving_itself() {
        use std::time::Duration;
        let long = Duration::from_secs(60);
        assert!(wants_low(false, 2e6, false, 8e6, long), "2 of 8 Mbit/s is behind, a starting guess too");
        assert!(!wants_low(false, 7e6, true, 8e6, long), "7 of 8 is not");
        assert!(!wants_low(false, 2e6, true, 8e6, Duration::from_millis(500)), "just moved up: not down again yet");
        assert!(wants_low(true, 8e6, true, 8e6, Duration::from_secs(2)), "a full path stays low a while");
        assert!(!wants_low(true, 8e6, false, 8e6, Duration::from_secs(2)), "a still-growing estimate moves up at once");
        assert!(!wants_low(true, 8e6, true, 8e6, STAY_LOW), "carries the main target: up");
        assert!(wants_low(true, 7.9e6, false, 8e6, long), "not quite the main target: stays");
    }

    #[test]
    fn the_low_rung_runs_at_its_slowest_viewer_within_bounds() {
        assert_eq!(low_target(B, 8e6, [3e6, 2.5e6]), 2.5e6);
        assert_eq!(low_target(B, 8e6, [0.1e6]), 1e6, "the floor");
        assert_eq!(low_target(B, 4e6, [6e6]), 4e6, "never above the main encode");
        assert_eq!(low_target(B, 8e6, []), 8e6);
    }

    #[test]
    fn fec_only_while_the_link_loses_packets() {
        use std::time::Duration;
        assert_eq!(fec_percent(15, None), 0, "never lost anything");
        assert_eq!(fec_percent(15, Some(Duration::from_secs(2))), 15);
        assert_eq!(fec_percent(15, Some(LOSSY_HOLDS)), 0, "quiet long enough");
        assert_eq!(fec_percent(0, Some(Duration::ZERO)), 0, "turned off");
    }

    #[test]
    fn default_floor_is_an_eighth_within_limits() {
        assert_eq!(Bounds::with_default_floor(8e6).floor_bps, 1e6);
        assert_eq!(Bounds::with_default_floor(1e6).floor_bps, 250e3);
        assert_eq!(Bounds::with_default_floor(200e3).floor_bps, 200e3);
        assert_eq!(Bounds::with_default_floor(40e6).floor_bps, 1e6);
    }
}
