//! `pgbranchdiff mcp`: an MCP server over stdio for AI agents. The operator
//! fixes the source and how branches are made on the command line; the agent
//! makes branches, runs SQL on them, reads the diff and asks the `--fail-on`
//! gate for a verdict. The server is a thin adapter over what the CLI runs
//! (the branch lifecycle, the migration runner, the diff, the gate): the agent
//! never gives a connection string or a file path, the source is only read,
//! only branches this server made are touched, results are bounded
//! ([`results`]), values are redacted (PostgreSQL Anonymizer labels and
//! `--redact`), errors are tool errors with the CLI's one-line messages, and
//! the branches are deleted when the server exits unless `--keep`.

mod framing;
pub mod results;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_handler, tool_router, Json, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::args::ReportArgs;
use crate::branches::lifecycle::{self, Source};
use crate::branches::registry::{self, Record, Registry};
use crate::branches::MethodArgs;
use crate::migrate::{self, MigrateOptions, Migration};
use results::{BranchInfo, BranchList, BranchListItem, Deleted, DiffResult, SqlResult, VerdictResult};

/// Rows of a table the server reads into a diff; more are counted, not listed.
const ROWS_PER_TABLE: usize = 2_000;
/// Characters of the migration report's text in `run_sql`.
const SQL_TEXT_CHARS: usize = 12_000;

/// `pgbranchdiff mcp` arguments.
#[derive(Args, Debug, Clone)]
pub struct McpArgs {
    /// The source database (URL, key=value string or name); it is only ever read.
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,
    #[command(flatten)]
    pub method: MethodArgs,
    /// Leave the branches in place when the server exits (they stay in `branch list`).
    #[arg(long)]
    pub keep: bool,
    /// Give the agent the operator's own role on TEMPLATE and snapshot branches instead of a role
    /// of the branch's own: its URL and run_sql can then reach the source and the whole server.
    #[arg(long)]
    pub shared_role: bool,
    /// lock_timeout for run_sql's statements (e.g. 5s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub lock_timeout: Option<Duration>,
    /// statement_timeout for run_sql's statements (e.g. 2m).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub statement_timeout: Option<Duration>,
    /// The longest one run_sql call may take: then its statement is cancelled and the call
    /// reports where it stopped. Kept by the server, so the agent's own SET cannot lift it.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10m")]
    pub max_duration: Duration,
    #[command(flatten)]
    pub report: ReportArgs,
}

fn duration(s: &str) -> std::result::Result<Duration, String> {
    migrate::parse_duration(s).map_err(|e| e.to_string())
}

/// Runs the server until the client closes standard input (or SIGINT/SIGTERM), then deletes its branches unless `--keep`.
pub async fn run(args: &McpArgs) -> Result<()> {
    let state = Arc::new(State::new(args).await?);
    let server = Server::new(state.clone());
    let (transport, writer) = framing::stdio();
    let served = async {
        let running = server.serve(transport).await?;
        running.waiting().await?;
        // The last answers reach standard output before cleanup and exit.
        let _ = writer.await;
        anyhow::Ok(())
    };
    let (result, interrupted) = tokio::select! {
        r = served => (r, false),
        _ = crate::signal::interrupt() => (Ok(()), true),
    };
    let cleaned = state.cleanup(args.keep).await;
    if interrupted {
        // The runtime would wait for the stdin reader, which no signal ends.
        if let Err(e) = &cleaned {
            eprintln!("pgbranchdiff: error: {}", one_line(e));
        }
        std::process::exit(130);
    }
    result.and(cleaned)
}

/// What the server was started with, and the branches it made.
struct State {
    source: Source,
    registry: Registry,
    report: ReportArgs,
    migrate: MigrateOptions,
    owner: String,
    /// Whether branches get a role of their own (not `--shared-role`).
    confine: bool,
    /// Names of the branches this server made and has not deleted.
    made: Mutex<BTreeSet<String>>,
}

impl State {
    async fn new(args: &McpArgs) -> Result<State> {
        refuse_output_options(&args.report)?;
        let source = args.method.source(args.source.as_deref())?;
        let mut report = args.report.clone();
        if let Some(c) = &source.config {
            // Columns with an Anonymizer label are redacted in run_sql's explanations too (the diff finds them itself).
            report.redact.extend(crate::check::masked_columns(&[c]).await?);
        }
        // One key for the server's life: the same value hashes alike in every result.
        report.redact_key.get_or_insert_with(random_key);
        crate::diff::options(&report)?;
        crate::diff::redactor(&report)?;
        Ok(State {
            source,
            registry: args.method.registry()?,
            report,
            migrate: MigrateOptions {
                lock_timeout: args.lock_timeout,
                statement_timeout: args.statement_timeout,
                max_duration: Some(args.max_duration),
                redact_output: false,
            },
            owner: format!("mcp:{}", std::process::id()),
            confine: !args.shared_role,
            made: Mutex::new(BTreeSet::new()),
        })
    }

    /// The record of a branch this server made, or an error that says so.
    fn ours(&self, name: &str) -> Result<Record> {
        let made = self.made.lock().map(|m| m.contains(name)).unwrap_or(false);
        if !made {
            let list: Vec<String> = self.made.lock().map(|m| m.iter().cloned().collect()).unwrap_or_default();
            let known = if list.is_empty() { "none yet: call create_branch".to_string() } else { list.join(", ") };
            bail!("no branch \"{name}\" made by this server (its branches: {known})");
        }
        self.registry.get(name)
    }

    async fn cleanup(&self, keep: bool) -> Result<()> {
        let mut names: BTreeSet<String> = self.made.lock().map(|m| m.clone()).unwrap_or_default();
        // And any this server recorded but had not finished making (an interrupted create_branch).
        names.extend(
            self.registry.list().unwrap_or_default().into_iter().filter(|r| r.owner == self.owner).map(|r| r.name),
        );
        if keep {
            if !names.is_empty() {
                let names: Vec<String> = names.into_iter().collect();
                eprintln!("pgbranchdiff: kept branches {} (pgbranchdiff branch list)", names.join(", "));
            }
            return Ok(());
        }
        let mut first_error = Ok(());
        for name in names {
            let removed = match self.registry.get(&name) {
                Ok(r) => lifecycle::delete(&self.registry, &r, self.source.config.as_ref()).await,
                Err(e) => Err(e),
            };
            if let Err(e) = removed {
                eprintln!("pgbranchdiff: could not delete branch \"{name}\": {}", one_line(&e));
                first_error = first_error.and(Err(e));
            }
        }
        first_error
    }
}

/// 16 random bytes as hex: a redaction key, a branch role's password.
pub(crate) fn random_key() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Report options that shape a file or a terminal, not a tool result: refused rather than ignored.
fn refuse_output_options(r: &ReportArgs) -> Result<()> {
    let given = [
        (r.format != crate::args::Format::Text, "--format"),
        (r.output.is_some(), "--output"),
        (r.max_rows.is_some(), "--max-rows"),
        (r.fail_on.is_some(), "--fail-on"),
        (!r.accept.is_empty() || r.accept_file.is_some(), "--accept"),
        (r.quiet, "--quiet"),
        (r.verbose, "--verbose"),
        (r.reverse, "--reverse"),
        (r.shard.is_some(), "--shard"),
    ];
    if let Some((_, name)) = given.iter().find(|(on, _)| *on) {
        bail!("{name}: not an option of `pgbranchdiff mcp` (results are JSON tool results, paged; the agent asks for a verdict with its own fail_on and accept)");
    }
    Ok(())
}

/// An error as the CLI prints it: its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string().replace('\n', " ")).collect();
    parts.join(": ")
}

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T>>>>;

/// Runs a tool's work on a thread of its own (the diff's futures are not
/// `Send`), turning an error into the tool error the client sees.
async fn off_thread<T: Send + 'static>(
    state: &Arc<State>,
    work: impl FnOnce(Arc<State>) -> Boxed<T> + Send + 'static,
) -> std::result::Result<T, String> {
    let state = state.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(work(state))
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(one_line(&e)),
        Err(e) => Err(format!("internal error: {e}")),
    }
}

/// `run_sql` input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSqlArgs {
    /// A branch name from create_branch.
    pub branch: String,
    /// SQL statements, run one by one like psql with ON_ERROR_STOP (psql meta-commands that read files are refused).
    pub sql: String,
}

/// `diff` input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffArgs {
    /// A branch name from create_branch.
    pub branch: String,
    /// Only these tables (`schema.table` or `table`, globs).
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// Page of changed rows, from 1 (default 1).
    #[serde(default)]
    pub page: Option<usize>,
}

/// `verdict` input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerdictArgs {
    /// A branch name from create_branch.
    pub branch: String,
    /// Classes that fail: data-loss, deleted-rows, dropped-objects, schema, security, rows, any.
    pub fail_on: Vec<String>,
    /// Intended changes that do not fail: `schema.table`, `schema.table.column`, `CLASS:PATTERN`, `KIND:PATTERN`.
    #[serde(default)]
    pub accept: Option<Vec<String>>,
}

/// No arguments: any given are refused (an agent would believe they took effect).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A branch named by the agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchArg {
    /// A branch name from create_branch.
    pub branch: String,
}

/// The MCP server.
#[derive(Clone)]
pub struct Server {
    state: Arc<State>,
    tool_router: ToolRouter<Server>,
}

#[tool_router]
impl Server {
    fn new(state: Arc<State>) -> Server {
        Server { state, tool_router: Self::tool_router() }
    }

    #[tool(description = "Make a new branch: a private copy of the source database to change freely. \
                          Returns its name (for the other tools) and a postgresql:// URL for your own SQL tools.")]
    async fn create_branch(&self, Parameters(_): Parameters<NoArgs>) -> std::result::Result<Json<BranchInfo>, String> {
        off_thread(&self.state, |s| Box::pin(create_branch(s))).await.map(Json)
    }

    #[tool(description = "Run SQL statements on a branch, one by one, stopping at the first error (like a \
                          migration). Returns each statement's time and the locks it held; a failure is explained \
                          with the rows that caused it (duplicates, NULLs, orphans, values that do not convert).")]
    async fn run_sql(&self, Parameters(a): Parameters<RunSqlArgs>) -> std::result::Result<Json<SqlResult>, String> {
        off_thread(&self.state, move |s| Box::pin(run_sql(s, a))).await.map(Json)
    }

    #[tool(description = "What changed on a branch against its source: summary counts, data loss and schema \
                          changes (with danger labels) first, then the changed rows, paged (page from 1).")]
    async fn diff(&self, Parameters(a): Parameters<DiffArgs>) -> std::result::Result<Json<DiffResult>, String> {
        off_thread(&self.state, move |s| Box::pin(diff(s, a))).await.map(Json)
    }

    #[tool(description = "Pass or fail a branch as the CI gate (--fail-on) would: fail_on lists classes \
                          (data-loss, deleted-rows, dropped-objects, schema, security, rows, any); accept lists \
                          intended changes (schema.table, schema.table.column, CLASS:PATTERN).")]
    async fn verdict(
        &self,
        Parameters(a): Parameters<VerdictArgs>,
    ) -> std::result::Result<Json<VerdictResult>, String> {
        off_thread(&self.state, move |s| Box::pin(verdict(s, a))).await.map(Json)
    }

    #[tool(description = "Throw away everything done on a branch: it becomes a fresh copy of the source (same name).")]
    async fn reset_branch(
        &self,
        Parameters(a): Parameters<BranchArg>,
    ) -> std::result::Result<Json<BranchInfo>, String> {
        off_thread(&self.state, move |s| Box::pin(reset_branch(s, a))).await.map(Json)
    }

    #[tool(description = "Delete a branch this server made.")]
    async fn delete_branch(&self, Parameters(a): Parameters<BranchArg>) -> std::result::Result<Json<Deleted>, String> {
        off_thread(&self.state, move |s| Box::pin(delete_branch(s, a))).await.map(Json)
    }

    #[tool(description = "List the branches this server made and has not deleted.")]
    async fn list_branches(&self, Parameters(_): Parameters<NoArgs>) -> std::result::Result<Json<BranchList>, String> {
        off_thread(&self.state, |s| Box::pin(list_branches(s))).await.map(Json)
    }
}

async fn create_branch(s: Arc<State>) -> Result<BranchInfo> {
    let name = lifecycle::new_name(&s.source);
    let record = lifecycle::create(&s.registry, &s.source, &name, &s.owner, s.confine).await?;
    if let Ok(mut m) = s.made.lock() {
        m.insert(name.clone());
    }
    Ok(BranchInfo { name, url: lifecycle::agent_url(&record)? })
}

async fn run_sql(s: Arc<State>, a: RunSqlArgs) -> Result<SqlResult> {
    let record = s.ours(&a.branch)?;
    // As the agent's own role: run_sql reaches no more than the branch's URL does.
    let branch = lifecycle::read_as_agent(&record, s.source.config.as_ref()).await?;
    let mut report = migrate::apply(&branch, &Migration::Sql(a.sql), &s.migrate).await?;
    // Masked columns are among the patterns already (see `State::new`).
    report.redact(&crate::diff::redactor(&s.report)?, &[]);
    Ok(sql_result(&report))
}

async fn diff(s: Arc<State>, a: DiffArgs) -> Result<DiffResult> {
    let record = s.ours(&a.branch)?;
    let mut args = s.report.clone();
    if let Some(t) = a.tables {
        args.tables = t;
    }
    let (report, _) = diff_pair(&s, &record, &args, None).await?;
    let doc = diff_core::render::json_value(&report);
    results::diff(&doc, a.page.unwrap_or(1)).map_err(anyhow::Error::msg)
}

async fn verdict(s: Arc<State>, a: VerdictArgs) -> Result<VerdictResult> {
    let record = s.ours(&a.branch)?;
    let gate = diff_core::gate::Gate::new(&a.fail_on.join(","), &a.accept.unwrap_or_default())?;
    let (_, verdict) = diff_pair(&s, &record, &s.report, Some(gate)).await?;
    let Some(v) = verdict else { bail!("the gate gave no verdict") };
    let mut cut = Vec::new();
    let headline = v.headline();
    let reasons = results::first(v.reasons, results::LIST_ITEMS * 2, "reasons", &mut cut);
    let unused_accepts = results::first(v.unused_accepts, results::LIST_ITEMS, "unused_accepts", &mut cut);
    Ok(VerdictResult { passed: v.passed, headline, reasons, accepted: v.accepted, unused_accepts, cut })
}

async fn reset_branch(s: Arc<State>, a: BranchArg) -> Result<BranchInfo> {
    let record = s.ours(&a.branch)?;
    let record = lifecycle::reset(&s.registry, &record, s.source.config.as_ref()).await?;
    Ok(BranchInfo { url: lifecycle::agent_url(&record)?, name: record.name })
}

async fn delete_branch(s: Arc<State>, a: BranchArg) -> Result<Deleted> {
    let record = s.ours(&a.branch)?;
    lifecycle::delete(&s.registry, &record, s.source.config.as_ref()).await?;
    if let Ok(mut m) = s.made.lock() {
        m.remove(&a.branch);
    }
    Ok(Deleted { deleted: a.branch })
}

async fn list_branches(s: Arc<State>) -> Result<BranchList> {
    let made: BTreeSet<String> = s.made.lock().map(|m| m.clone()).unwrap_or_default();
    let mut branches = Vec::new();
    for r in s.registry.list()?.into_iter().filter(|r| made.contains(&r.name)) {
        branches.push(BranchListItem {
            url: lifecycle::agent_url(&r)?,
            method: r.method().to_string(),
            created: registry::utc(r.created),
            name: r.name,
        });
    }
    Ok(BranchList { branches })
}

#[tool_handler(
    router = self.tool_router,
    name = "pgbranchdiff",
    instructions = "Work on a branch, never on the source: create_branch, change it (run_sql or your own SQL tools \
                    with its URL), read diff, ask verdict (e.g. fail_on [\"data-loss\"]); reset_branch to start \
                    over; delete_branch when done. Apply the final migration to production yourself, outside this server."
)]
impl ServerHandler for Server {}

/// The diff of a recorded branch against its parent, redacted, with `gate`'s verdict.
async fn diff_pair(
    s: &State,
    record: &Record,
    args: &ReportArgs,
    gate: Option<diff_core::gate::Gate>,
) -> Result<(diff_core::Report, Option<diff_core::gate::Verdict>)> {
    let parent = lifecycle::parent_config(record, s.source.config.as_ref())?;
    // The branch is read as its own role: nothing the agent planted in it (a cast, an operator, a
    // function a view calls) can run with the operator's rights.
    let child = lifecycle::read_as_agent(record, s.source.config.as_ref()).await?;
    let mut args = args.clone();
    args.stand_in_role = record.role.as_ref().map(|r| r.name.clone());
    crate::diff::collect(&parent, &child, &args, gate, ROWS_PER_TABLE).await
}

/// `run_sql`'s result: the text report cut to size, the JSON with long strings and long lists cut.
fn sql_result(report: &migrate::MigrationReport) -> SqlResult {
    let mut cut = Vec::new();
    let text = results::shorten_text(report.text(), SQL_TEXT_CHARS, "text", &mut cut);
    let mut json = report.json();
    if let Some(list) = json.get_mut("statements").and_then(|s| s.as_array_mut()) {
        if list.len() > results::LIST_ITEMS {
            // The last statements are kept: a failure is the last one.
            let n = list.len();
            list.drain(..n - results::LIST_ITEMS);
            cut.push(format!("report.statements: the last {} of {n} shown", results::LIST_ITEMS));
        }
    }
    let long = results::shorten(&mut json, results::VALUE_CHARS);
    if long > 0 {
        cut.push(format!("report: {long} long strings cut to {} characters", results::VALUE_CHARS));
    }
    SqlResult { applied: report.succeeded(), text, report: json, cut }
}
