//! Where a report goes. A file is written under a temporary name beside it
//! and renamed into place only once the report is complete: a failed run
//! leaves no file that looks like a report.

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

    /// A writer for the sink.
    pub fn writer(&self) -> Result<Box<dyn Write>> {
        Ok(match self {
            Output::Stdout => Box::new(io::BufWriter::new(Stdout)),
            Output::File { path, staged } => Box::new(io::BufWriter::new(
                staged.reopen().with_context(|| format!("cannot write {}", path.display()))?,
            )),
        })
    }

    /// Puts the finished file in place.
    pub fn commit(self) -> Result<()> {
        if let Output::File { path, staged } = self {
            staged.persist(&path).map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
        }
        Ok(())
    }

    /// What a failed write means here: a closed pipe on stdout (`| head`) is
    /// not worth a message; a failed file write is.
    pub fn write_error(&self, e: io::Error) -> Result<()> {
        match self {
            Output::Stdout if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Output::Stdout => Err(anyhow::anyhow!("cannot write the report: {e}")),
            Output::File { path, .. } => Err(anyhow::anyhow!("cannot write {}: {e}", path.display())),
        }
    }
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
