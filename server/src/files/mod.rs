//! File transfer between the browser and a folder of the remote desktop (by default
//! `~/Desktop`, so uploads appear where the user looks).
//!
//! | module | job |
//! |---|---|
//! | [`name`] | which names a browser may use (pure policy) |
//! | [`store`] | listing, download opening, atomic uploads on disk |
//! | [`space`] | whether an upload fits the limit, the quota and the disk (pure, plus a statvfs) |
//!
//! The HTTP routes are in `http::files`.

pub mod name;
pub mod space;
pub mod store;

pub use name::{FileName, NameError};
pub use store::{human_size, Entry, FileShare, StoreError, Stored, Upload};
