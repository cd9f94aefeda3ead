//! `pgbranchdiff branch …`: branches for people and scripts, made by the
//! method the operator chooses ([`lifecycle`]), recorded across runs
//! ([`registry`]), compared with their source, reset and deleted. The MCP
//! server ([`crate::mcp`]) makes its branches through the same functions.

pub mod confine;
pub mod lifecycle;
pub mod provider;
pub mod registry;

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use diff_core::{ConnConfig, SideName};

use crate::args::ReportArgs;
use lifecycle::{Method, Source};
use registry::Registry;

/// How branches are made: shared by `branch create` and `mcp`.
#[derive(Args, Debug, Clone, Default)]
pub struct MethodArgs {
    /// Make a snapshot: `pg_dump` of the source restored into a local cluster (started from the
    /// PostgreSQL binaries on this machine) that keeps running until the branch is deleted.
    #[arg(long, conflicts_with = "branch_command")]
    pub snapshot: bool,
    /// Restore this dump file (any pg_dump format) instead of dumping the source (implies --snapshot).
    #[arg(long, value_name = "FILE", conflicts_with = "branch_command")]
    pub dump: Option<PathBuf>,
    /// A provider's command that makes a branch (`sh -c`, with PGBRANCHDIFF_BRANCH_NAME set) and
    /// prints its URL, alone on a line or anywhere in a JSON document.
    #[arg(long, value_name = "COMMAND")]
    pub branch_command: Option<String>,
    /// The provider's command that deletes a branch (PGBRANCHDIFF_BRANCH_NAME, _ID, _URL set).
    #[arg(long, value_name = "COMMAND", requires = "branch_command")]
    pub delete_command: Option<String>,
    /// Where branches are recorded (default $XDG_STATE_HOME/pgbranchdiff, else ~/.local/state/pgbranchdiff).
    #[arg(long, value_name = "DIR", env = "PGBRANCHDIFF_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

impl MethodArgs {
    /// The method; without a choice, a TEMPLATE copy on the source's server.
    pub fn method(&self) -> Method {
        if let Some(create) = &self.branch_command {
            return Method::Command { create: create.clone(), delete: self.delete_command.clone() };
        }
        if self.snapshot || self.dump.is_some() {
            return Method::Snapshot { dump: self.dump.clone() };
        }
        Method::Template
    }

    /// The source and method, checked before anything is made.
    pub fn source(&self, from: Option<&str>) -> Result<Source> {
        let config = from.map(|u| ConnConfig::parse(SideName::Parent, u)).transpose()?;
        let method = self.method();
        if let Some(p) = &self.dump {
            if !p.exists() {
                bail!("--dump {}: no such file or directory", p.display());
            }
        } else if config.is_none() && !matches!(method, Method::Command { .. }) {
            bail!("the source database is required (--from URL), or a dump file (--dump FILE)");
        }
        Ok(Source { config, method })
    }

    /// The registry in the state directory.
    pub fn registry(&self) -> Result<Registry> {
        Ok(Registry::new(registry::state_dir(self.state_dir.as_deref())?))
    }
}

/// `pgbranchdiff branch` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum BranchCommand {
    /// Make a branch of a database and print its connection URL.
    Create {
        /// The source database (URL, key=value string or name); it is only read.
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// The branch's name (default `<source>_branch_<pid>_<n>`).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        method: MethodArgs,
    },
    /// List the branches pgbranchdiff made (name, method, source, when, URL).
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "DIR", env = "PGBRANCHDIFF_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Delete a branch pgbranchdiff made (nothing else is ever deleted).
    Delete {
        name: String,
        #[arg(long, value_name = "DIR", env = "PGBRANCHDIFF_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Make the branch again from its source, for the next attempt.
    Reset {
        name: String,
        #[arg(long, value_name = "DIR", env = "PGBRANCHDIFF_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// What changed on the branch against its source (every report option applies).
    Diff {
        name: String,
        #[arg(long, value_name = "DIR", env = "PGBRANCHDIFF_STATE_DIR")]
        state_dir: Option<PathBuf>,
        #[command(flatten)]
        report: Box<ReportArgs>,
    },
}

/// Runs a `branch` subcommand; returns whether it failed (exit 1: a diff found differences or failed its gate).
pub async fn run(cmd: &BranchCommand) -> Result<bool> {
    let registry_in =
        |dir: &Option<PathBuf>| Ok::<_, anyhow::Error>(Registry::new(registry::state_dir(dir.as_deref())?));
    match cmd {
        BranchCommand::Create { from, name, method } => {
            let source = method.source(from.as_deref())?;
            let name = name.clone().unwrap_or_else(|| lifecycle::new_name(&source));
            let registry = method.registry()?;
            // Interrupted, the half-made branch is removed (a snapshot's cluster stops as the future is
            // dropped; a TEMPLATE copy is recorded before it is made, and deleted here).
            let made = tokio::select! {
                biased;
                _ = crate::signal::interrupt() => None,
                r = lifecycle::create(&registry, &source, &name, "cli", false) => Some(r),
            };
            let Some(made) = made else {
                if let Ok(record) = registry.get(&name) {
                    if let Err(e) = lifecycle::delete(&registry, &record, source.config.as_ref()).await {
                        eprintln!("pgbranchdiff: could not remove the half-made branch \"{name}\": {e:#}");
                    }
                }
                return Err(crate::signal::Interrupted.into());
            };
            let record = made?;
            eprintln!("pgbranchdiff: made branch \"{}\" of {} ({})", record.name, record.from, record.method());
            println!("{}", lifecycle::url(&record)?);
            Ok(false)
        }
        BranchCommand::List { json, state_dir } => {
            list(&registry_in(state_dir)?, *json)?;
            Ok(false)
        }
        BranchCommand::Delete { name, state_dir } => {
            let registry = registry_in(state_dir)?;
            lifecycle::delete(&registry, &registry.get(name)?, None).await?;
            eprintln!("pgbranchdiff: deleted branch \"{name}\"");
            Ok(false)
        }
        BranchCommand::Reset { name, state_dir } => {
            let registry = registry_in(state_dir)?;
            let record = lifecycle::reset(&registry, &registry.get(name)?, None).await?;
            eprintln!("pgbranchdiff: reset branch \"{name}\"");
            println!("{}", lifecycle::url(&record)?);
            Ok(false)
        }
        BranchCommand::Diff { name, state_dir, report } => {
            let record = registry_in(state_dir)?.get(name)?;
            let parent = lifecycle::parent_config(&record, None)?;
            // As the branch's own role, if it has one: what an agent planted runs with no more rights.
            let child = lifecycle::read_as_agent(&record, None).await?;
            let mut report = report.as_ref().clone();
            report.stand_in_role = record.role.as_ref().map(|r| r.name.clone());
            Ok(crate::diff::run(&parent, &child, &report).await?.failed())
        }
    }
}

fn list(registry: &Registry, json: bool) -> Result<()> {
    let records = registry.list()?;
    if json {
        let items: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name, "method": r.method(), "from": r.from,
                    "created": registry::utc(r.created), "url": lifecycle::url(r).unwrap_or_default(), "owner": r.owner,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    if records.is_empty() {
        eprintln!("pgbranchdiff: no branches recorded in {}", registry.dir().display());
    }
    for r in &records {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            r.name,
            r.method(),
            r.from,
            registry::utc(r.created),
            lifecycle::url(r).unwrap_or_default()
        );
    }
    Ok(())
}
