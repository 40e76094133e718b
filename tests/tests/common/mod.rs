//! The shared process harness (see `kelpie_tests::harness`).

pub use kelpie_tests::harness::*;
