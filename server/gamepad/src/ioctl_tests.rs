//! Every request the library answers, against the kernel's numbers and replies.

use super::*;

const JS0: Device = Device { kind: Kind::Joystick, pad: 0 };
const EV1: Device = Device { kind: Kind::Evdev, pad: 1 };

fn bytes(a: Answer) -> (Vec<u8>, i32) {
    match a {
        Answer::Read { bytes, ret } => (bytes, ret),
        other => panic!("expected a read, got {other:?}"),
    }
}

fn bit(map: &[u8], n: u16) -> bool {
    let n = usize::from(n);
    let word = u64::from_ne_bytes(map[n / 64 * 8..n / 64 * 8 + 8].try_into().unwrap());
    word >> (n % 64) & 1 == 1
}

#[test]
fn request_numbers_match_the_kernel_headers() {
    // Printed from <linux/joystick.h> and <linux/input.h> with a C compiler.
    let expected: [(u32, u32); 20] = [
        (JSIOCGVERSION, 0x80046a01),
        (JSIOCGAXES, 0x80016a11),
        (JSIOCGBUTTONS, 0x80016a12),
        (jsiocgname(128), 0x80806a13),
        (JSIOCGAXMAP, 0x80406a32),
        (JSIOCGBTNMAP, 0x84006a34),
        (JSIOCGCORR, 0x80246a22),
        (JSIOCSCORR, 0x40246a21),
        (EVIOCGVERSION, 0x80044501),
        (EVIOCGID, 0x80084502),
        (eviocgname(256), 0x81004506),
        (eviocgbit(0, 8), 0x80084520),
        (eviocgbit(1, 96), 0x80604521),
        (eviocgabs(0x10), 0x80184550),
        (EVIOCGRAB, 0x40044590),
        (EVIOCSCLOCKID, 0x400445a0),
        (eviocgkey(96), 0x80604518),
        (EVIOCGEFFECTS, 0x80044584),
        (EVIOCSFF, 0x40304580),
        (eviocsabs(0), 0x401845c0),
    ];
    for (ours, kernel) in expected {
        assert_eq!(ours, kernel, "{ours:#x} vs {kernel:#x}");
    }
}

#[test]
fn joystick_version_axes_and_buttons() {
    assert_eq!(bytes(answer(JS0, JSIOCGVERSION)), (JS_VERSION.to_ne_bytes().to_vec(), 0));
    assert_eq!(bytes(answer(JS0, JSIOCGAXES)), (vec![8], 0));
    assert_eq!(bytes(answer(JS0, JSIOCGBUTTONS)), (vec![11], 0));
}

#[test]
fn names_are_cut_to_the_buffer_and_return_the_bytes_copied() {
    let (name, n) = bytes(answer(JS0, jsiocgname(128)));
    assert_eq!(name, b"Kelpie virtual gamepad 1 (Xbox 360 layout)\0");
    assert_eq!(n as usize, name.len());
    let (short, n) = bytes(answer(JS0, jsiocgname(6)));
    assert_eq!((short.as_slice(), n), (&b"Kelpie"[..], 6));
    let (name, _) = bytes(answer(EV1, eviocgname(256)));
    assert_eq!(name, b"Kelpie virtual gamepad 2 (Xbox 360 layout)\0");
    let (phys, _) = bytes(answer(EV1, eviocgphys(64)));
    assert_eq!(phys, b"kelpie/gamepad1\0");
    assert_eq!(answer(EV1, eviocguniq(64)), Answer::Fail(libc::ENOENT));
}

#[test]
fn joystick_maps_list_the_layout_codes_in_order() {
    let (axmap, n) = bytes(answer(JS0, JSIOCGAXMAP));
    assert_eq!(n, 64);
    assert_eq!(&axmap[..9], &[0, 1, 2, 3, 4, 5, 0x10, 0x11, 0]);
    let (btnmap, n) = bytes(answer(JS0, JSIOCGBTNMAP));
    assert_eq!(n, 1024);
    let codes: Vec<u16> = btnmap.chunks(2).take(12).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect();
    assert_eq!(codes, [0x130, 0x131, 0x133, 0x134, 0x136, 0x137, 0x13a, 0x13b, 0x13c, 0x13d, 0x13e, 0]);
    let (corr, ret) = bytes(answer(JS0, JSIOCGCORR));
    assert_eq!((corr.len(), ret), (36 * 8, 0));
    assert!(corr.iter().all(|&b| b == 0), "JS_CORR_NONE");
}

#[test]
fn joystick_remapping_and_calibration_are_refused() {
    for req in [JSIOCSCORR, JSIOCSAXMAP, JSIOCSBTNMAP, ioc(IOC_READ, b'j', 0x7f, 4)] {
        assert_eq!(answer(JS0, req), Answer::Fail(libc::EINVAL), "{req:#x}");
    }
}

#[test]
fn evdev_version_and_id_say_usb_xbox_360() {
    assert_eq!(bytes(answer(EV1, EVIOCGVERSION)), (EV_VERSION.to_ne_bytes().to_vec(), 0));
    let (id, ret) = bytes(answer(EV1, EVIOCGID));
    let id: Vec<u16> = id.chunks(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect();
    assert_eq!((id, ret), (vec![0x03, 0x045e, 0x028e, 0x0114], 0));
}

#[test]
fn evdev_bits_name_exactly_the_layout() {
    let (types, n) = bytes(answer(EV1, eviocgbit(0, 8)));
    assert_eq!(n, 8);
    assert!(bit(&types, EV_SYN) && bit(&types, EV_KEY) && bit(&types, EV_ABS));
    assert!(!bit(&types, 0x02) && !bit(&types, 0x15), "no relative axes, no force feedback");

    let (keys, n) = bytes(answer(EV1, eviocgbit(1, 96)));
    assert_eq!(n, 96);
    let set: Vec<u16> = (0..768).filter(|&b| bit(&keys, b)).collect();
    assert_eq!(set, BUTTONS);

    let (abs, _) = bytes(answer(EV1, eviocgbit(3, 8)));
    let set: Vec<u16> = (0..64).filter(|&b| bit(&abs, b)).collect();
    assert_eq!(set, AXES.map(|a| a.code));

    // A short buffer gets the start; other types are empty; unknown ones are refused.
    let (part, n) = bytes(answer(EV1, eviocgbit(1, 4)));
    assert_eq!((part.len(), n), (4, 4));
    for (ev, len) in [(2, 8), (4, 8), (5, 8), (0x11, 8), (0x12, 8), (0x15, 16)] {
        let (b, n) = bytes(answer(EV1, eviocgbit(ev, 64)));
        assert_eq!((b.len(), n as usize), (len, len), "type {ev:#x}");
        assert!(b.iter().all(|&x| x == 0));
    }
    assert_eq!(answer(EV1, eviocgbit(0x1f, 8)), Answer::Fail(libc::EINVAL));
}

#[test]
fn evdev_absinfo_gives_the_ranges_at_rest() {
    let info = |abs: u8| -> Vec<i32> {
        let (b, ret) = bytes(answer(EV1, eviocgabs(abs)));
        assert_eq!(ret, 0);
        b.chunks(4).map(|c| i32::from_ne_bytes(c.try_into().unwrap())).collect()
    };
    assert_eq!(info(0x00), [0, -32768, 32767, 16, 128, 0], "left stick x");
    assert_eq!(info(0x02), [0, 0, 255, 0, 0, 0], "left trigger");
    assert_eq!(info(0x11), [0, -1, 1, 0, 0, 0], "d-pad y");
    assert_eq!(info(0x20), [0; 6], "an axis the pad lacks");
    assert_eq!(answer(EV1, eviocsabs(0)), Answer::Done(0));
}

#[test]
fn evdev_state_queries_describe_the_pad_at_rest() {
    let (keys, n) = bytes(answer(EV1, eviocgkey(96)));
    assert_eq!((keys.len(), n), (96, 96));
    assert!(keys.iter().all(|&b| b == 0));
    for nr in [0x19, 0x1a, 0x1b] {
        let (b, _) = bytes(answer(EV1, ioc(IOC_READ, b'E', nr, 8)));
        assert!(b.iter().all(|&x| x == 0));
    }
    let (props, n) = bytes(answer(EV1, eviocgprop(8)));
    assert_eq!((props, n), (vec![0; 8], 8));
}

#[test]
fn evdev_grab_clock_and_effects() {
    assert_eq!(answer(EV1, EVIOCGRAB), Answer::Done(0));
    assert_eq!(answer(EV1, EVIOCREVOKE), Answer::Done(0));
    assert_eq!(answer(EV1, EVIOCSCLOCKID), Answer::Done(0));
    assert_eq!(bytes(answer(EV1, EVIOCGEFFECTS)), (vec![0; 4], 0));
    assert_eq!(answer(EV1, EVIOCSFF), Answer::Fail(libc::ENOSYS));
    assert_eq!(answer(EV1, EVIOCRMFF), Answer::Fail(libc::ENOSYS));
    assert_eq!(answer(EV1, EVIOCGREP), Answer::Fail(libc::ENOSYS));
    assert_eq!(answer(EV1, EVIOCGKEYCODE), Answer::Fail(libc::EINVAL));
}

#[test]
fn each_driver_refuses_the_others_requests_and_sockets_pass() {
    assert_eq!(answer(JS0, EVIOCGID), Answer::Fail(libc::EINVAL));
    assert_eq!(answer(EV1, JSIOCGAXES), Answer::Fail(libc::EINVAL));
    assert_eq!(answer(EV1, ioc(0, b'E', 0xee, 0)), Answer::Fail(libc::EINVAL));
    // FIONREAD and FIONBIO are the socket's business.
    assert_eq!(answer(EV1, 0x541b), Answer::Pass);
    assert_eq!(answer(JS0, 0x5421), Answer::Pass);
}

#[test]
fn a_fixed_request_with_another_size_is_refused_not_overrun() {
    // The fuzzer's find: JSIOCGVERSION's number with a 1-byte size.
    assert_eq!(answer(JS0, ioc(IOC_READ, b'j', 0x01, 1)), Answer::Fail(libc::EINVAL));
    assert_eq!(answer(JS0, ioc(IOC_READ, b'j', 0x11, 4)), Answer::Fail(libc::EINVAL));
    assert_eq!(answer(EV1, ioc(IOC_READ, b'E', 0x02, 2)), Answer::Fail(libc::EINVAL));
    assert_eq!(answer(EV1, ioc(IOC_READ, b'E', 0x01, 0)), Answer::Fail(libc::EINVAL));
    // Variable-size reads are cut instead; absinfo too.
    let (b, ret) = bytes(answer(EV1, ioc(IOC_READ, b'E', 0x40, 8)));
    assert_eq!((b.len(), ret), (8, 0));
    // Every reply fits its request, for every number a program could pass.
    for dir in [0u32, 1, 2, 3] {
        for ty in [b'j', b'E'] {
            for nr in 0..=255u8 {
                for size in [0usize, 1, 3, 4, 7, 8, 24, 36, 64, 96, 255, 1024, 0x3fff] {
                    let req = ioc(dir, ty, nr, size);
                    for dev in [JS0, EV1] {
                        if let Answer::Read { bytes, .. } = answer(dev, req) {
                            assert!(bytes.len() <= size || req == JSIOCGCORR, "{req:#x}: {} bytes", bytes.len());
                        }
                    }
                }
            }
        }
    }
}
