//! The files folder on disk: listing, opening for download, and uploads that appear
//! atomically or not at all.
//!
//! An upload is written to a hidden temporary file in the same folder (same file
//! system, so the final rename is atomic) and only moved to its name once every byte
//! arrived. A refused, failed or abandoned upload (the browser went away, the handler's
//! future was dropped) removes its temporary file in [`Drop`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::name::FileName;
use super::space::{self, NoRoom};

/// Prefix of temporary upload files: hidden, so never listed, and never a valid upload
/// name, so an upload cannot collide with another's temporary file.
const TEMP_PREFIX: &str = ".kelpie-upload-";

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// One file of the folder, as the list shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    /// Last modification, in seconds since the Unix epoch.
    pub modified: u64,
}

/// Why a file operation failed; each maps to one HTTP status in the shell.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0} is not a regular file (a folder, link or device); it cannot be transferred")]
    NotAFile(String),
    #[error("the file is larger than this server's upload limit of {}", human_size(*.0))]
    TooLarge(u64),
    #[error("the disk holding {} is full: {}", .0.display(), .1)]
    DiskFull(PathBuf, io::Error),
    #[error("{0}")]
    NoRoom(NoRoom),
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: io::Error },
}

/// `1.5 GiB`, `800 KiB`, `12 bytes`: for messages people read.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = "";
    for u in UNITS {
        value /= 1024.0;
        unit = u;
        if value < 1024.0 {
            break;
        }
    }
    let text = format!("{value:.1}");
    format!("{} {unit}", text.trim_end_matches(".0"))
}

/// Whether a write failed because the disk (or the user's quota) is full.
pub fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// The shared folder, its per-upload limit and its optional quota.
#[derive(Clone, Debug)]
pub struct FileShare {
    dir: PathBuf,
    max_bytes: u64,
    quota: Option<u64>,
}

impl FileShare {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self { dir, max_bytes, quota: None }
    }

    /// The most the folder's files may add up to (`--files-quota`).
    pub fn with_quota(mut self, quota: Option<u64>) -> Self {
        self.quota = quota;
        self
    }

    /// Whether an upload of `declared` bytes (unknown: `None`) fits the limit, the quota
    /// and the disk now; `Ok` holds the most it may write ([`space::admit`]).
    pub async fn room(&self, declared: Option<u64>) -> Result<u64, StoreError> {
        let dir = self.dir.clone();
        let measured = tokio::task::spawn_blocking(move || {
            let used: u64 = list_blocking(&dir)?.iter().map(|e| e.size).sum();
            let free = space::free_bytes(&dir).map_err(|source| StoreError::Io {
                what: "cannot read the free space of",
                path: dir.clone(),
                source,
            })?;
            Ok::<_, StoreError>((used, free))
        })
        .await
        .unwrap_or_else(|e| {
            Err(StoreError::Io { what: "measuring panicked in", path: self.dir.clone(), source: io::Error::other(e) })
        })?;
        let (used, free) = measured;
        space::admit(declared, self.max_bytes, self.quota, used, free).map_err(StoreError::NoRoom)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Creates the folder if missing (also before each upload: it may have been deleted).
    pub fn ensure_dir(&self) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| StoreError::Io {
            what: "cannot create the files folder",
            path: self.dir.clone(),
            source,
        })
    }

    /// Removes temporary files of uploads whose Kelpie is gone (killed mid-upload, so its
    /// own clean-up never ran); another running Kelpie's uploads in the same folder stay.
    /// Returns how many were removed.
    pub fn sweep_stale_uploads(&self) -> usize {
        let Ok(items) = std::fs::read_dir(&self.dir) else { return 0 };
        let mut removed = 0;
        for item in items.flatten() {
            let name = item.file_name();
            let Some(pid) = name.to_str().and_then(upload_owner) else { continue };
            if pid != std::process::id() && !process_alive(pid) && std::fs::remove_file(item.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    fn path_of(&self, name: &FileName) -> PathBuf {
        self.dir.join(name.as_str())
    }

    /// Regular files with acceptable names, newest first. Links are not followed, so a
    /// symlink pointing out of the folder is neither listed nor served.
    pub async fn list(&self) -> Result<Vec<Entry>, StoreError> {
        let dir = self.dir.clone();
        let listed = tokio::task::spawn_blocking(move || list_blocking(&dir)).await;
        listed.unwrap_or_else(|e| {
            Err(StoreError::Io { what: "listing panicked in", path: self.dir.clone(), source: io::Error::other(e) })
        })
    }

    /// Opens a file for download: `(file, length)`. Refuses links and anything that is
    /// not a regular file (a FIFO would block the reader forever).
    pub async fn open(&self, name: &FileName) -> Result<(tokio::fs::File, u64), StoreError> {
        let path = self.path_of(name);
        let opened = tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .await;
        let file = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound(name.to_string())),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(StoreError::NotAFile(name.to_string())),
            Err(source) => return Err(StoreError::Io { what: "cannot open", path, source }),
        };
        let meta = file.metadata().await.map_err(|source| StoreError::Io { what: "cannot read", path, source })?;
        if !meta.is_file() {
            return Err(StoreError::NotAFile(name.to_string()));
        }
        Ok((file, meta.len()))
    }

    /// Whether something (of any kind) already has this name.
    pub fn exists(&self, name: &FileName) -> bool {
        std::fs::symlink_metadata(self.path_of(name)).is_ok()
    }

    /// Starts an upload of at most `allowance` bytes (from [`FileShare::room`]); nothing is
    /// visible under `name` until [`Upload::finish`].
    pub async fn begin_upload(&self, name: &FileName, overwrite: bool, allowance: u64) -> Result<Upload, StoreError> {
        self.ensure_dir()?;
        let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!("{TEMP_PREFIX}{}-{n}.part", std::process::id()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .await
            .map_err(|source| write_error(&self.dir, "cannot create a temporary file in", source))?;
        Ok(Upload {
            name: name.clone(),
            dir: self.dir.clone(),
            dest: self.path_of(name),
            tmp,
            file: Some(file),
            written: 0,
            limit: allowance.min(self.max_bytes),
            max_bytes: self.max_bytes,
            overwrite,
            done: false,
        })
    }
}

/// The process id in an upload's temporary file name (`.kelpie-upload-PID-N.part`).
fn upload_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?.strip_suffix(".part")?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    // Signal 0 checks existence only; EPERM means it exists but is someone else's.
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 sends nothing.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

fn write_error(dir: &Path, what: &'static str, source: io::Error) -> StoreError {
    if is_disk_full(&source) {
        StoreError::DiskFull(dir.to_path_buf(), source)
    } else {
        StoreError::Io { what, path: dir.to_path_buf(), source }
    }
}

fn list_blocking(dir: &Path) -> Result<Vec<Entry>, StoreError> {
    let io_err = |source| StoreError::Io { what: "cannot list", path: dir.to_path_buf(), source };
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir).map_err(io_err)? {
        let Ok(item) = item else { continue };
        // DirEntry::file_type does not follow symlinks.
        if !item.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Some(name) = item.file_name().to_str().and_then(|n| FileName::parse(n).ok()) else { continue };
        let Ok(meta) = item.metadata() else { continue };
        let modified = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
        entries.push(Entry { name: name.to_string(), size: meta.len(), modified });
    }
    entries.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| a.name.cmp(&b.name)));
    Ok(entries)
}

/// An upload in progress. Dropping it unfinished removes the temporary file.
pub struct Upload {
    name: FileName,
    dir: PathBuf,
    dest: PathBuf,
    tmp: PathBuf,
    file: Option<tokio::fs::File>,
    written: u64,
    limit: u64,
    max_bytes: u64,
    overwrite: bool,
    done: bool,
}

/// How an upload ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    /// Whether an existing file was replaced (with overwrite).
    pub replaced: bool,
}

impl Upload {
    /// Appends a chunk; refuses the chunk that would pass the limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        if self.written.saturating_add(chunk.len() as u64) > self.limit {
            return Err(if self.limit == self.max_bytes {
                StoreError::TooLarge(self.limit)
            } else {
                StoreError::NoRoom(NoRoom::Room(self.limit))
            });
        }
        let Some(file) = self.file.as_mut() else {
            return Err(StoreError::Io {
                what: "upload already finished in",
                path: self.dir.clone(),
                source: io::Error::other("closed"),
            });
        };
        file.write_all(chunk).await.map_err(|e| write_error(&self.dir, "cannot write to", e))?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Flushes to disk and moves the file to its name: atomically, and without replacing
    /// an existing file unless the upload asked to overwrite.
    pub async fn finish(mut self) -> Result<Stored, StoreError> {
        if let Some(mut file) = self.file.take() {
            file.flush().await.map_err(|e| write_error(&self.dir, "cannot write to", e))?;
            file.sync_all().await.map_err(|e| write_error(&self.dir, "cannot write to", e))?;
        }
        let (tmp, dest, overwrite) = (self.tmp.clone(), self.dest.clone(), self.overwrite);
        let placed = tokio::task::spawn_blocking(move || place(&tmp, &dest, overwrite)).await;
        let replaced = match placed {
            Ok(Ok(replaced)) => replaced,
            Ok(Err(e)) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists(self.name.to_string()));
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::IsADirectory => {
                return Err(StoreError::NotAFile(self.name.to_string()));
            }
            Ok(Err(e)) => return Err(write_error(&self.dir, "cannot store the upload in", e)),
            Err(e) => return Err(write_error(&self.dir, "storing panicked in", io::Error::other(e))),
        };
        self.done = true;
        Ok(Stored { size: self.written, replaced })
    }
}

/// Moves `tmp` to `dest`; returns whether something was replaced. Without `overwrite`,
/// a hard link claims the name atomically (it fails if the name exists, unlike rename);
/// file systems without hard links fall back to check-then-rename.
fn place(tmp: &Path, dest: &Path, overwrite: bool) -> io::Result<bool> {
    let existed = std::fs::symlink_metadata(dest).is_ok();
    if overwrite {
        std::fs::rename(tmp, dest)?;
        return Ok(existed);
    }
    match std::fs::hard_link(tmp, dest) {
        Ok(()) => {
            std::fs::remove_file(tmp)?;
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if existed => Err(io::ErrorKind::AlreadyExists.into()),
        Err(_) => {
            std::fs::rename(tmp, dest)?;
            Ok(false)
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.done {
            self.file.take();
            if let Err(e) = std::fs::remove_file(&self.tmp) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.tmp.display(), "cannot remove an unfinished upload: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_upload_temporaries_name_an_owner() {
        assert_eq!(upload_owner(".kelpie-upload-123-4.part"), Some(123));
        assert_eq!(upload_owner(".kelpie-upload-123-4.partx"), None);
        assert_eq!(upload_owner("report.part"), None);
        assert_eq!(upload_owner(".kelpie-upload-abc-4.part"), None);
        assert_eq!(upload_owner(".kelpie-upload-123.part"), None);
    }

    /// A fresh empty folder under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> Self {
            let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("kelpie-files-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    fn name(s: &str) -> FileName {
        FileName::parse(s).unwrap()
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(12), "12 bytes");
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(1536 << 20), "1.5 GiB");
    }

    #[tokio::test]
    async fn a_finished_upload_appears_under_its_name_only() {
        let d = TempDir::new("finish");
        let share = FileShare::new(d.0.join("Desktop"), 100);
        let mut up = share.begin_upload(&name("a.txt"), false, u64::MAX).await.unwrap();
        up.write(b"hello ").await.unwrap();
        up.write(b"world").await.unwrap();
        assert_eq!(up.finish().await.unwrap(), Stored { size: 11, replaced: false });
        assert_eq!(std::fs::read(d.0.join("Desktop/a.txt")).unwrap(), b"hello world");
        assert_eq!(names_in(share.dir()), ["a.txt"]);
    }

    #[tokio::test]
    async fn an_upload_over_the_limit_fails_and_leaves_nothing() {
        let d = TempDir::new("limit");
        let share = FileShare::new(d.0.clone(), 8);
        let mut up = share.begin_upload(&name("big"), false, u64::MAX).await.unwrap();
        up.write(b"12345").await.unwrap();
        assert!(matches!(up.write(b"6789").await, Err(StoreError::TooLarge(8))));
        drop(up);
        assert!(names_in(&d.0).is_empty());
    }

    #[tokio::test]
    async fn an_existing_file_is_kept_unless_overwrite_is_asked() {
        let d = TempDir::new("exists");
        std::fs::write(d.0.join("f"), b"old").unwrap();
        let share = FileShare::new(d.0.clone(), 100);
        let mut up = share.begin_upload(&name("f"), false, u64::MAX).await.unwrap();
        up.write(b"new").await.unwrap();
        assert!(matches!(up.finish().await, Err(StoreError::Exists(_))));
        assert_eq!(std::fs::read(d.0.join("f")).unwrap(), b"old");
        assert_eq!(names_in(&d.0), ["f"]);

        let mut up = share.begin_upload(&name("f"), true, u64::MAX).await.unwrap();
        up.write(b"new").await.unwrap();
        assert_eq!(up.finish().await.unwrap(), Stored { size: 3, replaced: true });
        assert_eq!(std::fs::read(d.0.join("f")).unwrap(), b"new");
    }

    #[tokio::test]
    async fn the_list_holds_regular_visible_files_but_no_links_or_folders() {
        let d = TempDir::new("list");
        let outside = TempDir::new("outside");
        std::fs::write(outside.0.join("secret"), b"x").unwrap();
        std::fs::write(d.0.join("shown.txt"), b"abc").unwrap();
        std::fs::write(d.0.join(".hidden"), b"x").unwrap();
        std::fs::create_dir(d.0.join("folder")).unwrap();
        std::os::unix::fs::symlink(outside.0.join("secret"), d.0.join("link")).unwrap();
        let share = FileShare::new(d.0.clone(), 100);
        let list = share.list().await.unwrap();
        assert_eq!(list.iter().map(|e| (e.name.as_str(), e.size)).collect::<Vec<_>>(), [("shown.txt", 3)]);
        assert!(matches!(share.open(&name("link")).await, Err(StoreError::NotAFile(_))));
        assert!(matches!(share.open(&name("folder")).await, Err(StoreError::NotAFile(_))));
        assert!(matches!(share.open(&name("nope")).await, Err(StoreError::NotFound(_))));
        assert_eq!(share.open(&name("shown.txt")).await.unwrap().1, 3);
    }

    #[test]
    fn disk_full_errors_are_recognised() {
        assert!(is_disk_full(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_disk_full(&io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_disk_full(&io::Error::from_raw_os_error(libc::EACCES)));
    }
}
