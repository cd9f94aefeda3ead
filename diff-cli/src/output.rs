//! Where a report goes. A file is written under a temporary name beside it
//! and renamed into place only once the report is complete: a failed run
//! leaves no file that looks like a report. A directory report (Arrow) is
//! staged the same way, as a temporary directory beside its path.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Standard output, or a file being written.
pub enum Output {
    /// Standard output (a closed pipe is not an error).
    Stdout,
    /// A file, staged under a temporary name in the same directory.
    File {
        /// Final path.
        path: PathBuf,
        /// The staged file, renamed to `path` by [`Output::commit`].
        staged: tempfile::NamedTempFile,
    },
    /// A directory of files (`--format arrow`), staged as a temporary
    /// directory beside it and renamed into place by [`Output::commit`].
    Dir {
        /// Final path.
        path: PathBuf,
        /// The staged directory, removed if the run fails.
        staged: tempfile::TempDir,
    },
}

impl Output {
    /// Opens the destination: `None` is standard output.
    pub fn open(path: Option<&Path>) -> Result<Output> {
        let Some(path) = path else { return Ok(Output::Stdout) };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let staged = tempfile::Builder::new()
            .prefix(".pgbranchdiff-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot write {}", path.display()))?;
        // A report is an ordinary file, not a private temporary one.
        use std::os::unix::fs::PermissionsExt;
        let _ = staged.as_file().set_permissions(std::fs::Permissions::from_mode(0o644));
        Ok(Output::File { path: path.to_path_buf(), staged })
    }

    /// Opens a directory destination for a report of several files. `path`
    /// may exist only as a previous report of the same kind (`is_report`
    /// says whether a directory is one): anything else is refused, never
    /// deleted.
    pub fn open_dir(path: &Path, is_report: impl Fn(&Path) -> std::io::Result<bool>) -> Result<Output> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                let ours = is_report(path).with_context(|| format!("cannot read {}", path.display()))?;
                if !ours {
                    anyhow::bail!(
                        "{} exists and is not an Arrow report of pgbranchdiff: not replacing it (choose another --output)",
                        path.display()
                    );
                }
            }
            Ok(_) => anyhow::bail!("{} exists and is not a directory: not replacing it", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
        }
        let staged = tempfile::Builder::new()
            .prefix(".pgbranchdiff-")
            .tempdir_in(parent_dir(path))
            .with_context(|| format!("cannot write {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(staged.path(), std::fs::Permissions::from_mode(0o755));
        Ok(Output::Dir { path: path.to_path_buf(), staged })
    }

    /// The staged directory of a directory report.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Output::Dir { staged, .. } => Some(staged.path()),
            _ => None,
        }
    }

    /// A writer for the sink.
    pub fn writer(&self) -> Result<Box<dyn Write>> {
        Ok(match self {
            Output::Stdout => Box::new(io::BufWriter::new(Stdout)),
            Output::File { path, staged } => Box::new(io::BufWriter::new(
                staged.reopen().with_context(|| format!("cannot write {}", path.display()))?,
            )),
            Output::Dir { path, .. } => anyhow::bail!("{} is a directory report", path.display()),
        })
    }

    /// Puts the finished file in place.
    pub fn commit(self) -> Result<()> {
        if let Output::File { path, staged } = self {
            staged.persist(&path).map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
        } else if let Output::Dir { path, staged } = self {
            commit_dir(&path, staged)?;
        }
        Ok(())
    }

    /// What a failed write means here: a closed pipe on stdout (`| head`) is
    /// not worth a message; a failed file write is.
    pub fn write_error(&self, e: io::Error) -> Result<()> {
        match self {
            Output::Stdout if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Output::Stdout => Err(anyhow::anyhow!("cannot write the report: {e}")),
            Output::File { path, .. } | Output::Dir { path, .. } => {
                Err(anyhow::anyhow!("cannot write {}: {e}", path.display()))
            }
        }
    }
}

/// The directory a path is in (`.` for a bare name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Renames the staged directory to `path`. A previous report there (checked
/// when it was opened) is first moved aside under a temporary name, then removed.
fn commit_dir(path: &Path, staged: tempfile::TempDir) -> Result<()> {
    let fail = |e: io::Error| anyhow::anyhow!("cannot write {}: {e}", path.display());
    let old = if path.exists() {
        let aside = tempfile::Builder::new().prefix(".pgbranchdiff-old-").tempdir_in(parent_dir(path)).map_err(fail)?;
        let aside = aside.keep();
        std::fs::rename(path, &aside).map_err(fail)?;
        Some(aside)
    } else {
        None
    };
    let staged = staged.keep();
    if let Err(e) = std::fs::rename(&staged, path) {
        // Put the previous report back; the new one is not complete where it should be.
        if let Some(old) = &old {
            let _ = std::fs::rename(old, path);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(fail(e));
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

/// Standard output, locked per write (the sink may outlive a lock guard).
struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stdout().lock().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().lock().flush()
    }
}
