//! The one virtual pad every browser pad becomes: the layout of the Linux `xpad` driver's
//! Xbox 360 pad, 11 buttons and 8 axes, because it is what games and SDL2 expect without
//! configuration. The device also reports the Xbox 360's USB ids, so SDL2's built-in
//! controller database maps it with no `SDL_GAMECONTROLLERCONFIG` (docs/gamepads.md gives
//! the explicit mapping for programs that bring their own database).
//!
//! Numbering follows the kernel: SDL2 numbers evdev buttons by key code from `BTN_JOYSTICK`
//! up and axes by `ABS_*` code with the hats apart, and joydev numbers both in the order of
//! the codes, so the order of [`BUTTONS`] and [`AXES`] is the order apps see.

/// Event types (linux/input-event-codes.h).
pub const EV_SYN: u16 = 0x00;
pub const EV_KEY: u16 = 0x01;
pub const EV_ABS: u16 = 0x03;
pub const SYN_REPORT: u16 = 0;

pub const BTN_A: u16 = 0x130;
pub const BTN_B: u16 = 0x131;
pub const BTN_X: u16 = 0x133;
pub const BTN_Y: u16 = 0x134;
pub const BTN_TL: u16 = 0x136;
pub const BTN_TR: u16 = 0x137;
pub const BTN_SELECT: u16 = 0x13a;
pub const BTN_START: u16 = 0x13b;
pub const BTN_MODE: u16 = 0x13c;
pub const BTN_THUMBL: u16 = 0x13d;
pub const BTN_THUMBR: u16 = 0x13e;

pub const ABS_X: u16 = 0x00;
pub const ABS_Y: u16 = 0x01;
pub const ABS_Z: u16 = 0x02;
pub const ABS_RX: u16 = 0x03;
pub const ABS_RY: u16 = 0x04;
pub const ABS_RZ: u16 = 0x05;
pub const ABS_HAT0X: u16 = 0x10;
pub const ABS_HAT0Y: u16 = 0x11;

/// The pad's buttons, in the order joydev and SDL2 number them.
pub const BUTTONS: [u16; 11] =
    [BTN_A, BTN_B, BTN_X, BTN_Y, BTN_TL, BTN_TR, BTN_SELECT, BTN_START, BTN_MODE, BTN_THUMBL, BTN_THUMBR];

/// One absolute axis and its range, as `EVIOCGABS` reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Axis {
    pub code: u16,
    pub min: i32,
    pub max: i32,
    /// Noise the kernel would filter, and the dead zone around the centre (xpad's values).
    pub fuzz: i32,
    pub flat: i32,
}

const fn stick(code: u16) -> Axis {
    Axis { code, min: -32768, max: 32767, fuzz: 16, flat: 128 }
}
const fn trigger(code: u16) -> Axis {
    Axis { code, min: 0, max: 255, fuzz: 0, flat: 0 }
}
const fn hat(code: u16) -> Axis {
    Axis { code, min: -1, max: 1, fuzz: 0, flat: 0 }
}

/// The pad's axes, in the order joydev numbers them: sticks and triggers, then the d-pad.
pub const AXES: [Axis; 8] = [
    stick(ABS_X),
    stick(ABS_Y),
    trigger(ABS_Z),
    stick(ABS_RX),
    stick(ABS_RY),
    trigger(ABS_RZ),
    hat(ABS_HAT0X),
    hat(ABS_HAT0Y),
];

/// Identity reported by `EVIOCGID`: USB, Microsoft, Xbox 360 pad (xpad's version).
pub const BUS_USB: u16 = 0x03;
pub const VENDOR: u16 = 0x045e;
pub const PRODUCT: u16 = 0x028e;
pub const VERSION: u16 = 0x0114;

/// The name apps show (`EVIOCGNAME`, `JSIOCGNAME`): says what it is, not a brand.
pub fn name(pad: usize) -> String {
    format!("Kelpie virtual gamepad {} (Xbox 360 layout)", pad + 1)
}

/// `EVIOCGPHYS`: where the device "is plugged in".
pub fn phys(pad: usize) -> String {
    format!("kelpie/gamepad{pad}")
}

impl Axis {
    /// The value at rest: the centre of a stick or hat, a released trigger.
    pub const fn rest(&self) -> i32 {
        if self.min == 0 {
            0
        } else {
            (self.min + self.max) / 2
        }
    }

    /// The value joydev reports for `value`: its default correction maps every axis range
    /// linearly onto −32767…32767 (so a released trigger reads −32767, as on real pads).
    pub fn joystick_value(&self, value: i32) -> i16 {
        let (min, max) = (i64::from(self.min), i64::from(self.max));
        let v = i64::from(value.clamp(self.min, self.max));
        ((2 * v - (min + max)) * 32767 / (max - min)).clamp(-32767, 32767) as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joystick_values_span_the_joydev_range() {
        let s = AXES[0];
        assert_eq!((s.joystick_value(-32768), s.joystick_value(0), s.joystick_value(32767)), (-32767, 0, 32767));
        let t = AXES[2];
        assert_eq!((t.joystick_value(0), t.joystick_value(255)), (-32767, 32767));
        let h = AXES[6];
        assert_eq!((h.joystick_value(-1), h.joystick_value(0), h.joystick_value(1)), (-32767, 0, 32767));
        // Out of range is clamped, not wrapped.
        assert_eq!(t.joystick_value(1000), 32767);
    }

    #[test]
    fn rest_is_the_centre_or_a_released_trigger() {
        assert_eq!(AXES.map(|a| a.rest()), [0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(AXES[0].rest(), 0);
    }

    #[test]
    fn buttons_are_in_key_code_order_as_sdl_and_joydev_number_them() {
        assert!(BUTTONS.windows(2).all(|w| w[0] < w[1]));
        assert!(AXES.windows(2).all(|w| w[0].code < w[1].code));
    }
}
