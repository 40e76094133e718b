//! Adaptive quality: per-viewer bandwidth estimates ([`estimate`]) and the policy that
//! turns them into the one shared encoder's bitrate and frame rate ([`policy`]). Pure
//! logic; `media` feeds it what the browsers report and carries out its decisions.

pub mod estimate;
pub mod policy;
