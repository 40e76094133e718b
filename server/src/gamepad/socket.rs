//! The Unix socket apps' preload library connects to: one connection per opened device.
//!
//! Only this user can connect: the socket is 0600 in a directory that must be this
//! user's alone (created 0700 when it is Kelpie's default), and each peer's uid is checked
//! as well. Everything a client sends is bounded: a greeting of at most 248 bytes within
//! two seconds, then whatever an app writes to its "device" (LEDs, force feedback) is read
//! and thrown away, up to 64 KiB; at most 64 clients at once.

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kelpie_gamepad::hello::{self, Hello, HelloError};
use tokio::io::AsyncReadExt as _;
use tokio::net::{UnixListener, UnixStream};

use super::hub::Sink;
use super::{now, Shared};

/// Clients at once: four pads, two kinds, and room for apps that probe every device.
pub const MAX_CLIENTS: usize = 64;
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);
/// What a client may write after its greeting before it is dropped.
const MAX_CLIENT_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GamepadError {
    #[error("cannot create the gamepad socket's directory {dir}: {why}")]
    Dir { dir: PathBuf, why: io::Error },
    #[error(
        "the gamepad socket's directory {dir} is not private to this user ({why}); remove it or pass --gamepad-socket"
    )]
    NotPrivate { dir: PathBuf, why: String },
    #[error("another Kelpie already serves gamepads at {0}; stop it, or pass --gamepad-socket")]
    InUse(PathBuf),
    #[error("cannot listen on the gamepad socket {path}: {why}")]
    Bind { path: PathBuf, why: io::Error },
}

/// Makes sure `dir` exists, is a directory (not a link to one), is ours and admits nobody
/// else; creates it 0700 if it is missing.
pub fn ensure_private_dir(dir: &Path) -> Result<(), GamepadError> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(why) => return Err(GamepadError::Dir { dir: dir.to_path_buf(), why }),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|why| GamepadError::Dir { dir: dir.to_path_buf(), why })?;
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let why = if !meta.is_dir() {
        Some("not a directory".to_string())
    } else if meta.uid() != uid {
        Some(format!("owned by uid {}", meta.uid()))
    } else if meta.mode() & 0o077 != 0 {
        Some(format!("mode {:o}", meta.mode() & 0o777))
    } else {
        None
    };
    match why {
        Some(why) => Err(GamepadError::NotPrivate { dir: dir.to_path_buf(), why }),
        None => Ok(()),
    }
}

/// Binds `path`, replacing a stale socket left by a Kelpie that died, but not a live one.
pub fn bind(path: &Path) -> Result<UnixListener, GamepadError> {
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(GamepadError::InUse(path.to_path_buf()));
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path).map_err(|why| GamepadError::Bind { path: path.to_path_buf(), why })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|why| GamepadError::Bind { path: path.to_path_buf(), why })?;
    Ok(listener)
}

/// Accepts until the task is aborted.
pub async fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("gamepad socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::debug!("gamepad socket: {MAX_CLIENTS} clients already; closing a new one");
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, &shared).await {
                tracing::debug!("gamepad client: {e}");
            }
            drop(permit);
        });
    }
}

#[derive(Debug, thiserror::Error)]
enum ClientError {
    #[error("peer uid {0} is not this user's")]
    Foreign(u32),
    #[error("no greeting within {}s", HELLO_TIMEOUT.as_secs())]
    Slow,
    #[error("bad greeting: {0}")]
    Hello(HelloError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

async fn serve(mut stream: UnixStream, shared: &Shared) -> Result<(), ClientError> {
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    let cred = stream.peer_cred()?;
    if cred.uid() != me {
        return Err(ClientError::Foreign(cred.uid()));
    }
    let app = describe_peer(cred.pid());
    let greeting =
        tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut stream)).await.map_err(|_| ClientError::Slow)??;
    match greeting {
        Hello::Report(text) => {
            shared.report(text);
            Ok(())
        }
        Hello::Open(device) => {
            let std_stream = stream.into_std()?;
            let writer = std_stream.try_clone()?;
            writer.set_nonblocking(true)?;
            let Some(id) = shared.lock().add_reader(device, Box::new(SocketSink(writer)), now()) else {
                return Ok(());
            };
            tracing::info!(device = device.path(), app, "an app opened gamepad {}", device.pad + 1);
            let mut stream = UnixStream::from_std(std_stream)?;
            // Until the app closes it: what it writes (LEDs, rumble) has nowhere to go.
            let mut buf = [0u8; 512];
            let mut total = 0usize;
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                total += n;
                if total > MAX_CLIENT_BYTES {
                    break;
                }
            }
            shared.lock().remove_reader(id);
            tracing::debug!(device = device.path(), app, "an app closed gamepad {}", device.pad + 1);
            Ok(())
        }
    }
}

/// "name (pid N)" of a peer process, for the log.
fn describe_peer(pid: Option<i32>) -> String {
    let Some(pid) = pid else { return "unknown".into() };
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("{} (pid {pid})", name.trim())
}

async fn read_hello(stream: &mut UnixStream) -> Result<Hello, ClientError> {
    let mut buf = Vec::with_capacity(hello::HEADER + hello::MAX_REPORT);
    let mut chunk = [0u8; hello::HEADER + hello::MAX_REPORT];
    loop {
        match hello::parse(&buf) {
            Ok(h) => return Ok(h),
            Err(HelloError::NeedMore(n)) if n <= chunk.len() => {
                let got = stream.read(&mut chunk[..n - buf.len()]).await?;
                if got == 0 {
                    return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                buf.extend_from_slice(&chunk[..got]);
            }
            Err(e) => return Err(ClientError::Hello(e)),
        }
    }
}

/// A reader's socket: non-blocking, and shut down when the hub lets go of it, so the app
/// reads end-of-file instead of waiting for events that will not come.
struct SocketSink(std::os::unix::net::UnixStream);

impl Sink for SocketSink {
    fn try_send(&mut self, bytes: &[u8]) -> bool {
        use std::io::Write as _;
        matches!(self.0.write(bytes), Ok(n) if n == bytes.len())
    }
}

impl Drop for SocketSink {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kelpie-pad-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn a_missing_directory_is_created_private_and_an_open_one_refused() {
        let base = scratch("dir");
        let dir = base.join("kelpie");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        ensure_private_dir(&dir).expect("ours and private: accepted again");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private_dir(&dir).unwrap_err();
        assert!(err.to_string().contains("mode 755"), "{err}");
        // A symbolic link to a private directory is not the directory.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(ensure_private_dir(&link).unwrap_err().to_string().contains("not a directory"));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
        let base = scratch("bind");
        let path = base.join("pad.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let live = bind(&path).expect("a stale socket file is replaced");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(matches!(bind(&path), Err(GamepadError::InUse(_))));
        drop(live);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
