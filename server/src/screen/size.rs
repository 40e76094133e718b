//! A screen size in pixels, as flags and browsers ask for it (pure).

use std::fmt;
use std::str::FromStr;

/// A screen size in pixels.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ScreenSize {
    pub width: u32,
    pub height: u32,
}

impl FromStr for ScreenSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT, e.g. 1920x1080"))?;
        let parse = |v: &str| v.trim().parse::<u32>().map_err(|_| format!("{v:?} is not a number"));
        let (width, height) = (parse(w)?, parse(h)?);
        // H.264 4:2:0 needs even dimensions; 8K is the largest an encoder level allows.
        if !(64..=7680).contains(&width) || !(64..=4320).contains(&height) {
            return Err(format!("{width}x{height} is outside 64x64..7680x4320"));
        }
        if width % 2 != 0 || height % 2 != 0 {
            return Err(format!("{width}x{height}: width and height must be even for H.264"));
        }
        Ok(Self { width, height })
    }
}

impl fmt::Display for ScreenSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}
