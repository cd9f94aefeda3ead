//! The CI gate: `--fail-on CLASSES` fails a run when a change of a listed
//! class is present, unless it was accepted (`--accept PATTERN`). The gate sits
//! between the change stream and the renderers: it marks accepted data-loss
//! entries in the events themselves, so every format shows the same thing.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::filter::{column_matches, glob_match, table_matches};
use crate::loss::LossKind;
use crate::report::{DataLoss, Event, Report, TableInfo};
use crate::schema::{ChangeOp, Danger, SchemaChange};

/// What `--fail-on` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Any data-loss entry.
    DataLoss,
    /// Rows deleted from tables present on both sides (or emptied tables).
    DeletedRows,
    /// Any dropped schema object.
    DroppedObjects,
    /// Any schema change.
    Schema,
    /// Policies, row-level security, privileges, security definer: changes labelled `security`.
    Security,
    /// Any row change.
    Rows,
    /// Anything at all.
    Any,
}

const CLASSES: &[(&str, Class)] = &[
    ("data-loss", Class::DataLoss),
    ("deleted-rows", Class::DeletedRows),
    ("dropped-objects", Class::DroppedObjects),
    ("schema", Class::Schema),
    ("security", Class::Security),
    ("rows", Class::Rows),
    ("any", Class::Any),
];

impl Class {
    fn parse(s: &str, flag: &str) -> Result<Class> {
        CLASSES.iter().find(|(n, _)| *n == s.trim()).map(|(_, c)| *c).ok_or_else(|| {
            let names: Vec<&str> = CLASSES.iter().map(|(n, _)| *n).collect();
            Error::Options(format!("{flag} {s}: expected one or more of {}", names.join(", ")))
        })
    }

    fn name(self) -> &'static str {
        CLASSES.iter().find(|(_, c)| *c == self).map_or("", |(n, _)| n)
    }
}

/// An `--accept` pattern: a glob over `schema.table[.column]` (or a schema
/// name), optionally for one class only (`deleted-rows:app.sessions`) or one
/// kind of data loss as the report prints it (`truncated:app.products.*`).
#[derive(Debug, Clone)]
struct Accept {
    class: Option<Class>,
    kind: Option<LossKind>,
    pattern: String,
    /// As given, for the warning when it matched nothing.
    given: String,
    /// It accepted at least one change.
    used: std::cell::Cell<bool>,
}

/// The error for `--accept CLASS:PATTERN` with an unknown class: both kinds of prefix are named.
fn unknown_accept_class(c: &str) -> Error {
    let classes: Vec<&str> = CLASSES.iter().map(|(n, _)| *n).collect();
    let kinds: Vec<&str> = crate::loss::RULES.iter().map(|r| r.id).collect();
    Error::Options(format!(
        "--accept {c}:…: expected a class ({}) or a kind of data loss ({})",
        classes.join(", "),
        kinds.join(", ")
    ))
}

/// What a change is about, for matching `--accept` patterns.
struct Object {
    schema: String,
    table: Option<String>,
    column: Option<String>,
    /// Full qualified name (functions with their arguments).
    name: String,
}

/// The gate. Feed it every event ([`Gate::observe`]), then ask [`Gate::verdict`].
#[derive(Debug, Clone)]
pub struct Gate {
    classes: Vec<Class>,
    accepts: Vec<Accept>,
    tables: Vec<TableInfo>,
    reasons: Vec<String>,
    accepted: usize,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Classes asked for, as given.
    pub fail_on: Vec<String>,
    /// No unaccepted change of those classes.
    pub passed: bool,
    /// One line per failing class and object.
    pub reasons: Vec<String>,
    /// Entries accepted.
    pub accepted: usize,
    /// `--accept` patterns that matched no change (a typo accepts nothing).
    pub unused_accepts: Vec<String>,
}

impl Verdict {
    /// The first words of the verdict, without the reasons.
    pub fn headline(&self) -> String {
        let word = if self.passed { "passed" } else { "FAILED" };
        let mut s = format!("gate {word} (--fail-on {})", self.fail_on.join(","));
        if !self.passed {
            let _ = write!(s, ": {} change{}", self.reasons.len(), if self.reasons.len() == 1 { "" } else { "s" });
        }
        s
    }

    /// The line text and Markdown reports end with: the first reasons, and how many more.
    pub fn line(&self) -> String {
        const SHOWN: usize = 10;
        let mut s = self.headline();
        if !self.passed {
            let shown: Vec<&str> = self.reasons.iter().take(SHOWN).map(String::as_str).collect();
            let _ = write!(s, " — {}", shown.join("; "));
            if self.reasons.len() > SHOWN {
                let _ = write!(s, "; and {} more", self.reasons.len() - SHOWN);
            }
        }
        if self.accepted > 0 {
            let _ = write!(s, "; {} accepted", self.accepted);
        }
        for a in &self.unused_accepts {
            let _ = write!(s, "; warning: --accept {a} matched nothing");
        }
        s
    }
}

impl Gate {
    /// `fail_on`: comma-separated classes; `accept`: patterns (`--accept` and
    /// the lines of `--accept-file`).
    pub fn new(fail_on: &str, accept: &[String]) -> Result<Gate> {
        let classes: Vec<Class> = fail_on
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|c| Class::parse(c, "--fail-on"))
            .collect::<Result<_>>()?;
        if classes.is_empty() {
            // An unset variable in a pipeline must not switch the gate off unnoticed.
            return Err(Error::Options("--fail-on: no class given (data-loss, deleted-rows, …, any)".into()));
        }
        let mut accepts = vec![];
        for a in accept.iter().map(|a| a.trim_start_matches('\u{feff}').trim()).filter(|a| !a.is_empty()) {
            let (class, kind, pattern) = match a.split_once(':') {
                Some((c, p)) => match crate::loss::RULES.iter().find(|r| r.id == c.trim()) {
                    Some(rule) => (Some(Class::DataLoss), Some(rule.kind), p.to_string()),
                    None => {
                        (Some(Class::parse(c, "--accept").map_err(|_| unknown_accept_class(c))?), None, p.to_string())
                    }
                },
                None => (None, None, a.to_string()),
            };
            accepts.push(Accept { class, kind, pattern, given: a.to_string(), used: std::cell::Cell::new(false) });
        }
        Ok(Gate { classes, accepts, tables: vec![], reasons: vec![], accepted: 0 })
    }

    /// Patterns of an accept file: one a line, `#` starts a comment.
    pub fn accept_file(text: &str) -> Vec<String> {
        text.lines().map(|l| l.split('#').next().unwrap_or("").trim().to_string()).filter(|l| !l.is_empty()).collect()
    }

    /// Whether a change on this object, of these classes, is accepted: by a
    /// pattern without a class, or one naming any of the change's classes
    /// (`deleted-rows:app.sessions` accepts the emptied table under
    /// `--fail-on data-loss` too: it is the same loss).
    fn accepts(&self, classes: &[Class], object: &Object, kind: Option<LossKind>) -> bool {
        let applies = |a: &&Accept| {
            a.class.is_none_or(|c| classes.contains(&c) || c == Class::Any) && a.kind.is_none_or(|k| Some(k) == kind)
        };
        let mut any = false;
        for a in self.accepts.iter().filter(applies) {
            let p = &a.pattern;
            let hit = match (&object.table, &object.column) {
                (Some(t), Some(c)) => column_matches(p, &object.schema, t, c) || table_matches(p, &object.schema, t),
                (Some(t), None) => table_matches(p, &object.schema, t),
                // A schema, or an object outside tables (sequence, function, enum…) by its full name.
                _ => *p == object.schema || glob_match(p, &object.name) || table_matches(p, &object.schema, "*"),
            };
            if hit {
                a.used.set(true);
                any = true;
            }
        }
        any
    }

    /// Takes one event; marks accepted data-loss entries in it.
    pub fn observe(&mut self, event: &mut Event) {
        match event {
            Event::Started { tables, .. } => self.tables = tables.clone(),
            Event::DataLoss(l) => self.loss(l),
            Event::Schema(c) => self.schema(c),
            Event::TableDone { table, summary } if summary.counts.any() => {
                let Some(t) = self.tables.get(*table) else { return };
                let c = summary.counts;
                let what = format!("{} +{} ~{} -{}", t.qualified(), c.inserted, c.updated, c.deleted);
                let object =
                    Object { schema: t.schema.clone(), table: Some(t.name.clone()), column: None, name: t.qualified() };
                self.check(&[Class::Rows], &object, what, None);
            }
            _ => {}
        }
    }

    fn loss(&mut self, l: &mut DataLoss) {
        let object =
            Object { schema: l.schema.clone(), table: l.table.clone(), column: l.column.clone(), name: l.object() };
        let unit = if l.count == 1 { "" } else { "s" };
        let what = format!("{} {} ({} row{unit} or value{unit})", l.object(), l.kind.id(), l.count);
        let mut classes = vec![Class::DataLoss];
        if l.kind.is_deleted_rows() {
            classes.push(Class::DeletedRows);
        }
        if l.kind.is_dropped_object() {
            classes.push(Class::DroppedObjects);
        }
        l.accepted = self.accepts(&classes, &object, Some(l.kind));
        if l.accepted {
            self.accepted += 1;
        }
        self.check(&classes, &object, what, Some(l.kind));
    }

    fn schema(&mut self, ch: &SchemaChange) {
        if ch.cause.is_some() {
            return; // part of its cause's change
        }
        let (schema, table) = match &ch.table {
            Some((s, t)) => (s.clone(), Some(t.clone())),
            None => (ch.object.split('.').next().unwrap_or("").to_string(), None),
        };
        let column = table
            .as_ref()
            .and_then(|t| ch.object.strip_prefix(&format!("{schema}.{t}.")))
            .filter(|_| ch.kind == "column")
            .map(str::to_string);
        let object = Object { schema, table, column, name: ch.object.clone() };
        let mut classes = vec![Class::Schema];
        if ch.op == ChangeOp::Dropped {
            classes.push(Class::DroppedObjects);
        }
        if ch.danger.contains(&Danger::Security) {
            classes.push(Class::Security);
        }
        self.check(&classes, &object, format!("{} {} {}", ch.op.label(), ch.kind, ch.object), None);
    }

    /// Records a failure for each asked class the change belongs to, unless accepted.
    fn check(&mut self, classes: &[Class], object: &Object, what: String, kind: Option<LossKind>) {
        if self.accepts(classes, object, kind) {
            return;
        }
        for &class in classes {
            if self.classes.contains(&class) {
                self.reasons.push(format!("{}: {what}", class.name()));
            }
        }
        if self.classes.contains(&Class::Any) {
            self.reasons.push(format!("any: {what}"));
        }
    }

    /// Judges a whole [`Report`] (from [`crate::run`]) and marks its accepted data-loss
    /// entries, as observing its events would have.
    ///
    /// ```no_run
    /// # async fn f() -> diff_core::Result<()> {
    /// use diff_core::{gate::Gate, ConnConfig, Options, SideName};
    /// let parent = ConnConfig::parse(SideName::Parent, "dbname=shop")?;
    /// let child = ConnConfig::parse(SideName::Child, "dbname=shop_branch")?;
    /// let mut report = diff_core::run(&parent, &child, &Options::default()).await?;
    /// let verdict = Gate::new("data-loss", &["public.legacy".to_string()])?.judge(&mut report);
    /// if !verdict.passed {
    ///     eprintln!("{}", verdict.headline());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn judge(mut self, report: &mut Report) -> Verdict {
        self.tables = report.tables.iter().map(|t| t.info.clone()).collect();
        for ch in &report.schema_changes {
            self.schema(ch);
        }
        for l in &mut report.data_loss {
            self.loss(l);
        }
        for t in &report.tables {
            let mut done = Event::TableDone { table: t.info.id, summary: t.summary.clone() };
            self.observe(&mut done);
        }
        self.verdict()
    }

    /// The verdict so far (call after the last event).
    pub fn verdict(&self) -> Verdict {
        // Sorted and unique: the same run gives the same verdict, whatever order tables finished in.
        let mut reasons = self.reasons.clone();
        reasons.sort();
        reasons.dedup();
        Verdict {
            fail_on: self.classes.iter().map(|c| c.name().to_string()).collect(),
            passed: reasons.is_empty(),
            reasons,
            accepted: self.accepted,
            unused_accepts: self.accepts.iter().filter(|a| !a.used.get()).map(|a| a.given.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(kind: LossKind, column: &str) -> Event {
        Event::DataLoss(DataLoss {
            kind,
            schema: "public".into(),
            table: Some("products".into()),
            column: Some(column.into()),
            count: 3,
            bytes: None,
            examples: vec![],
            accepted: false,
        })
    }

    #[test]
    fn a_loss_kind_accepts_only_that_kind() {
        let mut gate = Gate::new("data-loss", &["truncated:public.products.*".to_string()]).unwrap();
        for mut e in [loss(LossKind::Truncated, "sku"), loss(LossKind::Rounded, "price")] {
            gate.observe(&mut e);
        }
        let v = gate.verdict();
        assert!(!v.passed);
        assert_eq!(v.accepted, 1);
        assert_eq!(v.reasons, ["data-loss: public.products.price rounded (3 rows or values)"]);
        let err = Gate::new("data-loss", &["cut:public.x".to_string()]).unwrap_err().to_string();
        assert!(err.contains("a kind of data loss") && err.contains("truncated"), "{err}");
    }
}
