//! Where things live on disk, and writing private files.
//!
//! The per-user data directory is `$XDG_DATA_HOME` when it is an absolute path, else
//! `~/.local/share` (on macOS `~/Library/Application Support`); atauth uses `atauth/` in it for the
//! client session and `atauth/server/` for a server's default data directory. Directories that
//! atauth creates are 0700 and files holding secrets 0600, written atomically (temporary file +
//! rename), so a session or key is never readable by other users, not even for a moment.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::CliError;

fn data_home() -> Result<PathBuf, CliError> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Ok(x);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).filter(|p| p.is_absolute()).ok_or_else(|| {
        CliError::Config(
            "cannot find your data directory (HOME is not set): pass --session-dir / --data-dir".into(),
        )
    })?;
    Ok(if cfg!(target_os = "macos") {
        home.join("Library/Application Support")
    } else {
        home.join(".local/share")
    })
}

/// The client commands' default directory: `<data home>/atauth`.
pub(crate) fn default_session_dir() -> Result<PathBuf, CliError> {
    Ok(data_home()?.join("atauth"))
}

/// `atauth serve`'s default data directory: `<data home>/atauth/server`.
pub(crate) fn default_server_dir() -> Result<PathBuf, CliError> {
    Ok(data_home()?.join("atauth").join("server"))
}

/// Creates `dir` (and missing parents) with mode 0700. An existing directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Writes `data` to `path` readable and writable by the owner only (0600), atomically: a temporary
/// file created 0600 in the same directory, synced, then renamed over `path`.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` as an empty file with mode 0600 if it does not exist (so that a database SQLite
/// then opens in it, and its `-wal`/`-shm` files, which SQLite gives the database's mode, are
/// private from the start).
pub(crate) fn precreate_private(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// An exclusive advisory lock on `<dir>/session.lock`, held until dropped, so that two `atauth`
/// processes never refresh or rewrite the same saved session at once (a second refresh with the same
/// refresh token would end the session).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    /// Waits for the lock.
    pub(crate) async fn acquire(dir: &Path) -> Result<Self, CliError> {
        create_private_dir(dir)
            .map_err(|e| CliError::failed(format!("could not create {}", dir.display()), e))?;
        let path = dir.join("session.lock");
        let task = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let mut opts = std::fs::OpenOptions::new();
            opts.read(true).write(true).create(true).truncate(false);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let f = opts.open(&path)?;
            f.lock()?;
            Ok(f)
        });
        let file = task
            .await
            .map_err(|e| CliError::failed("could not lock the session", e))?
            .map_err(|e| CliError::failed("could not lock the session", e))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn private_files_and_dirs_have_owner_only_modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let base = std::env::temp_dir().join(format!("atauth-paths-{}", std::process::id()));
        let dir = base.join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let file = dir.join("secret.json");
        std::fs::write(&file, b"old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&file, b"new").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left behind");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
