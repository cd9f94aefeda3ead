//! `pgbranchdiff PARENT CHILD`: parses arguments, runs the diff from
//! `diff-core`, prints the report. Exit codes as diff(1): 0 identical,
//! 1 differences, 2 trouble.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use diff_core::gate::Gate;
use diff_core::render::{GateJson, JsonWriter};
use diff_core::{render, ConnConfig, KeyOverride, Options, ReportBuilder, SideName};

mod progress;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    /// For pull-request comments and CI summaries.
    Markdown,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

/// What changed between a PostgreSQL database and a branch of it: rows
/// inserted, updated and deleted in every table, and schema changes.
#[derive(Parser, Debug)]
#[command(
    name = "pgbranchdiff",
    version,
    about,
    after_help = "Exit status: 0 identical, 1 differences found, 2 trouble. With --fail-on: 0 the gate passed, \
                  1 it failed, 2 trouble."
)]
struct Args {
    /// Parent database: postgresql:// URL, key=value string or database name.
    parent: String,
    /// Child (branch) database, same forms.
    child: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Only tables matching GLOB (`schema.table` or `table`); repeatable.
    #[arg(long = "table", short = 't', value_name = "GLOB")]
    tables: Vec<String>,
    /// Skip tables matching GLOB; repeatable.
    #[arg(long = "exclude-table", short = 'T', value_name = "GLOB")]
    exclude_tables: Vec<String>,
    /// Only tables in schema NAME; repeatable.
    #[arg(long = "schema", short = 'n', value_name = "NAME")]
    schemas: Vec<String>,
    /// Leave columns out of the comparison (`table.col`, `schema.table.col`, `*.updated_at`); repeatable or comma-separated.
    #[arg(long = "exclude-columns", value_name = "PATTERN", value_delimiter = ',')]
    exclude_columns: Vec<String>,
    /// Row identity for a table: `schema.table=col1,col2`; repeatable.
    #[arg(long = "key", value_name = "TABLE=COLUMNS")]
    keys: Vec<String>,
    /// Changed rows shown per table (text: default 20; json: all unless given).
    #[arg(long, value_name = "N")]
    max_rows: Option<usize>,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Connections per side; tables are compared this many at a time.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// How rows are read: `auto` (tuple identity on one instance, else stream), `stream` (every
    /// row, in key order), `hash` (key ranges hashed inside PostgreSQL; only differing ranges are read).
    #[arg(long, default_value = "auto", value_parser = ["auto", "stream", "hash"])]
    strategy: String,
    /// Schema aspects not to report: `privileges`, `ownership`, `comments`, `sequence-state`, or
    /// object kinds (`index`, `trigger`, `function`, …); comma-separated or repeated.
    #[arg(long, value_name = "WHAT", value_delimiter = ',')]
    ignore: Vec<String>,
    /// Fail (exit 1) only when a change of these classes is present: data-loss, deleted-rows,
    /// dropped-objects, schema, security, rows, any (comma-separated); otherwise exit 0.
    #[arg(long, value_name = "CLASSES")]
    fail_on: Option<String>,
    /// Accept an intended change: `schema.table`, `schema.table.column` (globs), or
    /// `CLASS:PATTERN` for one class only; accepted changes are reported, not failed. Repeatable.
    #[arg(long, value_name = "PATTERN", requires = "fail_on")]
    accept: Vec<String>,
    /// Accept the patterns in FILE (one a line, `#` comments), e.g. kept next to the migration.
    #[arg(long, value_name = "FILE", requires = "fail_on")]
    accept_file: Option<PathBuf>,
    /// Compare the schema only.
    #[arg(long, conflicts_with = "data_only")]
    schema_only: bool,
    /// Compare rows only.
    #[arg(long)]
    data_only: bool,
    /// No progress on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Colour in text output (`auto`: on a terminal, unless NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

fn main() -> ExitCode {
    // glibc gives each thread that allocates its own arena, and pages freed in one
    // are not reused by another: peak memory would creep up with the length of a
    // run. Few threads allocate here (per batch), so one arena costs nothing.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::from(1),
        Ok(false) => ExitCode::SUCCESS,
        Err(e) if e.is::<Interrupted>() => {
            eprintln!("pgbranchdiff: interrupted");
            ExitCode::from(130)
        }
        Err(e) => fail(e),
    }
}

/// Ctrl-C or SIGTERM arrived: the diff was stopped and its connections closed.
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupt() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => drop(s.recv().await),
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// The next event, or `Interrupted` once the stream was closed after a signal.
async fn next_event(
    stream: &mut diff_core::ChangeStream,
    signal: &mut std::pin::Pin<Box<impl std::future::Future<Output = ()>>>,
) -> Result<Option<diff_core::Event>> {
    tokio::select! {
        event = stream.next() => Ok(event.transpose()?),
        _ = signal.as_mut() => {
            stream.close().await;
            Err(Interrupted.into())
        }
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    eprintln!("pgbranchdiff: error: {}", msg.join(": "));
    ExitCode::from(2)
}

fn options(args: &Args) -> Result<Options> {
    let keys = args.keys.iter().map(|k| k.parse::<KeyOverride>()).collect::<Result<Vec<_>, _>>()?;
    let max_rows = match args.format {
        Format::Text | Format::Markdown => None,
        Format::Json => args.max_rows,
    };
    Ok(Options {
        tables: args.tables.clone(),
        exclude_tables: args.exclude_tables.clone(),
        schemas: args.schemas.clone(),
        exclude_columns: args.exclude_columns.iter().filter(|c| !c.is_empty()).cloned().collect(),
        keys,
        jobs: args.jobs as usize,
        data: !args.schema_only,
        schema: !args.data_only,
        // Text shows max_rows per table; keep one more so "N more" stays exact via counts.
        strategy: args.strategy.parse()?,
        ignore: args.ignore.clone(),
        max_rows_per_table: max_rows.or(if matches!(args.format, Format::Text | Format::Markdown) {
            Some(args.max_rows.unwrap_or(20))
        } else {
            None
        }),
    })
}

/// Returns whether differences were found.
async fn run(args: Args) -> Result<bool> {
    let parent = ConnConfig::parse(SideName::Parent, &args.parent)?;
    let child = ConnConfig::parse(SideName::Child, &args.child)?;
    let opts = options(&args)?;
    let mut gate = match &args.fail_on {
        Some(classes) => {
            let mut accept = args.accept.clone();
            if let Some(path) = &args.accept_file {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--accept-file: cannot read {}", path.display()))?;
                accept.extend(Gate::accept_file(&text));
            }
            Some(Gate::new(classes, &accept)?)
        }
        None => None,
    };
    let started = std::time::Instant::now();
    let mut stream = diff_core::start(&parent, &child, &opts).await?;
    let mut signal = Box::pin(interrupt());
    let mut progress = progress::Progress::new(!args.quiet && std::io::stderr().is_terminal());
    let mut fallbacks = Fallbacks::default();
    // Opened only once the diff has completed: a failed run leaves no file that looks like a report.
    let open = |args: &Args| -> Result<Box<dyn Write>> {
        Ok(match &args.output {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        })
    };
    let differs = match args.format {
        Format::Json => {
            // Rows go to the writer's spill buffers as they arrive: memory stays flat.
            let mut writer = JsonWriter::new(opts.max_rows_per_table);
            while let Some(mut event) = next_event(&mut stream, &mut signal).await? {
                if let Some(g) = &mut gate {
                    g.observe(&mut event);
                }
                progress.observe(&event);
                fallbacks.observe(&event);
                writer.push(&event).context("cannot buffer the report")?;
            }
            progress.finish();
            let differs = match &gate {
                Some(g) => {
                    let v = g.verdict();
                    writer.set_gate(GateJson { fail_on: v.fail_on, passed: v.passed, reasons: v.reasons });
                    !v.passed
                }
                None => writer.has_differences(),
            };
            let mut out = open(&args)?;
            finish_output(
                writer.finish(&mut out, started.elapsed().as_millis() as u64).and_then(|_| out.flush()),
                &args,
            )?;
            differs
        }
        Format::Text | Format::Markdown => {
            let mut builder = ReportBuilder::new(opts.max_rows_per_table);
            while let Some(mut event) = next_event(&mut stream, &mut signal).await? {
                if let Some(g) = &mut gate {
                    g.observe(&mut event);
                }
                progress.observe(&event);
                fallbacks.observe(&event);
                builder.push(event);
            }
            progress.finish();
            let report = builder.finish().context("the diff ended without a report")?;
            let color = match args.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    args.output.is_none()
                        && std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                }
            };
            let verdict = gate.as_ref().map(|g| g.verdict());
            let text = if args.format == Format::Markdown {
                render::markdown(&report, verdict.as_ref())
            } else {
                let mut text =
                    render::text(&report, &render::TextOptions { color, max_rows: args.max_rows.unwrap_or(20) });
                if let Some(v) = &verdict {
                    text.push_str(&render::escape(&v.line()));
                    text.push('\n');
                }
                text
            };
            let mut out = open(&args)?;
            finish_output(out.write_all(text.as_bytes()).and_then(|_| out.flush()), &args)?;
            verdict.map_or(report.has_differences(), |v| !v.passed)
        }
    };
    if opts.strategy == diff_core::options::Strategy::Hash && !args.quiet {
        fallbacks.tell();
    }
    Ok(differs)
}

/// Tables `--strategy hash` could not hash, said once per run on stderr (the
/// JSON report has the reason per table in `stats.fallback`).
#[derive(Default)]
struct Fallbacks {
    names: Vec<String>,
    tables: Vec<(String, String)>,
}

impl Fallbacks {
    fn observe(&mut self, event: &diff_core::Event) {
        match event {
            diff_core::Event::Started { tables, .. } => self.names = tables.iter().map(|t| t.qualified()).collect(),
            diff_core::Event::TableDone { table, summary } => {
                if let Some(why) = summary.fallback.as_deref().and_then(|f| f.strip_prefix("hash: ")) {
                    self.tables.push((self.names.get(*table).cloned().unwrap_or_default(), why.to_string()));
                }
            }
            _ => {}
        }
    }

    fn tell(&mut self) {
        if self.tables.is_empty() {
            return;
        }
        self.tables.sort();
        let shown: Vec<String> = self.tables.iter().take(3).map(|(t, why)| format!("{t} ({why})")).collect();
        let more = self.tables.len().saturating_sub(3);
        eprintln!(
            "pgbranchdiff: note: --strategy hash read {} table{} in full: {}{}",
            self.tables.len(),
            if self.tables.len() == 1 { "" } else { "s" },
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
    }
}

/// A closed pipe on stdout (`| head`) is not worth a message; a failed file write is.
fn finish_output(r: std::io::Result<()>, args: &Args) -> Result<()> {
    match (r, &args.output) {
        (Ok(()), _) => Ok(()),
        (Err(e), None) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        (Err(e), Some(path)) => Err(anyhow::anyhow!("cannot write {}: {e}", path.display())),
        (Err(e), None) => Err(anyhow::anyhow!("cannot write the report: {e}")),
    }
}
