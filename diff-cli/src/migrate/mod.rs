//! Running a migration against a branch database and reporting on it: SQL
//! files split into statements the way psql does and executed one by one
//! (stopping at the first error), or any migration tool run as a command; the
//! time each took, the locks it held (sampled from a second connection), the
//! tables it rewrote, and when it fails on the data, the rows that made it fail.
//!
//! This module writes to the branch it is given — that is its purpose — and
//! is kept out of `diff-core`, which never writes.

mod command;
mod duration;
mod execute;
mod explain;
mod locks;
mod render;
mod report;
mod rewrites;
mod source;
pub mod split;

use std::path::PathBuf;
use std::time::Duration;

pub(crate) use command::database_url;
pub use duration::parse_duration;
pub use report::{
    Blocker, Explanation, Failure, FailureKind, LockHeld, LockHolder, LockSummary, LockWait, MigrationReport, Rewrite,
    StatementReport,
};

/// Settings for running a migration.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// `lock_timeout` for the migration's session (files only; a command sets its own).
    pub lock_timeout: Option<Duration>,
    /// `statement_timeout` for the migration's session (files only).
    pub statement_timeout: Option<Duration>,
    /// The budget: the migration is stopped and the check fails once it runs longer.
    pub max_duration: Option<Duration>,
    /// A command's output is echoed with its quoted values, key values and
    /// failing rows hidden, line by line (`--redact` is in force).
    pub redact_output: bool,
}

/// What to run.
#[derive(Debug, Clone)]
pub enum Migration {
    /// SQL files (a directory stands for its `*.sql` files in name order), applied in order.
    Files(Vec<PathBuf>),
    /// A shell command (`sh -c`) with `DATABASE_URL` and `PG*` pointing at the branch.
    Command(String),
    /// SQL text given directly (an agent's `run_sql`): statement locations are
    /// `sql:LINE`, and meta-commands that read files (`\i`) are refused.
    Sql(String),
}

/// Runs the migration on `branch`. Err = trouble (unreadable file, rejected
/// meta-command, cannot connect): exit 2. A migration that fails on the data
/// is Ok with `failure` set. Dropping the future stops the migration (the
/// child process group is killed; the running statement is cancelled) so
/// that cleanup can follow.
pub async fn apply(
    branch: &diff_core::ConnConfig,
    migration: &Migration,
    opts: &MigrateOptions,
) -> anyhow::Result<MigrationReport> {
    match migration {
        Migration::Files(paths) => {
            let steps = source::load(paths)?;
            execute::run(branch, steps, opts).await
        }
        Migration::Command(cmd) => command::run(branch, cmd, opts).await,
        Migration::Sql(text) => execute::run(branch, source::load_text(text)?, opts).await,
    }
}
