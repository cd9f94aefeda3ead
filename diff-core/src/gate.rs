//! The CI gate: `--fail-on CLASSES` fails a run when a change of a listed
//! class is present, unless it was accepted (`--accept PATTERN`). The gate sits
//! between the change stream and the renderers: it marks accepted data-loss
//! entries in the events themselves, so every format shows the same thing.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::filter::{column_matches, table_matches};
use crate::report::{DataLoss, Event, TableInfo};
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
    fn parse(s: &str) -> Result<Class> {
        CLASSES.iter().find(|(n, _)| *n == s.trim()).map(|(_, c)| *c).ok_or_else(|| {
            let names: Vec<&str> = CLASSES.iter().map(|(n, _)| *n).collect();
            Error::Options(format!("--fail-on {s}: expected one or more of {}", names.join(", ")))
        })
    }

    fn name(self) -> &'static str {
        CLASSES.iter().find(|(_, c)| *c == self).map_or("", |(n, _)| n)
    }
}

/// An `--accept` pattern: a glob over `schema.table[.column]` (or a schema
/// name), optionally for one class only (`deleted-rows:app.sessions`).
#[derive(Debug, Clone)]
struct Accept {
    class: Option<Class>,
    pattern: String,
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
}

impl Verdict {
    /// The line text and Markdown reports end with.
    pub fn line(&self) -> String {
        let mut s = if self.passed {
            format!("gate passed (--fail-on {})", self.fail_on.join(","))
        } else {
            format!("gate FAILED (--fail-on {}): {}", self.fail_on.join(","), self.reasons.join("; "))
        };
        if self.accepted > 0 {
            let _ = write!(s, "; {} accepted", self.accepted);
        }
        s
    }
}

impl Gate {
    /// `fail_on`: comma-separated classes; `accept`: patterns (`--accept` and
    /// the lines of `--accept-file`).
    pub fn new(fail_on: &str, accept: &[String]) -> Result<Gate> {
        let classes = fail_on.split(',').filter(|s| !s.trim().is_empty()).map(Class::parse).collect::<Result<_>>()?;
        let mut accepts = vec![];
        for a in accept.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
            let (class, pattern) = match a.split_once(':') {
                Some((c, p)) => (Some(Class::parse(c)?), p.to_string()),
                None => (None, a.to_string()),
            };
            accepts.push(Accept { class, pattern });
        }
        Ok(Gate { classes, accepts, tables: vec![], reasons: vec![], accepted: 0 })
    }

    /// Patterns of an accept file: one a line, `#` starts a comment.
    pub fn accept_file(text: &str) -> Vec<String> {
        text.lines().map(|l| l.split('#').next().unwrap_or("").trim().to_string()).filter(|l| !l.is_empty()).collect()
    }

    fn asked(&self, c: Class) -> bool {
        self.classes.contains(&c) || self.classes.contains(&Class::Any)
    }

    /// Whether `class` changes on this object are accepted.
    fn accepts(&self, class: Class, schema: &str, table: Option<&str>, column: Option<&str>) -> bool {
        self.accepts.iter().filter(|a| a.class.is_none_or(|c| c == class)).any(|a| match (table, column) {
            (Some(t), Some(c)) => column_matches(&a.pattern, schema, t, c) || table_matches(&a.pattern, schema, t),
            (Some(t), None) => table_matches(&a.pattern, schema, t),
            _ => a.pattern == schema || table_matches(&a.pattern, schema, "*"),
        })
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
                self.check(Class::Rows, &t.schema.clone(), Some(&t.name.clone()), None, what);
            }
            _ => {}
        }
    }

    fn loss(&mut self, l: &mut DataLoss) {
        let (s, t, c) = (l.schema.clone(), l.table.clone(), l.column.clone());
        let what = format!("{} {} {}", l.object(), l.kind.id(), l.count);
        let mut classes = vec![Class::DataLoss];
        if l.kind.is_deleted_rows() {
            classes.push(Class::DeletedRows);
        }
        // Every class that applies must accept it for the entry to count as accepted.
        l.accepted = classes.iter().all(|&k| self.accepts(k, &s, t.as_deref(), c.as_deref()));
        if l.accepted {
            self.accepted += 1;
        }
        for k in classes {
            self.check(k, &s, t.as_deref(), c.as_deref(), what.clone());
        }
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
        let what = format!("{} {} {}", op(ch.op), ch.kind, ch.object);
        if ch.op == ChangeOp::Dropped {
            self.check(Class::DroppedObjects, &schema, table.as_deref(), column.as_deref(), what.clone());
        }
        if ch.danger.contains(&Danger::Security) {
            self.check(Class::Security, &schema, table.as_deref(), column.as_deref(), what.clone());
        }
        self.check(Class::Schema, &schema, table.as_deref(), column.as_deref(), what);
    }

    fn check(&mut self, class: Class, schema: &str, table: Option<&str>, column: Option<&str>, what: String) {
        if self.asked(class) && !self.accepts(class, schema, table, column) {
            let asked = if self.classes.contains(&class) { class } else { Class::Any };
            self.reasons.push(format!("{}: {what}", asked.name()));
        }
    }

    /// The verdict so far (call after the last event).
    pub fn verdict(&self) -> Verdict {
        let mut reasons: Vec<String> = vec![];
        for r in &self.reasons {
            if !reasons.contains(r) {
                reasons.push(r.clone());
            }
        }
        Verdict {
            fail_on: self.classes.iter().map(|c| c.name().to_string()).collect(),
            passed: reasons.is_empty(),
            reasons,
            accepted: self.accepted,
        }
    }
}

fn op(op: ChangeOp) -> &'static str {
    match op {
        ChangeOp::Added => "added",
        ChangeOp::Dropped => "dropped",
        ChangeOp::Altered => "altered",
        ChangeOp::Renamed => "renamed",
    }
}
