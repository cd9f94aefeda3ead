//! The migration report as text for a terminal and as Markdown for a pull
//! request. Both show every statement with its time; per statement only locks
//! SHARE UPDATE EXCLUSIVE and stronger on relations that existed before the
//! migration are listed (the JSON has them all), and per relation how long
//! reads and writes, and writes, were blocked, and by which statements.

use std::fmt::Write;
use std::time::Duration;

use super::report::{Explanation, Failure, FailureKind, LockHeld, LockSummary, MigrationReport, StatementReport};

/// `850 ms`, `1.23 s`, `2 min 5 s`.
pub(super) fn duration(d: Duration) -> String {
    ms(d.as_millis() as u64)
}

fn ms(m: u64) -> String {
    if m < 1000 {
        format!("{m} ms")
    } else if m < 60_000 {
        format!("{:.2} s", m as f64 / 1000.0)
    } else {
        format!("{} min {} s", m / 60_000, (m % 60_000) / 1000)
    }
}

/// Locks worth a line per statement: SHARE UPDATE EXCLUSIVE (it blocks
/// schema changes and VACUUM) and stronger, on relations that existed before.
fn notable(l: &LockHeld) -> bool {
    !l.created
        && matches!(
            l.mode.as_str(),
            "ShareUpdateExclusiveLock"
                | "ShareLock"
                | "ShareRowExclusiveLock"
                | "ExclusiveLock"
                | "AccessExclusiveLock"
        )
}

/// `AccessExclusiveLock` → `ACCESS EXCLUSIVE`, as PostgreSQL's documentation names modes.
fn mode_name(mode: &str) -> String {
    let base = mode.strip_suffix("Lock").unwrap_or(mode);
    let mut out = String::new();
    for (i, c) in base.char_indices() {
        if i > 0 && c.is_ascii_uppercase() {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Relations whose writes were blocked at all (a hold too short to time still counts).
fn blocking(r: &MigrationReport) -> Vec<&LockSummary> {
    r.locks.iter().filter(|l| !l.held_by.is_empty() || l.writes_blocked_millis > 0).collect()
}

/// `ACCESS EXCLUSIVE m.sql:3, SHARE m.sql:1` for the holders of modes that pass `pred`.
fn holders(l: &LockSummary, pred: fn(&str) -> bool, at: fn(&str) -> String) -> String {
    l.held_by
        .iter()
        .filter(|h| pred(&h.mode))
        .map(|h| format!("{} {}", mode_name(&h.mode), at(&h.location)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn headline(r: &MigrationReport) -> String {
    let what = match r.kind {
        "command" => "the command".to_string(),
        _ => format!("{} statement{}", r.statements.len(), if r.statements.len() == 1 { "" } else { "s" }),
    };
    let budget = r.budget_millis.map(|b| format!(" (budget {})", ms(b))).unwrap_or_default();
    match &r.failure {
        None if r.over_budget => format!("Migration exceeded its budget: {what} in {}{budget}.", ms(r.total_millis)),
        None => format!("Migration applied: {what} in {}{budget}.", ms(r.total_millis)),
        Some(f) => {
            let at = f.location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default();
            let why = match f.kind {
                FailureKind::Budget => "was stopped at its budget",
                FailureKind::LockTimeout => "failed: lock timeout",
                FailureKind::StatementTimeout => "failed: statement timeout",
                FailureKind::CommandFailed => "failed: the command exited with an error",
                FailureKind::Error => "failed",
                FailureKind::OpenTransaction => "was rolled back: it left a transaction open",
            };
            format!("Migration {why}{at}, after {}{budget}.", ms(r.total_millis))
        }
    }
}

fn statement_notes(s: &StatementReport) -> Vec<String> {
    let mut notes = Vec::new();
    for w in &s.rewrites {
        notes.push(format!("rewrote {} (relfilenode {} → {})", w.table, w.relfilenode_before, w.relfilenode_after));
    }
    for l in s.locks.iter().filter(|l| notable(l)) {
        notes.push(format!("{} on {} ({}), held {}", mode_name(&l.mode), l.relation, l.relkind, ms(l.millis)));
    }
    for w in &s.waits {
        let on = match (&w.relation, w.locktype.as_str()) {
            (Some(rel), "relation") => rel.clone(),
            (Some(rel), other) => format!("the {other} lock of {rel}"),
            (None, other) => format!("a {other} lock"),
        };
        let behind: Vec<String> = w
            .blocked_by
            .iter()
            .map(|b| {
                let app = if b.application.is_empty() { String::new() } else { format!("{}, ", b.application) };
                format!("pid {} ({app}{}: {})", b.pid, b.state, b.query)
            })
            .collect();
        let behind = if behind.is_empty() { String::new() } else { format!(" behind {}", behind.join(", ")) };
        notes.push(format!("waited {} for {} on {on}{behind}", ms(w.millis), mode_name(&w.mode)));
    }
    notes
}

/// After a failure of SQL files: what stayed on the branch.
fn applied_line(r: &MigrationReport) -> Option<String> {
    if r.kind != "files" || r.failure.is_none() {
        return None;
    }
    let applied: Vec<&str> = r.statements.iter().filter(|s| s.applied).map(|s| s.location.as_str()).collect();
    Some(if applied.is_empty() {
        "Nothing was applied: the branch is as it was before the migration.".to_string()
    } else {
        const SHOWN: usize = 10;
        let more = applied.len().saturating_sub(SHOWN);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        format!(
            "Stayed applied (committed before the failure), {} of {} statements: {}{more}",
            applied.len(),
            r.statements.len(),
            applied[..applied.len().min(SHOWN)].join(", ")
        )
    })
}

fn failure_lines(f: &Failure) -> Vec<String> {
    let mut out = Vec::new();
    let code = f.sqlstate.as_deref().map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default();
    let exit = f.exit_code.map(|c| format!(" (exit status {c})")).unwrap_or_default();
    if !f.message.is_empty() {
        out.push(format!("{}{code}{exit}", f.message));
    }
    if let Some(d) = &f.detail {
        out.push(format!("DETAIL: {d}"));
    }
    if let Some(h) = &f.hint {
        out.push(format!("HINT: {h}"));
    }
    if !f.stderr_tail.is_empty() {
        out.push("The command's last lines on stderr:".into());
        out.extend(f.stderr_tail.iter().map(|l| format!("  {}", diff_core::render::escape(l))));
    }
    if !f.server_log.is_empty() {
        out.push("The server's log:".into());
        out.extend(f.server_log.iter().map(|l| format!("  {}", diff_core::render::escape(l))));
    }
    out
}

fn table_text(e: &Explanation) -> Vec<String> {
    // Values from the data: a newline or an escape sequence must not break the table or steer the terminal.
    let cell =
        |v: &Option<String>| v.as_deref().map_or_else(|| "NULL".into(), |v| diff_core::render::escape(v).into_owned());
    let mut widths: Vec<usize> = e.columns.iter().map(|c| c.chars().count()).collect();
    for row in &e.rows {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell(v).chars().count());
        }
    }
    let line = |vals: Vec<String>| {
        vals.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect::<Vec<_>>().join(" | ").trim_end().to_string()
    };
    let mut out = vec![line(e.columns.clone())];
    out.push(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"));
    out.extend(e.rows.iter().map(|r| line(r.iter().map(cell).collect())));
    out
}

/// For people, in a terminal.
pub(super) fn text(r: &MigrationReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", headline(r));
    for s in &r.statements {
        let status = if s.ok { "ok" } else { "FAILED" };
        let _ = writeln!(out, "  {status:<6} {:>9}  {}  {}", ms(s.millis), s.location, s.text);
        for note in statement_notes(s) {
            let _ = writeln!(out, "{:20}{note}", "");
        }
    }
    let blocked = blocking(r);
    if !blocked.is_empty() {
        let _ = writeln!(out, "Blocked by the migration's locks:");
        for l in blocked {
            let _ = writeln!(out, "  {} ({})", l.relation, l.relkind);
            let reads = holders(l, super::locks::blocks_reads, str::to_string);
            if !reads.is_empty() {
                let _ = writeln!(out, "    reads and writes: {} — {reads}", ms(l.reads_and_writes_blocked_millis));
            }
            let _ = writeln!(
                out,
                "    writes:           {} — {}",
                ms(l.writes_blocked_millis),
                holders(l, super::locks::blocks_writes, str::to_string)
            );
        }
    }
    if let Some(f) = &r.failure {
        for line in failure_lines(f) {
            let _ = writeln!(out, "  {line}");
        }
        if !r.files_not_run.is_empty() {
            let _ = writeln!(out, "  Never ran: {}", r.files_not_run.join(", "));
        }
        if let Some(line) = applied_line(r) {
            let _ = writeln!(out, "  {line}");
        }
        if let Some(e) = &f.explanation {
            let _ = writeln!(out, "  {}", e.summary);
            for line in table_text(e) {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    out
}

/// A location relative to the working directory when it is under it (Markdown goes to a pull
/// request, where the runner's absolute paths mean nothing).
fn relative(location: &str) -> String {
    let Ok(cwd) = std::env::current_dir() else { return location.to_string() };
    let prefix = format!("{}/", cwd.display());
    location.strip_prefix(&prefix).map_or_else(|| location.to_string(), str::to_string)
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_code(s: &str) -> String {
    // A code span holding backticks needs a longer fence.
    let fence = if s.contains('`') { "`` " } else { "`" };
    let close = if s.contains('`') { " ``" } else { "`" };
    format!("{fence}{}{close}", md_cell(s))
}

/// For a pull request comment.
pub(super) fn markdown(r: &MigrationReport) -> String {
    let mut out = String::from("### Migration\n\n");
    let mark = if r.succeeded() { "✅" } else { "❌" };
    let _ = writeln!(out, "{mark} {}\n", headline(r));
    let _ = writeln!(out, "| | location | statement | time | locks and rewrites |\n|---|---|---|--:|---|");
    for s in &r.statements {
        let status = if s.ok { "ok" } else { "**failed**" };
        let notes = statement_notes(s).iter().map(|n| md_cell(n)).collect::<Vec<_>>().join("<br>");
        let _ = writeln!(
            out,
            "| {status} | {} | {} | {} | {notes} |",
            md_code(&relative(&s.location)),
            md_code(&s.text),
            ms(s.millis)
        );
    }
    let blocked = blocking(r);
    if !blocked.is_empty() {
        let _ = writeln!(out, "\n**Blocked by the migration's locks**\n");
        let _ = writeln!(out, "| relation | reads and writes blocked | writes blocked | held by |\n|---|--:|--:|---|");
        for l in blocked {
            let _ = writeln!(
                out,
                "| {} ({}) | {} | {} | {} |",
                md_code(&l.relation),
                l.relkind,
                ms(l.reads_and_writes_blocked_millis),
                ms(l.writes_blocked_millis),
                md_cell(&holders(l, super::locks::blocks_writes, relative))
            );
        }
    }
    if let Some(f) = &r.failure {
        out.push('\n');
        for line in failure_lines(f) {
            let _ = writeln!(out, "> {}", md_cell(&line));
        }
        if !r.files_not_run.is_empty() {
            let files: Vec<String> = r.files_not_run.iter().map(|f| md_code(&relative(f))).collect();
            let _ = writeln!(out, ">\n> Never ran: {}", files.join(", "));
        }
        if let Some(line) = applied_line(r) {
            let _ = writeln!(out, ">\n> {}", md_cell(&line));
        }
        if let Some(e) = &f.explanation {
            let _ = writeln!(out, "\n{}\n", md_cell(&e.summary));
            let _ = writeln!(out, "| {} |", e.columns.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(e.columns.len()));
            for row in &e.rows {
                let cells: Vec<String> = row.iter().map(|v| md_cell(v.as_deref().unwrap_or("NULL"))).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::migrate::report::{Blocker, LockHolder, LockSummary, LockWait, Rewrite};

    fn sample() -> MigrationReport {
        let ael = |millis| LockHeld {
            relation: "public.users".into(),
            relkind: "table".into(),
            mode: "AccessExclusiveLock".into(),
            millis,
            created: false,
        };
        let weak = LockHeld {
            relation: "public.users".into(),
            relkind: "table".into(),
            mode: "AccessShareLock".into(),
            millis: 3,
            created: false,
        };
        MigrationReport {
            kind: "files",
            command: None,
            files_not_run: Vec::new(),
            statements: vec![
                StatementReport {
                    location: "m/0001.sql:2".into(),
                    text: "ALTER TABLE users ALTER id TYPE bigint".into(),
                    millis: 1250,
                    ok: true,
                    applied: true,
                    locks: vec![ael(1250), weak],
                    waits: vec![LockWait {
                        locktype: "relation".into(),
                        relation: Some("public.users".into()),
                        mode: "AccessExclusiveLock".into(),
                        millis: 300,
                        blocked_by: vec![Blocker {
                            pid: 42,
                            application: "psql".into(),
                            user: "app".into(),
                            state: "idle in transaction".into(),
                            query: "SELECT 1".into(),
                        }],
                    }],
                    rewrites: vec![Rewrite {
                        table: "public.users".into(),
                        relfilenode_before: 1,
                        relfilenode_after: 2,
                    }],
                },
                StatementReport {
                    location: "m/0002.sql:1".into(),
                    text: "CREATE UNIQUE INDEX ON users (email)".into(),
                    millis: 8,
                    ok: false,
                    applied: false,
                    locks: vec![],
                    waits: vec![],
                    rewrites: vec![],
                },
            ],
            locks: vec![LockSummary {
                relation: "public.users".into(),
                relkind: "table".into(),
                modes: vec!["AccessShareLock".into(), "AccessExclusiveLock".into()],
                reads_and_writes_blocked_millis: 950,
                writes_blocked_millis: 950,
                held_by: vec![LockHolder { location: "m/0001.sql:2".into(), mode: "AccessExclusiveLock".into() }],
                statements: vec!["m/0001.sql:2".into()],
            }],
            failure: Some(Failure {
                kind: FailureKind::Error,
                location: Some("m/0002.sql:1".into()),
                sqlstate: Some("23505".into()),
                message: "could not create unique index \"users_email_idx\"".into(),
                detail: Some("Key (email)=(a|b) is duplicated.".into()),
                hint: None,
                exit_code: None,
                stderr_tail: Vec::new(),
                server_log: Vec::new(),
                explanation: Some(Explanation {
                    summary: "1 value of (email) occurs more than once in public.users, in 2 rows:".into(),
                    table: Some("public.users".into()),
                    columns: vec!["email".into(), "rows".into()],
                    rows: vec![vec![Some("a|b".into()), Some("2".into())]],
                    total: Some(1),
                }),
            }),
            total_millis: 1258,
            budget_millis: Some(60_000),
            over_budget: false,
            sample_interval_millis: 15,
        }
    }

    #[test]
    fn text_layout() {
        let want = "\
Migration failed at m/0002.sql:1, after 1.26 s (budget 1 min 0 s).
  ok        1.25 s  m/0001.sql:2  ALTER TABLE users ALTER id TYPE bigint
                    rewrote public.users (relfilenode 1 → 2)
                    ACCESS EXCLUSIVE on public.users (table), held 1.25 s
                    waited 300 ms for ACCESS EXCLUSIVE on public.users behind pid 42 (psql, idle in transaction: SELECT 1)
  FAILED      8 ms  m/0002.sql:1  CREATE UNIQUE INDEX ON users (email)
Blocked by the migration's locks:
  public.users (table)
    reads and writes: 950 ms — ACCESS EXCLUSIVE m/0001.sql:2
    writes:           950 ms — ACCESS EXCLUSIVE m/0001.sql:2
  could not create unique index \"users_email_idx\" (SQLSTATE 23505)
  DETAIL: Key (email)=(a|b) is duplicated.
  Stayed applied (committed before the failure), 1 of 2 statements: m/0001.sql:2
  1 value of (email) occurs more than once in public.users, in 2 rows:
    email | rows
    ------+-----
    a|b   | 2
";
        assert_eq!(text(&sample()), want);
    }

    #[test]
    fn markdown_layout() {
        let want = "\
### Migration

❌ Migration failed at m/0002.sql:1, after 1.26 s (budget 1 min 0 s).

| | location | statement | time | locks and rewrites |
|---|---|---|--:|---|
| ok | `m/0001.sql:2` | `ALTER TABLE users ALTER id TYPE bigint` | 1.25 s | rewrote public.users (relfilenode 1 → 2)<br>ACCESS EXCLUSIVE on public.users (table), held 1.25 s<br>waited 300 ms for ACCESS EXCLUSIVE on public.users behind pid 42 (psql, idle in transaction: SELECT 1) |
| **failed** | `m/0002.sql:1` | `CREATE UNIQUE INDEX ON users (email)` | 8 ms |  |

**Blocked by the migration's locks**

| relation | reads and writes blocked | writes blocked | held by |
|---|--:|--:|---|
| `public.users` (table) | 950 ms | 950 ms | ACCESS EXCLUSIVE m/0001.sql:2 |

> could not create unique index \"users_email_idx\" (SQLSTATE 23505)
> DETAIL: Key (email)=(a\\|b) is duplicated.
>
> Stayed applied (committed before the failure), 1 of 2 statements: m/0001.sql:2

1 value of (email) occurs more than once in public.users, in 2 rows:

| email | rows |
|---|---|
| a\\|b | 2 |
";
        assert_eq!(markdown(&sample()), want);
    }

    #[test]
    fn mode_names_as_documented() {
        assert_eq!(mode_name("AccessExclusiveLock"), "ACCESS EXCLUSIVE");
        assert_eq!(mode_name("ShareRowExclusiveLock"), "SHARE ROW EXCLUSIVE");
        assert_eq!(mode_name("ShareLock"), "SHARE");
    }

    #[test]
    fn markdown_locations_are_relative_to_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(relative(&format!("{}/m/0001.sql:3", cwd.display())), "m/0001.sql:3");
        assert_eq!(relative("/elsewhere/m.sql:1"), "/elsewhere/m.sql:1");
        let mut r = sample();
        r.statements[0].location = format!("{}/m/0001.sql:2", cwd.display());
        assert!(markdown(&r).contains("| ok | `m/0001.sql:2` |"), "{}", markdown(&r));
    }

    #[test]
    fn durations() {
        assert_eq!(ms(850), "850 ms");
        assert_eq!(ms(1234), "1.23 s");
        assert_eq!(ms(125_000), "2 min 5 s");
    }

    #[test]
    fn explanation_tables_line_up() {
        let e = Explanation {
            summary: String::new(),
            table: None,
            columns: vec!["email".into(), "rows".into()],
            rows: vec![vec![Some("a@x".into()), Some("3".into())], vec![None, Some("12".into())]],
            total: None,
        };
        assert_eq!(table_text(&e), vec!["email | rows", "------+-----", "a@x   | 3", "NULL  | 12"]);
        let e = Explanation { rows: vec![vec![Some("x\ny\u{1b}[2J".into()), Some("2".into())]], ..e };
        assert!(!table_text(&e).concat().contains(['\n', '\u{1b}']), "{:?}", table_text(&e));
    }
}
