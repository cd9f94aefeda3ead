//! Command-line arguments, in groups shared by the commands: what a report
//! compares and how it is written ([`ReportArgs`]).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Output formats.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people, on a terminal.
    Text,
    /// One JSON document (docs/output-format.md).
    Json,
    /// For pull-request comments and CI summaries.
    Markdown,
    /// One JSON object a line, as found: for pipelines (docs/output-format.md).
    Ndjson,
    /// A SQL script that makes the parent's rows equal the branch's (docs/output-format.md).
    Sql,
    /// Arrow IPC files in the directory given with --output (docs/output-format.md).
    Arrow,
}

/// When text output is coloured.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// What is compared, how, and how the report is written: shared by every
/// command that produces a diff.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Only tables matching GLOB (`schema.table` or `table`); repeatable.
    #[arg(long = "table", short = 't', value_name = "GLOB")]
    pub tables: Vec<String>,
    /// Skip tables matching GLOB; repeatable.
    #[arg(long = "exclude-table", short = 'T', value_name = "GLOB")]
    pub exclude_tables: Vec<String>,
    /// Only tables in schema NAME; repeatable.
    #[arg(long = "schema", short = 'n', value_name = "NAME")]
    pub schemas: Vec<String>,
    /// Leave columns out of the comparison (`table.col`, `schema.table.col`, `*.updated_at`); repeatable or comma-separated.
    #[arg(long = "exclude-columns", value_name = "PATTERN", value_delimiter = ',')]
    pub exclude_columns: Vec<String>,
    /// Row identity for a table: `schema.table=col1,col2`; repeatable.
    #[arg(long = "key", value_name = "TABLE=COLUMNS")]
    pub keys: Vec<String>,
    /// Changed rows shown per table (text: default 20; json: all unless given).
    #[arg(long, value_name = "N")]
    pub max_rows: Option<usize>,
    /// Write the report to FILE instead of standard output (`--format arrow`: a directory).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Connections per side; tables are compared this many at a time [default: 4]. Given, it also
    /// says each server has N cores to spare: block hashing then cuts a large table across
    /// connections too (by its share of all rows), which on a busier server only adds scans.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
    /// How rows are read: `auto` (tuple identity on one instance; across servers block hashes for
    /// tables of 8 MB or more, else stream), `stream` (every row, in key order), `hash` (blocks of
    /// rows hashed inside PostgreSQL, one scan per side; only rows of differing blocks are read).
    #[arg(long, default_value = "auto", value_parser = ["auto", "stream", "hash"])]
    pub strategy: String,
    /// Compare only part I (from 0) of N of every table's rows, split by a hash of the key: N
    /// runs with 0/N … N-1/N (a CI matrix, a Kubernetes Indexed Job) together report exactly
    /// what one run does; schema changes and dropped objects come from part 0.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Schema aspects not to report: `privileges`, `ownership`, `comments`, `sequence-state`, or
    /// object kinds (`index`, `trigger`, `function`, …); comma-separated or repeated.
    #[arg(long, value_name = "WHAT", value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Set by `branch diff` and `mcp` for a branch whose objects belong to its own login role:
    /// that hand-over is not a change (see `diff_core::schema::stand_in`).
    #[arg(skip)]
    pub stand_in_role: Option<String>,
    /// Fail (exit 1) only when a change of these classes is present: data-loss, deleted-rows,
    /// dropped-objects, schema, security, rows, any (comma-separated); otherwise exit 0.
    #[arg(long, value_name = "CLASSES")]
    pub fail_on: Option<String>,
    /// Accept an intended change: `schema.table`, `schema.table.column` (globs), or
    /// `CLASS:PATTERN` for one class only; accepted changes are reported, not failed. Repeatable.
    #[arg(long, value_name = "PATTERN", requires = "fail_on")]
    pub accept: Vec<String>,
    /// Accept the patterns in FILE (one a line, `#` comments), e.g. kept next to the migration.
    #[arg(long, value_name = "FILE", requires = "fail_on")]
    pub accept_file: Option<PathBuf>,
    /// Redact the values of matching columns in every output (`*.email`, `users.*`,
    /// `schema.table.column`): each value becomes a keyed hash, so changes and shared values stay
    /// visible. Repeatable or comma-separated. Columns with a PostgreSQL Anonymizer masking rule
    /// are redacted too unless --show-masked.
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub redact: Vec<String>,
    /// Secret for redaction hashes: the same secret gives the same hashes in every run (default: a
    /// random key per run). Prefer the environment variable: arguments are visible to other users.
    #[arg(long, value_name = "SECRET", env = "PGBRANCHDIFF_REDACT_KEY", hide_env_values = true)]
    pub redact_key: Option<String>,
    /// Show the values of columns with a PostgreSQL Anonymizer masking rule (`SECURITY LABEL FOR
    /// anon`), which are redacted by default.
    #[arg(long)]
    pub show_masked: bool,
    /// Compare the schema only.
    #[arg(long, conflicts_with = "data_only")]
    pub schema_only: bool,
    /// Compare rows only.
    #[arg(long)]
    pub data_only: bool,
    /// No progress on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Text output: how each table was read and why, and the bytes received from each side.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Colour in text output (`auto`: on a terminal, unless NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// With --format sql: the patch that takes the branch back to the parent's rows.
    #[arg(long)]
    pub reverse: bool,
}

impl ReportArgs {
    /// Rows kept per table: text and Markdown show 20 unless told; JSON keeps all unless told.
    pub fn rows_kept(&self) -> Option<usize> {
        match self.format {
            Format::Text | Format::Markdown => Some(self.max_rows.unwrap_or(20)),
            Format::Json => self.max_rows,
            // A stream keeps nothing: every changed row is a line.
            Format::Ndjson => None,
            // A patch that left rows out would be wrong, not short.
            Format::Sql => None,
            // Arrow files hold every changed row.
            Format::Arrow => None,
        }
    }
}
