//! One diff, from connection settings to a written report: the event loop
//! shared by `pgbranchdiff PARENT CHILD` and `pgbranchdiff check`. Events
//! pass the gate (acceptances), then redaction, then the sink of the chosen format.

use std::io::IsTerminal;

use anyhow::{bail, Context, Result};
use diff_core::gate::{Gate, Verdict};
use diff_core::redact::{RedactKey, Redactor};
use diff_core::render::{self, Sink};
use diff_core::{ConnConfig, Event, KeyOverride, Options};

use crate::args::{Color, Format, ReportArgs};
use crate::output::Output;
use crate::progress::Progress;
use crate::signal::{self, Interrupted};

/// What a finished diff found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Schema changes or changed rows were found.
    pub differs: bool,
    /// The gate's verdict, with `--fail-on`.
    pub verdict: Option<Verdict>,
}

impl Outcome {
    /// Exit status 1: the gate failed, or (without a gate) the databases differ.
    pub fn failed(&self) -> bool {
        self.verdict.as_ref().map_or(self.differs, |v| !v.passed)
    }
}

/// The library's options from the arguments.
pub fn options(args: &ReportArgs) -> Result<Options> {
    if args.reverse && args.format != Format::Sql {
        anyhow::bail!("--reverse: only with --format sql");
    }
    let keys = args.keys.iter().map(|k| k.parse::<KeyOverride>()).collect::<Result<Vec<_>, _>>()?;
    Ok(Options {
        tables: args.tables.clone(),
        exclude_tables: args.exclude_tables.clone(),
        schemas: args.schemas.clone(),
        exclude_columns: args.exclude_columns.iter().filter(|c| !c.is_empty()).cloned().collect(),
        keys,
        jobs: args.jobs.map_or(4, usize::from),
        split_tables: args.jobs.is_some(),
        data: !args.schema_only,
        schema: !args.data_only,
        strategy: args.strategy.parse()?,
        shard: args.shard.as_deref().map(str::parse).transpose()?,
        ignore: args.ignore.clone(),
        stand_in_role: args.stand_in_role.clone(),
        max_rows_per_table: args.rows_kept(),
    })
}

/// The gate asked for with `--fail-on`, with its acceptances.
pub fn gate(args: &ReportArgs) -> Result<Option<Gate>> {
    let Some(classes) = &args.fail_on else { return Ok(None) };
    let mut accept = args.accept.clone();
    if let Some(path) = &args.accept_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("--accept-file: cannot read {}", path.display()))?;
        accept.extend(Gate::accept_file(&text));
    }
    Ok(Some(Gate::new(classes, &accept)?))
}

/// The redaction asked for, applied to every event before any sink.
pub fn redactor(args: &ReportArgs) -> Result<Redactor> {
    let key = match &args.redact_key {
        Some(k) => RedactKey::Secret(k.clone()),
        None => RedactKey::Random,
    };
    Redactor::new(&args.redact, !args.show_masked, key).context("--redact")
}

/// The sink of the chosen format, writing to `output` (with `preamble` in
/// front of a single document; a directory report gets it as `check.json`).
fn sink(
    args: &ReportArgs,
    opts: &Options,
    output: &Output,
    preamble: Option<&crate::preamble::Preamble>,
) -> Result<Box<dyn Sink>> {
    if let Some(dir) = output.dir() {
        if let Some(p) = preamble {
            let json = serde_json::to_vec_pretty(&p.json)?;
            std::fs::write(dir.join(diff_core::arrow::CHECK_FILE), json).context("cannot write the report")?;
        }
        return Ok(Box::new(diff_core::arrow::ArrowSink::new(dir)));
    }
    let out = crate::preamble::wrap(output.writer()?, args.format, preamble);
    Ok(match args.format {
        Format::Arrow => anyhow::bail!("--format arrow writes a directory: give it with --output PATH"),
        Format::Json => Box::new(render::JsonSink::new(opts.max_rows_per_table, out)),
        Format::Ndjson => Box::new(render::NdjsonSink::new(out)),
        Format::Sql => Box::new(render::SqlSink::new(args.reverse, out)),
        Format::Markdown => Box::new(render::Collect::new(render::Document::Markdown, opts.max_rows_per_table, out)),
        Format::Text => {
            let color = match args.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    args.output.is_none()
                        && std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                }
            };
            let text = render::TextOptions { color, max_rows: args.max_rows.unwrap_or(20), verbose: args.verbose };
            Box::new(render::Collect::new(render::Document::Text(text), opts.max_rows_per_table, out))
        }
    })
}

/// Where the report goes: a staged directory for Arrow, which needs `--output`
/// (checked before anything connects).
fn output(args: &ReportArgs) -> Result<Output> {
    match (args.format, args.output.as_deref()) {
        (Format::Arrow, Some(path)) => Output::open_dir(path, diff_core::arrow::is_report_dir),
        (Format::Arrow, None) => {
            anyhow::bail!("--format arrow writes a directory of files: give it with --output PATH")
        }
        (_, path) => Output::open(path),
    }
}

/// Compares `parent` with `child` and writes the report as `args` ask.
pub async fn run(parent: &ConnConfig, child: &ConnConfig, args: &ReportArgs) -> Result<Outcome> {
    run_with(parent, child, args, None).await
}

/// [`run`], with `preamble` in the same document (see [`crate::preamble`]).
pub async fn run_with(
    parent: &ConnConfig,
    child: &ConnConfig,
    args: &ReportArgs,
    preamble: Option<&crate::preamble::Preamble>,
) -> Result<Outcome> {
    let opts = options(args)?;
    let mut gate = gate(args)?;
    let mut redactor = redactor(args)?;
    let output = output(args)?;
    let started = std::time::Instant::now();
    let mut stream = diff_core::start(parent, child, &opts).await?;
    let mut interrupt = Box::pin(signal::interrupt());
    let mut progress = Progress::new(!args.quiet && std::io::stderr().is_terminal());
    let mut fallbacks = Fallbacks::default();
    let mut sink = sink(args, &opts, &output, preamble)?;
    let mut differs = false;
    loop {
        let event = tokio::select! {
            event = stream.next() => event.transpose().map_err(|e| redactor.scrub(e))?,
            _ = interrupt.as_mut() => {
                stream.close().await;
                return Err(Interrupted.into());
            }
        };
        let Some(mut event) = event else { break };
        if let Some(g) = &mut gate {
            g.observe(&mut event);
        }
        redactor.apply(&mut event);
        if let Event::Started { rows: true, .. } = &event {
            if let Some(p) = redactor.unmatched().first() {
                stream.close().await;
                progress.finish();
                bail!("--redact {p}: matches no compared column on either side");
            }
        }
        differs |= matches!(event, Event::Schema(_) | Event::Row { .. });
        progress.observe(&event);
        fallbacks.observe(&event);
        if let Err(e) = sink.event(&event) {
            // A reader that stopped reading (`| head`) ends the diff quietly.
            stream.close().await;
            progress.finish();
            output.write_error(e)?;
            return Ok(Outcome { differs, verdict: gate.map(|g| g.verdict()) });
        }
    }
    progress.finish();
    let verdict = gate.as_ref().map(|g| g.verdict());
    for a in verdict.iter().flat_map(|v| &v.unused_accepts) {
        eprintln!("pgbranchdiff: warning: --accept {a} matched nothing");
    }
    let end = render::End {
        millis: started.elapsed().as_millis() as u64,
        verdict: verdict.clone(),
        received: Some(stream.received()),
    };
    match sink.finish(&end) {
        Ok(()) => output.commit()?,
        Err(e) => output.write_error(e)?,
    }
    if opts.strategy == diff_core::options::Strategy::Hash && !args.quiet {
        fallbacks.tell();
    }
    Ok(Outcome { differs, verdict })
}

/// Tables `--strategy hash` could not hash, said once per run on stderr (the
/// JSON report has the reason per table in `stats.fallback`).
#[derive(Default)]
struct Fallbacks {
    names: Vec<String>,
    tables: Vec<(String, String)>,
}

impl Fallbacks {
    fn observe(&mut self, event: &Event) {
        match event {
            Event::Started { tables, .. } => self.names = tables.iter().map(|t| t.qualified()).collect(),
            Event::TableDone { table, summary } => {
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

/// The diff as a [`Report`](diff_core::Report) in memory, redacted as `args`
/// ask, with `gate`'s verdict when one is given (for the MCP server's `diff`
/// and `verdict`). Rows kept per table: `max_rows`. Unlike [`run`], a
/// `--redact` pattern that matches no compared column is not an error: a
/// table filter may leave its table out.
pub async fn collect(
    parent: &ConnConfig,
    child: &ConnConfig,
    args: &ReportArgs,
    mut gate: Option<Gate>,
    max_rows: usize,
) -> Result<(diff_core::Report, Option<Verdict>)> {
    let mut opts = options(args)?;
    opts.max_rows_per_table = Some(max_rows);
    let mut redactor = redactor(args)?;
    let mut stream = diff_core::start(parent, child, &opts).await?;
    let mut builder = diff_core::report::ReportBuilder::new(Some(max_rows));
    while let Some(event) = stream.next().await.transpose().map_err(|e| redactor.scrub(e))? {
        let mut event = event;
        if let Some(g) = &mut gate {
            g.observe(&mut event);
        }
        redactor.apply(&mut event);
        builder.push(event);
    }
    let report = builder.finish().context("the diff ended before it started")?;
    Ok((report, gate.map(|g| g.verdict())))
}
