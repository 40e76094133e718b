//! The C heap as glibc's allocator sees it: bytes handed out and bytes it holds free.
//!
//! Why: Kelpie's memory is mostly GStreamer's and libnice's, allocated with `malloc` from
//! many threads. When RSS grows over many viewer sessions (`make soak`), these two figures
//! say whether the memory is still in use (a leak: `in_use` grows) or freed but kept by
//! the allocator (fragmentation: `free` grows). `/health` reports them.
//!
//! It also sets the heap up, first thing in `main` ([`tune_for_a_long_run`]).

use std::sync::atomic::{AtomicBool, Ordering};

/// Kelpie set `G_SLICE` itself (so its children must not inherit it).
static SET_G_SLICE: AtomicBool = AtomicBool::new(false);

/// Marks the second start that [`tune_for_a_long_run`] makes, so that it makes only one.
const RESTARTED_MARK: &str = "GSLICE_SET_BY_KELPIE";

/// Tunes the C heap for a server that many viewers come to and leave. Call first in
/// `main`, while it is the only thread (it changes the environment and malloc's tunables).
///
/// - glibc gives threads that allocate at once arenas of their own, up to eight per core,
///   and GStreamer runs a dozen streaming threads: their arenas' freed pages stay
///   resident. Two arenas took the peak RSS at 1080p60 with one viewer from 98.9 to
///   94.0 MB, at no measurable CPU cost (docs/benchmarks.md, 2026-12-07).
/// - GLib 2.74 (Debian 12) still has its slice allocator, which GStreamer uses for every
///   buffer, event and structure. It keeps freed slices in per-thread magazines and does
///   not hand their pages back, and every viewer session's threads leave some behind:
///   `make soak` grew 29 MB over 99 sessions with it and 11 MB with
///   `G_SLICE=always-malloc`, the heap in use flat (docs/reliability.md, 2026-12-07).
///   GLib 2.76 dropped the slice allocator for plain malloc; this does the same here.
///   GLib reads `G_SLICE` as it is loaded (its constructors already slice), before `main`
///   runs, so Kelpie starts itself once more (`exec`, same PID, same arguments) with it
///   set. If that fails, it goes on with GLib's slices.
///
/// `MALLOC_ARENA_MAX` and `G_SLICE`, when set, still decide.
pub fn tune_for_a_long_run() {
    if std::env::var_os(RESTARTED_MARK).is_some() {
        std::env::remove_var(RESTARTED_MARK);
        SET_G_SLICE.store(true, Ordering::Relaxed);
    } else if std::env::var_os("G_SLICE").is_none() {
        use std::os::unix::process::CommandExt as _;
        let mut args = std::env::args_os();
        // The real path, not /proc/self/exe: the process's name (ps, pgrep, top) comes
        // from the file the exec names.
        let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
        let mut again = std::process::Command::new(exe);
        if let Some(name) = args.next() {
            again.arg0(name);
        }
        // Returns only if the exec failed; otherwise the new image tunes malloc below.
        let _ = again.args(args).env("G_SLICE", "always-malloc").env(RESTARTED_MARK, "1").exec();
    }
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes an allocator tunable; no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Variables Kelpie set for itself that the desktop's programs must not inherit.
pub fn own_variables() -> &'static [&'static str] {
    if SET_G_SLICE.load(Ordering::Relaxed) {
        &["G_SLICE"]
    } else {
        &[]
    }
}

/// Bytes of the C heap, from `mallinfo2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HeapFigures {
    /// Allocated and not freed, in the arenas and in separate mappings.
    pub in_use_bytes: u64,
    /// Freed, but still held by the arenas (fast bins included).
    pub free_bytes: u64,
    /// Of `free_bytes`, what `malloc_trim` could hand back from the top of the main arena.
    pub trimmable_bytes: u64,
    /// Large allocations made as their own mappings (part of `in_use_bytes`).
    pub mmapped_bytes: u64,
}

/// The heap's figures now; `None` where the C library is not glibc.
pub fn figures() -> Option<HeapFigures> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and only reads the allocator's bookkeeping
        // (under its locks); it returns a plain struct.
        let m = unsafe { libc::mallinfo2() };
        Some(from_mallinfo(m.uordblks as u64, m.hblkhd as u64, m.fordblks as u64, m.keepcost as u64))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// The figures from mallinfo's fields (pure): `uordblks` (in use in the arenas),
/// `hblkhd` (mapped separately), `fordblks` (free in the arenas, fast bins included) and
/// `keepcost` (the trimmable top).
pub fn from_mallinfo(uordblks: u64, hblkhd: u64, fordblks: u64, keepcost: u64) -> HeapFigures {
    HeapFigures {
        in_use_bytes: uordblks + hblkhd,
        free_bytes: fordblks,
        trimmable_bytes: keepcost,
        mmapped_bytes: hblkhd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_blocks_count_as_in_use() {
        let f = from_mallinfo(1000, 500, 300, 100);
        assert_eq!(f, HeapFigures { in_use_bytes: 1500, free_bytes: 300, trimmable_bytes: 100, mmapped_bytes: 500 });
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn an_allocation_shows_in_use() {
        // 64 MiB: above glibc's largest mmap threshold, so its own mapping whatever the
        // process did before; half of it is the margin for other tests freeing meanwhile.
        let before = figures().unwrap();
        let block = std::hint::black_box(vec![0u8; 64 << 20]);
        let during = figures().unwrap();
        assert!(during.in_use_bytes >= before.in_use_bytes + (32 << 20), "{before:?} → {during:?}");
        assert!(during.mmapped_bytes >= before.mmapped_bytes + (32 << 20), "{before:?} → {during:?}");
        drop(block);
    }
}
