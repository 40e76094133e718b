//! Children that go when Kelpie goes, however it goes.
//!
//! Kelpie stops its embedded Xvfb, PulseAudio and session itself on a normal exit or a
//! signal it can catch. A SIGKILL (the OOM killer, `kill -9`, a test harness, a batch
//! scheduler's hard limit) gives it no chance: the X server and the sound server were left
//! running, reparented to init, holding the display number, the cookie's socket and
//! memory. The kernel's parent-death signal covers that case: the child asks, between fork
//! and exec, to be sent SIGTERM when its parent goes.
//!
//! Linux sends it when the **thread** that forked the child exits, not the process. So
//! spawn these children only from a thread that lives as long as they should: Kelpie's
//! main thread (which runs the whole server), or a supervisor thread that stops its child
//! before it ends. Never from a tokio worker or blocking-pool thread, which the runtime
//! may retire while the child should still run.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

pub(crate) trait DiesWithKelpie {
    /// The child gets SIGTERM when the spawning thread (see the module's note) exits.
    fn die_with_kelpie(&mut self) -> &mut Self;
}

impl DiesWithKelpie for Command {
    fn die_with_kelpie(&mut self) -> &mut Self {
        let parent = std::process::id();
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: prctl and getppid are system calls that
        // allocate nothing and take no lock.
        unsafe {
            self.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Kelpie died between fork and the prctl: the signal will never come.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::other("Kelpie exited while starting this program"));
                }
                Ok(())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A child spawned from a thread that then ends is sent SIGTERM: the same path as a
    /// SIGKILLed Kelpie, where every thread ends at once.
    #[test]
    fn a_child_is_terminated_when_its_spawning_thread_ends() {
        let child =
            std::thread::spawn(|| Command::new("sleep").arg("600").die_with_kelpie().spawn().expect("sleep starts"))
                .join()
                .unwrap();
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the child outlived the thread that spawned it");
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }

    /// Without the request, the same child lives on (so the test above shows the request).
    #[test]
    fn without_it_the_child_outlives_its_spawning_thread() {
        let mut child =
            std::thread::spawn(|| Command::new("sleep").arg("600").spawn().expect("sleep starts")).join().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let alive = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        assert!(alive, "a plain child died with its spawning thread");
    }
}
