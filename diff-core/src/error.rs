//! Typed errors of the library. Every message is one line and names what failed
//! (which side, host and port, database, table); none ever contains a password.

use std::fmt;

/// Which database a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SideName {
    /// The database the branch was made from.
    Parent,
    /// The branch.
    Child,
}

impl fmt::Display for SideName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SideName::Parent => "parent",
            SideName::Child => "child",
        })
    }
}

/// Everything that can go wrong while diffing. `Display` (and `Debug`, so
/// that `fn main() -> Result<(), Error>` prints it well) is one line.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A connection string or option could not be understood.
    #[error("invalid connection string for {side}: {message}")]
    ConnString {
        /// Side the string was given for.
        side: SideName,
        /// What is wrong with it.
        message: String,
    },
    /// The server could not be reached or refused us.
    #[error("cannot connect to {side} {endpoint}: {message}")]
    Connect {
        /// Side.
        side: SideName,
        /// `user@host:port/dbname`, never with a password.
        endpoint: String,
        /// Server or network message.
        message: String,
    },
    /// A query failed on one side.
    #[error("{side} {endpoint}: {context}: {message}")]
    Query {
        /// Side.
        side: SideName,
        /// `user@host:port/dbname`.
        endpoint: String,
        /// What we were doing (e.g. `reading table public.orders`).
        context: String,
        /// Server message.
        message: String,
    },
    /// The COPY stream did not have the shape PostgreSQL documents.
    #[error("{side} {endpoint}: malformed COPY data for {table}: {message}")]
    Protocol {
        /// Side.
        side: SideName,
        /// `user@host:port/dbname`.
        endpoint: String,
        /// Qualified table name.
        table: String,
        /// What was malformed.
        message: String,
    },
    /// Rows that must be unique by the key repeat it (a `--key` over duplicate values).
    #[error(
        "{side} {endpoint}: the key of {table} is not unique: ({key}) appears more than once; \
         choose columns that identify a row with --key"
    )]
    DuplicateKey {
        /// Side.
        side: SideName,
        /// `user@host:port/dbname`.
        endpoint: String,
        /// Qualified table name.
        table: String,
        /// The repeated key, `col=value, …`.
        key: String,
    },
    /// An option names something that does not exist or cannot be used.
    #[error("{0}")]
    Options(String),
    /// A bug: a worker task failed.
    #[error("internal error: {0}")]
    Internal(String),
    /// The consumer of the change stream went away.
    #[error("diff cancelled")]
    Cancelled,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Result with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One-line text of a tokio-postgres error: the server's message when there is one,
/// otherwise the error chain joined with `: `.
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = db.message().to_string();
        if let Some(d) = db.detail() {
            m.push_str(" (");
            m.push_str(d);
            m.push(')');
        }
        return one_line(&m);
    }
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    one_line(&parts.join(": "))
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
