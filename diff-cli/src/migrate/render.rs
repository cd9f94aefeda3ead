//! The migration report as text for a terminal and as Markdown for a pull
//! request. Both show every statement with its time; per statement only locks
//! that block writers (SHARE UPDATE EXCLUSIVE and stronger) are listed, the
//! JSON has them all.

use std::fmt::Write;
use std::time::Duration;

use super::report::{Explanation, Failure, FailureKind, LockHeld, MigrationReport, StatementReport};

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

/// Locks worth a line per statement: those that block writes.
fn notable(l: &LockHeld) -> bool {
    matches!(
        l.mode.as_str(),
        "ShareUpdateExclusiveLock" | "ShareLock" | "ShareRowExclusiveLock" | "ExclusiveLock" | "AccessExclusiveLock"
    )
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
        notes.push(format!("{} on {} ({}), seen for {}", l.mode, l.relation, l.relkind, ms(l.millis)));
    }
    for w in &s.waits {
        let on = w.relation.clone().unwrap_or_else(|| w.locktype.clone());
        let behind: Vec<String> = w
            .blocked_by
            .iter()
            .map(|b| {
                let app = if b.application.is_empty() { String::new() } else { format!("{}, ", b.application) };
                format!("pid {} ({app}{}: {})", b.pid, b.state, b.query)
            })
            .collect();
        let behind = if behind.is_empty() { String::new() } else { format!(" behind {}", behind.join(", ")) };
        notes.push(format!("waited {} for {} on {on}{behind}", ms(w.millis), w.mode));
    }
    notes
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
    let strong: Vec<_> = r.locks.iter().filter(|l| l.access_exclusive_millis > 0).collect();
    if !strong.is_empty() {
        let _ = writeln!(out, "ACCESS EXCLUSIVE held (writes and reads blocked):");
        for l in strong {
            let _ = writeln!(
                out,
                "  {} ({}): {} — {}",
                l.relation,
                l.relkind,
                ms(l.access_exclusive_millis),
                l.statements.join(", ")
            );
        }
    }
    if let Some(f) = &r.failure {
        for line in failure_lines(f) {
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
            md_code(&s.location),
            md_code(&s.text),
            ms(s.millis)
        );
    }
    let strong: Vec<_> = r.locks.iter().filter(|l| l.access_exclusive_millis > 0).collect();
    if !strong.is_empty() {
        let _ = writeln!(out, "\n**ACCESS EXCLUSIVE held** (reads and writes blocked):\n");
        for l in strong {
            let _ = writeln!(out, "- {} ({}): {}", md_code(&l.relation), l.relkind, ms(l.access_exclusive_millis));
        }
    }
    if let Some(f) = &r.failure {
        out.push('\n');
        for line in failure_lines(f) {
            let _ = writeln!(out, "> {}", md_cell(&line));
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

    use crate::migrate::report::{Blocker, LockSummary, LockWait, Rewrite};

    fn sample() -> MigrationReport {
        let ael = |millis| LockHeld {
            relation: "public.users".into(),
            relkind: "table".into(),
            mode: "AccessExclusiveLock".into(),
            millis,
        };
        let weak = LockHeld {
            relation: "public.users".into(),
            relkind: "table".into(),
            mode: "AccessShareLock".into(),
            millis: 3,
        };
        MigrationReport {
            kind: "files",
            command: None,
            statements: vec![
                StatementReport {
                    location: "m/0001.sql:2".into(),
                    text: "ALTER TABLE users ALTER id TYPE bigint".into(),
                    millis: 1250,
                    ok: true,
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
                    locks: vec![],
                    waits: vec![],
                    rewrites: vec![],
                },
            ],
            locks: vec![LockSummary {
                relation: "public.users".into(),
                relkind: "table".into(),
                modes: vec!["AccessShareLock".into(), "AccessExclusiveLock".into()],
                access_exclusive_millis: 950,
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
                    AccessExclusiveLock on public.users (table), seen for 1.25 s
                    waited 300 ms for AccessExclusiveLock on public.users behind pid 42 (psql, idle in transaction: SELECT 1)
  FAILED      8 ms  m/0002.sql:1  CREATE UNIQUE INDEX ON users (email)
ACCESS EXCLUSIVE held (writes and reads blocked):
  public.users (table): 950 ms — m/0001.sql:2
  could not create unique index \"users_email_idx\" (SQLSTATE 23505)
  DETAIL: Key (email)=(a|b) is duplicated.
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
| ok | `m/0001.sql:2` | `ALTER TABLE users ALTER id TYPE bigint` | 1.25 s | rewrote public.users (relfilenode 1 → 2)<br>AccessExclusiveLock on public.users (table), seen for 1.25 s<br>waited 300 ms for AccessExclusiveLock on public.users behind pid 42 (psql, idle in transaction: SELECT 1) |
| **failed** | `m/0002.sql:1` | `CREATE UNIQUE INDEX ON users (email)` | 8 ms |  |

**ACCESS EXCLUSIVE held** (reads and writes blocked):

- `public.users` (table): 950 ms

> could not create unique index \"users_email_idx\" (SQLSTATE 23505)
> DETAIL: Key (email)=(a\\|b) is duplicated.

1 value of (email) occurs more than once in public.users, in 2 rows:

| email | rows |
|---|---|
| a\\|b | 2 |
";
        assert_eq!(markdown(&sample()), want);
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
