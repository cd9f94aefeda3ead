//! Redaction: the values of sensitive columns are replaced, in every output,
//! by a keyed hash (BLAKE3 in keyed mode), after the comparison and before
//! any renderer sees them. A reviewer still sees that a value changed and
//! which rows share a value, never the value.
//!
//! Columns are chosen by `schema.table.column` globs (`*.email`, `users.*`)
//! and, unless turned off, by a PostgreSQL Anonymizer masking rule
//! (`SECURITY LABEL FOR anon ON COLUMN …`). Redacted columns are still
//! compared. NULL stays NULL: whether a value is present is not hidden.
//! Key values, data-loss examples, the `default` of a redacted column in a
//! schema change, and the key in a duplicate-key error are redacted too.

use crate::filter::column_matches;
use crate::report::{Event, TableInfo};
use crate::value::Value;
use crate::{Error, Result};

/// Hex digits of the keyed hash shown: 64 bits, enough that distinct values
/// of a column do not collide in practice, short enough to read.
const SHOWN_HEX: usize = 16;

/// Which columns to redact and the key to hash them with.
#[derive(Clone)]
pub struct Redactor {
    patterns: Vec<String>,
    masked: bool,
    key: [u8; 32],
    /// Per table id: whether each compared column is redacted.
    columns: Vec<Vec<bool>>,
    tables: Vec<TableInfo>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Redactor").field("patterns", &self.patterns).field("masked", &self.masked).finish()
    }
}

/// Where the hashing key comes from.
#[derive(Debug, Clone)]
pub enum RedactKey {
    /// A secret given by the user: the same secret gives the same hashes in
    /// every run, so reports can be compared with each other.
    Secret(String),
    /// A random key for this run only: hashes cannot be matched across runs.
    Random,
}

impl Redactor {
    /// Redacts columns matching `patterns` (`column`, `table.column`,
    /// `schema.table.column`, globs) and, when `masked`, columns with a
    /// PostgreSQL Anonymizer masking rule.
    ///
    /// ```
    /// use diff_core::redact::{RedactKey, Redactor};
    /// let r = Redactor::new(&["*.email".into()], true, RedactKey::Secret("s3cret".into())).unwrap();
    /// assert!(r.is_active());
    /// ```
    pub fn new(patterns: &[String], masked: bool, key: RedactKey) -> Result<Redactor> {
        for p in patterns {
            if p.is_empty() || p.split('.').count() > 3 {
                return Err(Error::Options(format!(
                    "redaction pattern {p:?}: expected column, table.column or schema.table.column"
                )));
            }
        }
        let key = match key {
            RedactKey::Secret(s) if s.is_empty() => return Err(Error::Options("the redaction key is empty".into())),
            RedactKey::Secret(s) => blake3::derive_key("pgbranchdiff 2026 redaction key", s.as_bytes()),
            RedactKey::Random => random_key()?,
        };
        Ok(Redactor { patterns: patterns.to_vec(), masked, key, columns: vec![], tables: vec![] })
    }

    /// The patterns given (`column`, `table.column`, `schema.table.column`, globs).
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether any column could be redacted (patterns given or masking rules honoured).
    pub fn is_active(&self) -> bool {
        !self.patterns.is_empty() || self.masked
    }

    /// Whether a column is redacted: by a pattern (its child or parent name) or its masking rule.
    pub fn selects(&self, t: &TableInfo, c: &crate::report::ColumnInfo) -> bool {
        (self.masked && c.masking.is_some()) || self.patterns.iter().any(|p| pattern_selects(p, t, c))
    }

    /// Patterns that selected no compared column (valid once `Started` was
    /// applied): a typo in a privacy option must not pass silently.
    pub fn unmatched(&self) -> Vec<&str> {
        let hit = |p: &String| self.tables.iter().any(|t| t.column_info.iter().any(|c| pattern_selects(p, t, c)));
        self.patterns.iter().filter(|p| !hit(p)).map(String::as_str).collect()
    }

    /// The keyed hash of a value as shown, `None` for NULL.
    pub fn hash(&self, v: &Value) -> Value {
        match v {
            Value::Null => Value::Null,
            Value::Redacted(_) => v.clone(),
            v => {
                let text = v.to_text().unwrap_or_default();
                let hex = blake3::keyed_hash(&self.key, text.as_bytes()).to_hex();
                Value::Redacted(hex[..SHOWN_HEX].to_string())
            }
        }
    }

    /// Redacts one event in place. Must see `Started` first (it learns the tables there).
    pub fn apply(&mut self, event: &mut Event) {
        if !self.is_active() {
            return;
        }
        match event {
            Event::Started { tables, .. } => {
                for t in tables.iter_mut() {
                    let flags: Vec<bool> = t.column_info.iter().map(|c| self.selects(t, c)).collect();
                    for (c, &r) in t.column_info.iter_mut().zip(&flags) {
                        c.redacted = r;
                    }
                    if self.columns.len() <= t.id {
                        self.columns.resize(t.id + 1, vec![]);
                    }
                    self.columns[t.id] = flags;
                }
                self.tables = tables.clone();
            }
            Event::Row { table, change } => {
                let Some(flags) = self.columns.get(*table) else { return };
                self.values(flags, &mut change.key);
                for row in [&mut change.before, &mut change.after].into_iter().flatten() {
                    self.values(flags, row);
                }
            }
            Event::DataLoss(l) => {
                let t = self.tables.iter().find(|t| t.schema == l.schema && Some(&t.name) == l.table.as_ref());
                if let Some(flags) = t.and_then(|t| self.columns.get(t.id)).cloned() {
                    for k in &mut l.examples {
                        self.values(&flags, k);
                    }
                }
            }
            Event::Schema(c) => self.schema_change(c),
            _ => {}
        }
    }

    /// Values in column order (a key is the first columns).
    fn values(&self, flags: &[bool], values: &mut [Value]) {
        for (v, _) in values.iter_mut().zip(flags).filter(|(_, &r)| r) {
            *v = self.hash(v);
        }
    }

    /// A redacted column's default is a value of it.
    fn schema_change(&self, c: &mut crate::schema::SchemaChange) {
        if c.kind != "column" {
            return;
        }
        let redacted = self.tables.iter().any(|t| {
            t.column_info.iter().any(|col| {
                col.redacted
                    && [format!("{}.{}", t.qualified(), col.name), format!("{}.{}", t.qualified(), col.parent_name)]
                        .contains(&c.object)
            })
        });
        if !redacted {
            return;
        }
        for attrs in [&mut c.before, &mut c.after] {
            if let Some(d) = attrs.get_mut("default") {
                if let Value::Redacted(h) = self.hash(&Value::Text(d.clone())) {
                    *d = format!("redacted:{h}");
                }
            }
        }
    }

    /// An error that would show a redacted key value shows its columns only.
    pub fn scrub(&self, e: Error) -> Error {
        match e {
            Error::DuplicateKey { side, endpoint, table, key } => {
                let t = self.tables.iter().find(|t| t.qualified() == table);
                let hides =
                    t.is_some_and(|t| self.columns.get(t.id).is_some_and(|f| f.iter().take(t.key.len()).any(|r| *r)));
                let key = match t {
                    Some(t) if hides => t.key.iter().map(|k| format!("{k}=(redacted)")).collect::<Vec<_>>().join(", "),
                    _ => key,
                };
                Error::DuplicateKey { side, endpoint, table, key }
            }
            e => e,
        }
    }
}

/// Whether one pattern selects a column, by either name of a renamed table or column.
fn pattern_selects(p: &str, t: &TableInfo, c: &crate::report::ColumnInfo) -> bool {
    let (ps, pn) = t.parent_name.as_deref().and_then(|q| q.split_once('.')).unwrap_or((&t.schema, &t.name));
    column_matches(p, &t.schema, &t.name, &c.name) || column_matches(p, ps, pn, &c.parent_name)
}

/// A key for this run only, from the operating system's random source.
fn random_key() -> Result<[u8; 32]> {
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| Error::Options(format!("cannot read /dev/urandom for a redaction key: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ColumnInfo, RowChange};

    fn table() -> TableInfo {
        let mut email = ColumnInfo::text("email");
        email.masking = None;
        let mut phone = ColumnInfo::text("phone");
        phone.masking = Some("MASKED WITH FUNCTION anon.partial(phone,2,'*',2)".into());
        TableInfo {
            id: 0,
            schema: "app".into(),
            name: "users".into(),
            parent_name: None,
            key: vec!["email".into()],
            key_source: crate::plan::KeySource::PrimaryKey,
            columns: vec!["email".into(), "phone".into(), "name".into()],
            column_info: vec![email, phone, ColumnInfo::text("name")],
            parent_side: Default::default(),
            child_side: Default::default(),
        }
    }

    fn started() -> Event {
        Event::Started {
            parent: crate::report::Endpoint { endpoint: "p".into(), server_version: 150000 },
            child: crate::report::Endpoint { endpoint: "c".into(), server_version: 150000 },
            tables: vec![table()],
            rows: true,
            schema: true,
            filtered: false,
        }
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn keys_values_and_masked_columns_are_hashed_nulls_and_others_kept() {
        let mut r = Redactor::new(&["*.email".into()], true, RedactKey::Secret("k".into())).unwrap();
        r.apply(&mut started());
        let mut e = Event::Row {
            table: 0,
            change: RowChange {
                op: crate::Op::Update,
                key: vec![text("a@x.org")],
                changed: vec![1],
                before: Some(vec![text("a@x.org"), text("555-1234"), text("Ann")]),
                after: Some(vec![text("a@x.org"), Value::Null, text("Ann")]),
            },
        };
        r.apply(&mut e);
        let Event::Row { change, .. } = e else { unreachable!() };
        let before = change.before.unwrap();
        assert!(matches!(&change.key[0], Value::Redacted(h) if h.len() == SHOWN_HEX));
        assert_eq!(change.key[0], before[0], "the key and its column hash alike");
        assert!(matches!(before[1], Value::Redacted(_)), "masked by its security label");
        assert_eq!(before[2], text("Ann"));
        assert_eq!(change.after.unwrap()[1], Value::Null);
    }

    #[test]
    fn the_same_secret_gives_the_same_hash_another_does_not() {
        let a = Redactor::new(&[], false, RedactKey::Secret("one".into())).unwrap();
        let b = Redactor::new(&[], false, RedactKey::Secret("one".into())).unwrap();
        let c = Redactor::new(&[], false, RedactKey::Secret("two".into())).unwrap();
        let v = text("secret value");
        assert_eq!(a.hash(&v), b.hash(&v));
        assert_ne!(a.hash(&v), c.hash(&v));
        assert_ne!(a.hash(&v), a.hash(&text("secret valuf")));
        // Not the unkeyed hash: a guess cannot be checked without the key.
        let plain = blake3::hash(b"secret value").to_hex();
        assert_ne!(a.hash(&v), Value::Redacted(plain[..SHOWN_HEX].to_string()));
    }

    #[test]
    fn masking_rules_can_be_ignored_and_bad_patterns_are_refused() {
        let mut r = Redactor::new(&[], false, RedactKey::Random).unwrap();
        let mut s = started();
        r.apply(&mut s);
        let Event::Started { tables, .. } = s else { unreachable!() };
        assert!(tables[0].column_info.iter().all(|c| !c.redacted));
        assert!(Redactor::new(&["a.b.c.d".into()], true, RedactKey::Random).is_err());
        assert!(Redactor::new(&[], true, RedactKey::Secret(String::new())).is_err());
    }

    #[test]
    fn duplicate_key_errors_hide_redacted_keys() {
        let mut r = Redactor::new(&["app.users.email".into()], false, RedactKey::Random).unwrap();
        r.apply(&mut started());
        let e = Error::DuplicateKey {
            side: crate::SideName::Parent,
            endpoint: "p".into(),
            table: "app.users".into(),
            key: "email=a@x.org".into(),
        };
        let shown = r.scrub(e).to_string();
        assert!(!shown.contains("a@x.org") && shown.contains("email=(redacted)"), "{shown}");
    }
}
