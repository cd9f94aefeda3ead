//! What a migration run found: one serialisable structure that the text,
//! Markdown and JSON renderings are all made from.

use serde::Serialize;

/// The result of [`super::apply`].
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    /// `files` or `command`.
    pub kind: &'static str,
    /// The command, for `--run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Statements in the order they ran (the command as one entry). Only
    /// statements that ran are listed: the failed one is the last.
    pub statements: Vec<StatementReport>,
    /// Per relation that existed before, over the whole migration: the lock
    /// modes taken, how long reads and writes were blocked, and by which statements.
    pub locks: Vec<LockSummary>,
    /// Set when the migration did not apply completely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Files after the one that failed: none of their statements ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_not_run: Vec<String>,
    /// Wall time of the statements (their sum) or of the command; the
    /// tracing between statements is not counted. The budget is spent by this.
    pub total_millis: u64,
    /// `--max-duration`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_millis: Option<u64>,
    /// The migration ran longer than the budget (it was stopped there).
    pub over_budget: bool,
    /// The lock sampler's polling interval: shorter holds can go unseen.
    pub sample_interval_millis: u64,
}

/// One statement (or the whole command).
#[derive(Debug, Clone, Serialize)]
pub struct StatementReport {
    /// `file:line` of the statement's first token, or `command`.
    pub location: String,
    /// The statement's text, shortened to one line.
    pub text: String,
    pub millis: u64,
    /// Whether it completed without error.
    pub ok: bool,
    /// Whether its effect is on the branch after the run: it succeeded and was
    /// committed (outside a transaction block, or in a block that was
    /// committed). For a command: whether it succeeded.
    pub applied: bool,
    /// Locks on relations seen while it ran or held right after it.
    pub locks: Vec<LockHeld>,
    /// Locks it waited for.
    pub waits: Vec<LockWait>,
    /// Tables whose relfilenode changed: rewritten (or truncated).
    pub rewrites: Vec<Rewrite>,
}

/// A lock a statement held.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LockHeld {
    /// `schema.name`.
    pub relation: String,
    /// `table`, `index`, `sequence`, `view`, `materialized view`, `partitioned table`, …
    pub relkind: String,
    /// PostgreSQL's mode name, e.g. `AccessExclusiveLock`.
    pub mode: String,
    /// How long it was held during the statement: the statement's time less
    /// its wait on the relation (for a command: the time it was seen, at
    /// sampling resolution).
    pub millis: u64,
    /// The relation did not exist before the migration (it created it): a
    /// lock on it blocks nobody.
    #[serde(rename = "created_by_migration")]
    pub created: bool,
}

/// A lock a statement waited for.
#[derive(Debug, Clone, Serialize)]
pub struct LockWait {
    /// `relation`, `transactionid`, `tuple`, …
    pub locktype: String,
    /// `schema.name`, when the lock is on a relation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    pub mode: String,
    /// How long the wait was seen.
    pub millis: u64,
    /// The sessions it waited behind.
    pub blocked_by: Vec<Blocker>,
}

/// A session that held a lock the migration waited for.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Blocker {
    pub pid: i32,
    pub application: String,
    pub user: String,
    /// `active`, `idle in transaction`, …
    pub state: String,
    /// Its current or last query, shortened.
    pub query: String,
}

/// A table whose storage was replaced.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rewrite {
    /// `schema.name`.
    pub table: String,
    pub relfilenode_before: u32,
    pub relfilenode_after: u32,
}

/// Locks on one relation that existed before the migration, over the whole
/// migration (relations it created block nobody and are not listed).
#[derive(Debug, Clone, Serialize)]
pub struct LockSummary {
    pub relation: String,
    pub relkind: String,
    /// Table-lock modes taken on it, weakest first.
    pub modes: Vec<String>,
    /// How long reads and writes were both blocked (ACCESS EXCLUSIVE held):
    /// the time of the statements that held it (less their wait for it) to
    /// the end of their transaction block; for a command, the time it was seen held.
    pub reads_and_writes_blocked_millis: u64,
    /// How long writes were blocked (SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE or
    /// ACCESS EXCLUSIVE held), counted the same way; it includes the time
    /// reads were blocked too.
    pub writes_blocked_millis: u64,
    /// The statements that took a mode blocking writes, with that mode, strongest first.
    pub held_by: Vec<LockHolder>,
    /// Locations of the statements that took or waited for locks on it.
    pub statements: Vec<String>,
}

/// A statement that took a lock blocking writes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LockHolder {
    pub location: String,
    /// PostgreSQL's mode name.
    pub mode: String,
}

/// Why the migration did not apply completely.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// `file:line` of the failed statement, or `command`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// SQLSTATE of the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The command's exit status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// A failed command's last lines on stderr (they also went to stderr as it ran).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stderr_tail: Vec<String>,
    /// A failed command on a throwaway cluster: the server log's last error
    /// (`ERROR:`, `DETAIL:`, `HINT:`, `STATEMENT:` lines) during the command.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_log: Vec<String>,
    /// The rows that made it fail, queried read-only on the branch afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// The kind of failure.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The statement failed with an error.
    Error,
    /// It could not get a lock within `lock_timeout`.
    LockTimeout,
    /// It ran longer than `statement_timeout`.
    StatementTimeout,
    /// The migration was stopped at `--max-duration`.
    Budget,
    /// The command exited with a non-zero status (or a signal).
    CommandFailed,
    /// The files ended inside a transaction block: it was rolled back.
    OpenTransaction,
}

/// The rows behind a failure: a one-line summary and a small table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Explanation {
    /// e.g. "2 values of (email) occur more than once in public.users, in 5 rows".
    pub summary: String,
    /// The table the rows are from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Column headers of `rows`.
    pub columns: Vec<String>,
    /// Some of the rows (values as PostgreSQL prints them; NULL as `None`).
    pub rows: Vec<Vec<Option<String>>>,
    /// How many there are in all (duplicate values, NULL rows, orphans…), when counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

impl MigrationReport {
    /// Applies `--redact` to what the failure shows: the values of redacted
    /// columns in the explanation's rows (keyed hashes), PostgreSQL's DETAIL
    /// (`Key (…)=(…)`, `Failing row contains (…)`) and an error quoting an
    /// input value. The table is the explanation's; when none is known, a
    /// pattern's column part alone decides (more is hidden, never less).
    ///
    /// `masked` are the `schema.table.column` names of columns with a masking
    /// rule, redacted like `--redact` patterns. A failed command's stderr tail
    /// is free text from any tool: when anything is redacted, every quoted
    /// string, key value, failing row and bound parameter list in it is hidden.
    pub fn redact(&mut self, r: &diff_core::redact::Redactor, masked: &[String]) {
        let patterns: Vec<String> = r.patterns().iter().chain(masked).cloned().collect();
        if patterns.is_empty() {
            return;
        }
        let Some(f) = self.failure.as_mut() else { return };
        for l in &mut f.stderr_tail {
            *l = scrub_free_text(l);
        }
        let table = f.explanation.as_ref().and_then(|e| e.table.clone());
        let selected = |column: &str| {
            let column = column.trim_matches('"');
            patterns.iter().any(|p| match table.as_deref().and_then(|t| t.split_once('.')) {
                Some((schema, name)) => diff_core::filter::column_matches(p, schema, name, column),
                None => diff_core::filter::column_matches(p.rsplit('.').next().unwrap_or(p), "", "", column),
            })
        };
        let token = |v: &str| r.hash(&diff_core::Value::Text(v.to_string())).to_text().unwrap_or_default();
        let mut any = false;
        if let Some(e) = f.explanation.as_mut() {
            let hidden: Vec<bool> =
                e.columns.iter().map(|c| selected(c.trim_end_matches(" after").trim_end_matches(" before"))).collect();
            any = hidden.iter().any(|h| *h);
            for row in &mut e.rows {
                for (v, h) in row.iter_mut().zip(&hidden) {
                    if let (Some(text), true) = (v.as_mut(), *h) {
                        *text = token(text);
                    }
                }
                // A conversion's error quotes the value it could not convert.
                if let (true, Some(i)) = (any, e.columns.iter().position(|c| c == "error")) {
                    if let Some(Some(msg)) = row.get_mut(i) {
                        *msg = scrub_quoted(msg);
                    }
                }
            }
            if any {
                e.summary = scrub_quoted(&e.summary);
            }
        }
        if let Some(d) = f.detail.as_mut() {
            if let Some(rest) = d.strip_prefix("Failing row contains ") {
                // The whole row, of a table or partition whose columns are not known here: hidden
                // whenever anything is redacted (more is hidden, never less).
                if !rest.is_empty() {
                    *d = "Failing row contains (redacted).".into();
                }
            } else if let Some((cols, _)) = d.strip_prefix("Key (").and_then(|k| k.split_once(")=(")) {
                if super::split::words(cols).iter().any(|c| selected(c)) || cols.split(',').any(|c| selected(c.trim()))
                {
                    let tail = d.rsplit_once(") ").map(|(_, t)| t.to_string()).unwrap_or_default();
                    *d = format!("Key ({cols})=(redacted) {tail}").trim_end().to_string();
                }
            }
        }
        if any && f.sqlstate.as_deref().is_some_and(|c| c.starts_with("22")) {
            f.message = scrub_quoted(&f.message);
        }
        // The server's own lines can quote any value: only the error's first line stays, without quotes.
        f.server_log.retain(|l| l.starts_with("ERROR:"));
        for l in &mut f.server_log {
            *l = scrub_quoted(l);
        }
    }

    /// The migration applied completely, without error and within its budget.
    pub fn succeeded(&self) -> bool {
        self.failure.is_none() && !self.over_budget
    }

    /// The migration ran longer than `--max-duration`.
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }

    /// The report as JSON (the `migration` object of a check's document).
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// For people, in a terminal.
    pub fn text(&self) -> String {
        super::render::text(self)
    }

    /// For a pull request comment.
    pub fn markdown(&self) -> String {
        super::render::markdown(self)
    }
}

/// A line some tool printed: its quoted strings (`'…'`, `"…"`), PostgreSQL's
/// `Key (…)=(…)` and `Failing row contains (…)`, and a driver's bound
/// parameters (`[parameters: …]`, SQLAlchemy) are hidden; the words around stay.
pub(super) fn scrub_free_text(line: &str) -> String {
    let mut s = line.to_string();
    for (open, close) in [("Failing row contains (", ")"), ("[parameters: ", "]")] {
        if let Some(a) = s.find(open) {
            let end = s.rfind(close).filter(|&b| b >= a + open.len()).map_or(s.len(), |b| b + close.len());
            s = format!("{}{open}redacted{close}{}", &s[..a], &s[end..]);
        }
    }
    if let Some(a) = s.find(")=(") {
        let end = s[a + 3..].find(')').map_or(s.len(), |b| a + 3 + b);
        s = format!("{}=(redacted{}", &s[..a + 1], &s[end..]);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find(['\'', '"']) {
        let q = rest.as_bytes()[i] as char;
        match rest[i + 1..].find(q) {
            // An apostrophe in a word (`don't`) opens nothing.
            Some(j) if !(q == '\'' && i > 0 && rest.as_bytes()[i - 1].is_ascii_alphanumeric()) => {
                out.push_str(&rest[..i]);
                out.push_str("(redacted)");
                rest = &rest[i + 1 + j + 1..];
            }
            _ => {
                out.push_str(&rest[..=i]);
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `invalid input syntax for type integer: "abc"` → `… integer: (redacted)`.
fn scrub_quoted(s: &str) -> String {
    match (s.find('"'), s.rfind('"')) {
        (Some(a), Some(b)) if b > a => format!("{}(redacted){}", &s[..a], &s[b + 1..]),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_loses_its_values_and_keeps_its_words() {
        assert_eq!(
            scrub_free_text("DETAIL:  Key (email)=(u1@x) already exists."),
            "DETAIL:  Key (email)=(redacted) already exists."
        );
        assert_eq!(
            scrub_free_text("DETAIL:  Failing row contains (1, u1@x, (a,b))."),
            "DETAIL:  Failing row contains (redacted)."
        );
        assert_eq!(scrub_free_text("[parameters: {'email': 'u1@x', 'id': 3}]"), "[parameters: redacted]");
        assert_eq!(
            scrub_free_text("invalid input syntax for type integer: \"u1@x\" (don't 'u2@x')"),
            "invalid input syntax for type integer: (redacted) (don't (redacted))"
        );
        assert_eq!(scrub_free_text("an unterminated \"quote"), "an unterminated \"quote");
    }

    fn failed(detail: &str, tail: &[&str]) -> MigrationReport {
        let mut r = MigrationReport {
            kind: "command",
            command: None,
            statements: vec![],
            locks: vec![],
            failure: None,
            files_not_run: vec![],
            total_millis: 0,
            budget_millis: None,
            over_budget: false,
            sample_interval_millis: 15,
        };
        r.failure = Some(Failure {
            kind: FailureKind::CommandFailed,
            location: None,
            sqlstate: Some("23505".into()),
            message: "duplicate key value violates unique constraint \"c\"".into(),
            detail: Some(detail.into()),
            hint: None,
            exit_code: Some(1),
            stderr_tail: tail.iter().map(|s| s.to_string()).collect(),
            server_log: vec![],
            explanation: None,
        });
        r
    }

    /// A column with a masking rule is hidden like a `--redact` pattern, and a tool's stderr too.
    #[test]
    fn masked_columns_and_stderr_are_redacted() {
        let r = diff_core::redact::Redactor::new(&[], true, diff_core::redact::RedactKey::Random).unwrap();
        let tail = ["psycopg.errors.UniqueViolation: DETAIL:  Key (email)=(u1@x) already exists."];
        let mut report = failed("Key (email)=(u1@x) already exists.", &tail);
        report.redact(&r, &[]);
        let f = report.failure.as_ref().unwrap();
        assert_eq!(f.detail.as_deref(), Some("Key (email)=(u1@x) already exists."), "nothing is masked");
        assert!(f.stderr_tail[0].contains("u1@x"));
        report.redact(&r, &["public.customers.email".into()]);
        let f = report.failure.as_ref().unwrap();
        assert_eq!(f.detail.as_deref(), Some("Key (email)=(redacted) already exists."));
        assert!(!f.stderr_tail[0].contains("u1@x"), "{:?}", f.stderr_tail);
    }
}
