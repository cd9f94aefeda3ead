//! `pgbranchdiff PARENT CHILD`: parses arguments, runs the diff from
//! `diff-core`, writes the report. Exit codes as diff(1): 0 identical,
//! 1 differences, 2 trouble. `pgbranchdiff check …` tests a migration on a
//! throwaway branch (`diff_cli::check`): 0 applied and the gate passed, 1 the
//! migration failed, exceeded its budget or the gate failed, 2 trouble.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use diff_core::{ConnConfig, SideName};

use diff_cli::{args, branches, check, diff, mcp, signal};

/// What changed between a PostgreSQL database and a branch of it: rows
/// inserted, updated and deleted in every table, and schema changes.
#[derive(Parser, Debug)]
#[command(
    name = "pgbranchdiff",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Exit status: 0 identical, 1 differences found, 2 trouble. With --fail-on: 0 the gate passed, \
                  1 it failed, 2 trouble."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Parent database: postgresql:// URL, key=value string or database name.
    #[arg(required = true)]
    parent: Option<String>,
    /// Child (branch) database, same forms.
    #[arg(required = true)]
    child: Option<String>,
    #[command(flatten)]
    report: args::ReportArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Test a migration on a throwaway branch: restore a snapshot (or use a database), branch it,
    /// run the migration, report timing, locks and failures, diff parent and branch, clean up.
    #[command(after_help = "Exit status: 0 the migration applied and the gate passed, 1 the migration failed, \
                            exceeded --max-duration or the --fail-on gate failed, 2 trouble, 130 interrupted.")]
    Check(Box<check::CheckArgs>),
    /// Branches that last until deleted: create (prints the URL), list, delete, reset, diff.
    #[command(subcommand)]
    Branch(branches::BranchCommand),
    /// An MCP server over stdio: an agent makes branches of --source, runs SQL on them, reads the
    /// diff and the gate's verdict; it never gets connection strings or file paths.
    Mcp(Box<mcp::McpArgs>),
}

fn main() -> ExitCode {
    // glibc gives each thread that allocates its own arena, and pages freed in one
    // are not reused by another: peak memory would creep up with the length of a
    // run. Few threads allocate here (per batch), so one arena costs nothing.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::from(1),
        Ok(false) => ExitCode::SUCCESS,
        Err(e) if e.is::<signal::Interrupted>() => {
            eprintln!("pgbranchdiff: interrupted");
            ExitCode::from(130)
        }
        Err(e) => fail(e),
    }
}

/// Help and version as clap prints them; a usage error as one line in the
/// style of every other error, exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    // The message is clap's first paragraph (a list of missing arguments included), on one line.
    let text = e.render().to_string();
    let first: Vec<&str> = text.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
    eprintln!("pgbranchdiff: error: {} (see --help)", first.join(" ").trim_start_matches("error: "));
    ExitCode::from(2)
}

fn fail(e: anyhow::Error) -> ExitCode {
    let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    eprintln!("pgbranchdiff: error: {}", msg.join(": "));
    ExitCode::from(2)
}

/// Returns whether the run failed (exit status 1).
async fn run(cli: Cli) -> Result<bool> {
    match &cli.command {
        Some(Command::Check(args)) => return check::run(args).await,
        Some(Command::Branch(cmd)) => return branches::run(cmd).await,
        Some(Command::Mcp(args)) => return mcp::run(args).await.map(|()| false),
        None => {}
    }
    let (Some(parent), Some(child)) = (&cli.parent, &cli.child) else {
        anyhow::bail!("PARENT and CHILD are required");
    };
    let parent = ConnConfig::parse(SideName::Parent, parent)?;
    let child = ConnConfig::parse(SideName::Child, child)?;
    Ok(diff::run(&parent, &child, &cli.report).await?.failed())
}
