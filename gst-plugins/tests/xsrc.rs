//! `kelpiexsrc` against a real Xvfb: frames on damage only, resize renegotiation, and the
//! conversion compared with GStreamer's own `videoconvert`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gst::prelude::*;
use x11rb::connection::Connection;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, ImageFormat, Rectangle};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

struct Xvfb {
    display: String,
    child: Child,
}

impl Xvfb {
    fn start(w: u32, h: u32) -> Self {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{w}x{h}x24"),
                "-nolisten",
                "tcp",
                "+extension",
                "RANDR",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        Self { display: format!(":{}", line.trim()), child }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn init() {
    gst::init().unwrap();
    let _ = kelpiegst::plugin_register_static();
}

fn pipeline(desc: &str) -> (gst::Pipeline, gst_app::AppSink) {
    let p = gst::parse::launch(desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = p.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    (p, sink)
}

fn pull(sink: &gst_app::AppSink, within: Duration) -> Option<gst::Sample> {
    sink.try_pull_sample(gst::ClockTime::from_nseconds(within.as_nanos() as u64))
}

fn fill(conn: &RustConnection, screen: usize, color: u32, r: Rectangle) {
    let root = conn.setup().roots[screen].root;
    let gc = conn.generate_id().unwrap();
    conn.create_gc(
        gc,
        root,
        &CreateGCAux::new().foreground(color).subwindow_mode(x11rb::protocol::xproto::SubwindowMode::INCLUDE_INFERIORS),
    )
    .unwrap();
    conn.poly_fill_rectangle(root, gc, &[r]).unwrap();
    conn.free_gc(gc).unwrap();
    conn.sync().unwrap();
}

fn y_at(sample: &gst::Sample, x: usize, y: usize) -> u8 {
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let map = sample.buffer().unwrap().map_readable().unwrap();
    map[y * info.stride()[0] as usize + x]
}

#[test]
fn damage_makes_a_frame_and_a_still_screen_makes_none() {
    init();
    let x = Xvfb::start(320, 240);
    let (p, sink) = pipeline(&format!(
        "kelpiexsrc display={} still-refresh=0 idle-interval=0 ! video/x-raw,framerate=30/1 ! appsink name=sink sync=false",
        x.display
    ));
    let first = pull(&sink, Duration::from_secs(5)).expect("an initial full frame");
    assert_eq!(y_at(&first, 100, 100), 16, "Xvfb's root starts black");
    assert!(pull(&sink, Duration::from_millis(700)).is_none(), "no damage, no frame");

    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    fill(&conn, screen, 0xffffff, Rectangle { x: 90, y: 90, width: 40, height: 30 });
    let after = pull(&sink, Duration::from_secs(2)).expect("damage produces a frame");
    assert_eq!(y_at(&after, 100, 100), 235, "the white rectangle is in the frame");
    assert_eq!(y_at(&after, 10, 10), 16, "and the rest is unchanged");
    assert!(pull(&sink, Duration::from_millis(500)).is_none(), "one change, one frame");
    p.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_change_then_stillness_makes_exactly_still_refresh_repeats() {
    init();
    let x = Xvfb::start(320, 240);
    let (p, sink) = pipeline(&format!(
        "kelpiexsrc display={} still-refresh=4 idle-interval=0 ! video/x-raw,framerate=30/1 ! appsink name=sink sync=false",
        x.display
    ));
    let count_until_quiet = || {
        let mut n = 0;
        while pull(&sink, Duration::from_millis(700)).is_some() {
            n += 1;
            assert!(n < 100, "the source never went quiet");
        }
        n
    };
    assert_eq!(count_until_quiet(), 1 + 4, "the first full frame, then four refinement repeats");
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    fill(&conn, screen, 0xffffff, Rectangle { x: 90, y: 90, width: 40, height: 30 });
    let frames = count_until_quiet();
    assert_eq!(frames, 1 + 4, "one change: its frame and four repeats, then nothing");
    p.set_state(gst::State::Null).unwrap();
}

/// The brightest luma in a 24×24 box centred on (x, y).
fn max_y_around(sample: &gst::Sample, x: usize, y: usize) -> u8 {
    (y - 12..y + 12)
        .flat_map(|yy| (x - 12..x + 12).map(move |xx| (xx, yy)))
        .map(|(xx, yy)| y_at(sample, xx, yy))
        .max()
        .unwrap()
}

#[test]
fn show_pointer_draws_the_cursor_and_follows_it_without_damage() {
    init();
    let x = Xvfb::start(320, 240);
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[screen].root;
    conn.warp_pointer(x11rb::NONE, root, 0, 0, 0, 0, 100, 100).unwrap();
    conn.sync().unwrap();
    let (p, sink) = pipeline(&format!(
        "kelpiexsrc name=src display={} still-refresh=0 idle-interval=0 ! video/x-raw,framerate=30/1 ! appsink name=sink sync=false",
        x.display
    ));
    let plain = pull(&sink, Duration::from_secs(5)).expect("an initial frame");
    assert_eq!(max_y_around(&plain, 100, 100), 16, "no cursor in the picture by default");

    p.by_name("src").unwrap().set_property("show-pointer", true);
    let with = pull(&sink, Duration::from_secs(2)).expect("switching the cursor on makes a frame");
    assert!(max_y_around(&with, 100, 100) > 100, "the cursor (white outline) is drawn at the pointer");

    conn.warp_pointer(x11rb::NONE, root, 0, 0, 0, 0, 200, 150).unwrap();
    conn.sync().unwrap();
    let moved = pull(&sink, Duration::from_secs(2)).expect("a pointer move makes a frame without any damage");
    assert_eq!(max_y_around(&moved, 100, 100), 16, "the old position is clean again");
    assert!(max_y_around(&moved, 200, 150) > 100, "the cursor is at the new position");

    p.by_name("src").unwrap().set_property("show-pointer", false);
    let off = pull(&sink, Duration::from_secs(2)).expect("switching it off makes a frame");
    assert_eq!(max_y_around(&off, 200, 150), 16, "and the cursor is gone");
    p.set_state(gst::State::Null).unwrap();
}

#[test]
fn idle_interval_and_refresh_produce_frames_on_a_still_screen() {
    init();
    let x = Xvfb::start(320, 240);
    let (p, sink) = pipeline(&format!(
        "kelpiexsrc name=src display={} still-refresh=0 idle-interval=300 ! video/x-raw,framerate=30/1 ! appsink name=sink sync=false",
        x.display
    ));
    pull(&sink, Duration::from_secs(5)).expect("initial frame");
    let t = Instant::now();
    pull(&sink, Duration::from_secs(2)).expect("an idle repeat");
    assert!(t.elapsed() >= Duration::from_millis(200), "repeats are spaced by idle-interval");
    p.by_name("src").unwrap().set_property("idle-interval", 0u32);
    pull(&sink, Duration::from_millis(400)); // a repeat already scheduled may still come
    assert!(pull(&sink, Duration::from_millis(600)).is_none());
    p.by_name("src").unwrap().emit_by_name::<()>("refresh", &[]);
    assert!(pull(&sink, Duration::from_millis(500)).is_some(), "refresh forces a frame");
    p.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_screen_resize_renegotiates_caps_and_frames_follow() {
    init();
    let x = Xvfb::start(640, 480);
    let (p, sink) = pipeline(&format!(
        "kelpiexsrc display={} still-refresh=0 idle-interval=200 ! video/x-raw,framerate=30/1 ! appsink name=sink sync=false",
        x.display
    ));
    let first = pull(&sink, Duration::from_secs(5)).unwrap();
    let info = gst_video::VideoInfo::from_caps(first.caps().unwrap()).unwrap();
    assert_eq!((info.width(), info.height()), (640, 480));

    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    resize_screen(&conn, screen, 400, 300);
    fill(&conn, screen, 0xffffff, Rectangle { x: 0, y: 0, width: 400, height: 300 });

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = pull(&sink, Duration::from_secs(1)).expect("frames keep coming");
        let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
        if (info.width(), info.height()) == (400, 300) {
            assert_eq!(s.buffer().unwrap().size(), info.size(), "buffer fits the new caps");
            assert_eq!(y_at(&s, 399, 299), 235, "the frame shows the resized screen");
            break;
        }
        assert!(Instant::now() < deadline, "caps never changed to 400x300");
    }
    p.set_state(gst::State::Null).unwrap();
}

/// Resizes the X screen the way a desktop would (RandR 1.2: a new mode on the output, the
/// CRTC switched to it, the screen shrunk to fit).
fn resize_screen(conn: &RustConnection, screen: usize, w: u16, h: u16) {
    use x11rb::protocol::randr::{ModeFlag, ModeInfo};
    let root = conn.setup().roots[screen].root;
    conn.randr_query_version(1, 5).unwrap().reply().unwrap();
    let res = conn.randr_get_screen_resources(root).unwrap().reply().unwrap();
    let (crtc, output) = (res.crtcs[0], res.outputs[0]);
    let name = format!("{w}x{h}");
    let info = ModeInfo {
        id: 0,
        width: w,
        height: h,
        dot_clock: u32::from(w) * u32::from(h) * 60,
        hsync_start: w,
        hsync_end: w,
        htotal: w,
        hskew: 0,
        vsync_start: h,
        vsync_end: h,
        vtotal: h,
        name_len: name.len() as u16,
        mode_flags: ModeFlag::from(0u32),
    };
    let mode = conn.randr_create_mode(root, info, name.as_bytes()).unwrap().reply().expect("create mode").mode;
    conn.randr_add_output_mode(output, mode).unwrap().check().expect("add mode");
    let crtc_info = conn.randr_get_crtc_info(crtc, res.config_timestamp).unwrap().reply().unwrap();
    conn.randr_set_crtc_config(crtc, res.timestamp, res.config_timestamp, 0, 0, mode, crtc_info.rotation, &[output])
        .unwrap()
        .reply()
        .expect("set crtc");
    conn.randr_set_screen_size(root, w, h, 100, 75).unwrap().check().expect("set screen size");
}

#[test]
fn conversion_matches_videoconvert_within_two() {
    init();
    let (w, h) = (256u32, 128u32);
    let x = Xvfb::start(w, h);
    let (conn, screen) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[screen].root;
    // Smooth colour gradients in every channel, plus flat patches.
    let mut data = Vec::with_capacity((w * h * 4) as usize);
    for yy in 0..h {
        for xx in 0..w {
            let (b, g, r) = if xx < 32 { (30u8, 200u8, 90u8) } else { (xx as u8, (yy * 2) as u8, (255 - xx) as u8) };
            data.extend_from_slice(&[b, g, r, 0]);
        }
    }
    let gc = conn.generate_id().unwrap();
    conn.create_gc(gc, root, &CreateGCAux::new()).unwrap();
    conn.put_image(ImageFormat::Z_PIXMAP, root, gc, w as u16, h as u16, 0, 0, 0, 24, &data).unwrap();
    conn.sync().unwrap();

    let grab = |desc: String| {
        let (p, sink) = pipeline(&desc);
        let s = pull(&sink, Duration::from_secs(5)).expect("a frame");
        p.set_state(gst::State::Null).unwrap();
        s
    };
    let ours =
        grab(format!("kelpiexsrc display={} ! video/x-raw,framerate=30/1 ! appsink name=sink sync=false", x.display));
    let theirs = grab(format!(
        "ximagesrc display-name={} use-damage=false show-pointer=false num-buffers=1 ! videoconvert ! \
         video/x-raw,format=I420,colorimetry=bt709 ! appsink name=sink sync=false",
        x.display
    ));
    let (a, b) = (ours.buffer().unwrap().map_readable().unwrap(), theirs.buffer().unwrap().map_readable().unwrap());
    assert_eq!(a.len(), b.len());
    let worst = a.iter().zip(b.iter()).map(|(p, q)| (i16::from(*p) - i16::from(*q)).abs()).max().unwrap();
    assert!(worst <= 2, "largest difference from videoconvert: {worst}");
}

#[test]
fn gst_inspect_shows_the_element_and_its_documented_properties() {
    // The cdylib sits next to this test's deps directory: target/<profile>/libkelpiegst.so.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    assert!(dir.join("libkelpiegst.so").exists(), "build the plugin first: cargo build -p kelpie-gst-plugins");
    let out = Command::new("gst-inspect-1.0")
        .arg("kelpiexsrc")
        .env("GST_PLUGIN_PATH", dir)
        .output()
        .expect("gst-inspect-1.0 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for needle in [
        "Kelpie X11 damage source",
        "display",
        "X display to capture",
        "idle-interval",
        "Milliseconds between repeated frames",
        "show-pointer",
        "Draw the X cursor into the picture",
        "max-framerate",
        "Frames per second at most",
        "\"refresh\"",
        "format: I420",
    ] {
        assert!(text.contains(needle), "gst-inspect lacks {needle:?}:\n{text}");
    }
}
