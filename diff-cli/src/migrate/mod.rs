//! TEMPORARY STUB (not committed): the API of branch `migrate`, to compile against until it is merged.
use std::path::PathBuf;
use std::time::Duration;
pub struct MigrateOptions {
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
    pub max_duration: Option<Duration>,
}
pub enum Migration {
    Files(Vec<PathBuf>),
    Command(String),
}
pub async fn apply(
    branch: &diff_core::ConnConfig,
    migration: &Migration,
    _opts: &MigrateOptions,
) -> anyhow::Result<MigrationReport> {
    let (client, _c) = branch.connect().await?;
    let mut failure = None;
    match migration {
        Migration::Files(files) => {
            for f in files {
                if let Err(e) = client.batch_execute(&std::fs::read_to_string(f)?).await {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        Migration::Command(c) => {
            let st = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(c)
                .env("PGHOST", branch.param("host").unwrap())
                .env("PGPORT", branch.param("port").unwrap_or("5432"))
                .env("PGUSER", branch.param("user").unwrap())
                .env("PGDATABASE", branch.dbname())
                .kill_on_drop(true)
                .status()
                .await?;
            if !st.success() {
                failure = Some("command failed".into());
            }
        }
    }
    Ok(MigrationReport { failure })
}
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationReport {
    failure: Option<String>,
}
impl MigrationReport {
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }
    pub fn over_budget(&self) -> bool {
        false
    }
    pub fn text(&self) -> String {
        format!("Migration: {:?}\n", self.failure)
    }
    pub fn markdown(&self) -> String {
        self.text()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"failure": self.failure})
    }
}
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    Ok(Duration::from_secs(s.trim_end_matches('s').parse()?))
}
