//! Branches made by a provider's command (`--branch-command`), so hosted
//! providers (Neon, Supabase, DBLab…) work without code for each: the command
//! runs with `sh -c`, and its standard output names the branch — a JSON
//! document with a `postgres://` or `postgresql://` URL somewhere in it (e.g.
//! `neonctl branches create … --output json`), or a line that is one. The
//! commands get `PGBRANCHDIFF_BRANCH_NAME` (and, for the delete command,
//! `PGBRANCHDIFF_BRANCH_ID` when the create command's JSON had an `id`, and
//! `PGBRANCHDIFF_BRANCH_URL`) in their environment rather than in their text,
//! so nothing is spliced into a shell command.

use std::process::Stdio;

use anyhow::{bail, Context, Result};

/// What a create command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// The branch's connection URL.
    pub url: String,
    /// The provider's id for it, when the output had one.
    pub id: Option<String>,
}

/// Runs the create command for branch `name`.
pub async fn create(command: &str, name: &str) -> Result<Made> {
    let out = run(command, &[("PGBRANCHDIFF_BRANCH_NAME", name)], "--branch-command").await?;
    parse(&out).with_context(|| format!("--branch-command printed no connection URL (got: {})", excerpt(&out)))
}

/// Runs the delete command for a branch.
pub async fn delete(command: &str, name: &str, url: &str, id: Option<&str>) -> Result<()> {
    let mut env = vec![("PGBRANCHDIFF_BRANCH_NAME", name), ("PGBRANCHDIFF_BRANCH_URL", url)];
    if let Some(id) = id {
        env.push(("PGBRANCHDIFF_BRANCH_ID", id));
    }
    run(command, &env, "--delete-command").await.map(|_| ())
}

/// Runs `sh -c command`; its standard output, or an error with the exit status and the last line of stderr.
async fn run(command: &str, env: &[(&str, &str)], flag: &str) -> Result<String> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(command).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.kill_on_drop(true).output().await.with_context(|| format!("{flag}: cannot run sh"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output on stderr)");
        let status = out.status.code().map_or_else(|| "was killed by a signal".to_string(), |c| format!("exited {c}"));
        bail!("{flag} {status}: {}", scrub(last.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The URL (and id) in a command's output: JSON searched depth-first, else the first URL-looking line.
pub fn parse(out: &str) -> Option<Made> {
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(out.trim()) {
        let url = find_url(&doc)?;
        return Some(Made { url, id: find_id(&doc) });
    }
    let url = out.lines().map(str::trim).find(|l| is_url(l))?;
    Some(Made { url: url.to_string(), id: None })
}

fn is_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

fn find_url(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if is_url(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.iter().find_map(find_url),
        serde_json::Value::Object(o) => o.values().find_map(find_url),
        _ => None,
    }
}

/// `id` at the top, or of the first object member that has one (`{"branch": {"id": …}}`).
fn find_id(v: &serde_json::Value) -> Option<String> {
    let o = v.as_object()?;
    let id = |v: &serde_json::Value| match v.get("id")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    id(v).or_else(|| o.values().find_map(id))
}

/// A short excerpt of output for a message, with any URL's password hidden.
fn excerpt(out: &str) -> String {
    let one: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one.chars().take(120).collect();
    if cut.is_empty() {
        "nothing".into()
    } else {
        scrub(&cut)
    }
}

/// `postgresql://user:secret@host` → `postgresql://user:***@host`, anywhere in a line.
pub fn scrub(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || c == '"' || c == '/').unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_found_in_json_and_in_lines() {
        let neon = r#"{"branch": {"id": "br-cool-1", "name": "b"}, "connection_uris": [{"connection_uri": "postgresql://u:pw@ep-1.neon.tech/db?sslmode=require"}]}"#;
        assert_eq!(
            parse(neon),
            Some(Made {
                url: "postgresql://u:pw@ep-1.neon.tech/db?sslmode=require".into(),
                id: Some("br-cool-1".into())
            })
        );
        assert_eq!(parse("creating…\npostgres://a@h/d\n").unwrap().url, "postgres://a@h/d");
        assert_eq!(parse(r#"{"id": 7}"#), None);
        assert_eq!(parse("done"), None);
    }

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(scrub("bad postgresql://u:secret@h:5/d here"), "bad postgresql://u:***@h:5/d here");
        assert_eq!(scrub("postgres://u@h/d"), "postgres://u@h/d");
    }
}
