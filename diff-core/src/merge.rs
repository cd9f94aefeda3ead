//! The ordered merge of one table: two streams of rows in key order, one
//! pass, memory bounded by a few batches. Runs on a blocking thread, never on
//! the async workers.

use std::cmp::Ordering;

use bytes::Bytes;
use tokio::sync::mpsc::Receiver;

use crate::copy::{Batch, Decoder};
use crate::error::{Error, Result, SideName};
use crate::loss::{self, LossKind};
use crate::plan::KeySource;
use crate::plan::TablePlan;
use crate::report::{Counts, DataLoss, Event, Op, RowChange, SideStats, TableSummary};
use crate::value::{compare_opt, decode, equal_opt, Kind, Value};

/// A row's key fields by column index.
type Field<'x> = &'x dyn Fn(usize) -> Option<&'x [u8]>;

/// Messages from one side's COPY, in batches, or the error that ended it.
pub type Feed = Receiver<Result<Vec<Bytes>>>;

/// Identifies the side in protocol errors.
#[derive(Clone)]
pub struct SideLabel {
    /// Parent or child.
    pub name: SideName,
    /// `user@host:port/db`.
    pub endpoint: String,
}

struct Cursor<'a> {
    feed: Feed,
    decoder: Decoder,
    batch: Batch,
    pos: usize,
    stats: SideStats,
    exhausted: bool,
    label: SideLabel,
    plan: &'a TablePlan,
    /// How this side's values are read (the parent's differ after a type change).
    kinds: Vec<Kind>,
    /// The parent's key conversions: its rows arrive in the order of the converted keys.
    conversions: Vec<Option<crate::convert::Conversion>>,
    /// Key of the last row of the previous batch, to check order across batches.
    last_key: Option<Vec<Option<Vec<u8>>>>,
}

impl<'a> Cursor<'a> {
    fn new(feed: Feed, label: SideLabel, plan: &'a TablePlan) -> Self {
        let ncols = plan.columns.len().max(1);
        let parent = label.name == SideName::Parent;
        let kinds = plan.columns.iter().map(|c| if parent { c.parent_kind } else { c.kind }).collect();
        let conversions = plan.columns.iter().map(|c| if parent { c.conversion } else { None }).collect();
        Cursor {
            feed,
            decoder: Decoder::new(ncols),
            batch: Batch::default(),
            pos: 0,
            stats: SideStats::default(),
            exhausted: false,
            label,
            plan,
            kinds,
            conversions,
            last_key: None,
        }
    }

    fn protocol(&self, message: String) -> Error {
        Error::Protocol {
            side: self.label.name,
            endpoint: self.label.endpoint.clone(),
            table: self.plan.qualified(),
            message,
        }
    }

    /// Makes sure a current row exists; false at the end of the stream.
    fn ready(&mut self) -> Result<bool> {
        while self.pos >= self.batch.len() {
            if self.exhausted {
                return Ok(false);
            }
            if !self.batch.is_empty() {
                let last = self.batch.len() - 1;
                self.last_key =
                    Some((0..self.plan.nkey).map(|i| self.batch.field(last, i).map(<[u8]>::to_vec)).collect());
            }
            match self.feed.blocking_recv() {
                Some(Ok(msgs)) => {
                    self.stats.bytes += msgs.iter().map(|m| m.len() as u64).sum::<u64>();
                    self.batch = self.decoder.decode(msgs).map_err(|m| self.protocol(m))?;
                    self.pos = 0;
                    self.stats.rows += self.batch.len() as u64;
                    self.check_batch_order()?;
                }
                Some(Err(e)) => return Err(e),
                None if self.decoder.finished => self.exhausted = true,
                None => return Err(self.protocol("the COPY stream ended before its trailer".into())),
            }
        }
        Ok(true)
    }

    /// The merge is only correct if the server's order is the one we compare
    /// with, and keys are unique where the plan says they are: a violation is
    /// an error, never a wrong diff. Keyless tables (the whole row is the key)
    /// are multisets and may repeat.
    fn check_batch_order(&self) -> Result<()> {
        let b = &self.batch;
        if let (Some(last), false) = (&self.last_key, b.is_empty()) {
            self.check_pair(&|i| last[i].as_deref(), &|i| b.field(0, i), 0)?;
        }
        for row in 1..b.len() {
            self.check_pair(&|i| b.field(row - 1, i), &|i| b.field(row, i), row)?;
        }
        Ok(())
    }

    /// Row `row` of the batch (`z`) after the row before it (`a`).
    fn check_pair<'x>(&self, a: Field<'x>, z: Field<'x>, row: usize) -> Result<()> {
        let (nkey, unique) = (self.plan.nkey, self.plan.key_source != KeySource::WholeRow);
        match side_key_order(&self.kinds, &self.conversions, nkey, a, z) {
            Ordering::Greater => Err(self.out_of_order()),
            // A tie made by a rounding conversion is no duplicate; equal stored keys are.
            Ordering::Equal if unique && side_key_order(&self.kinds, &[], nkey, a, z) == Ordering::Equal => {
                Err(self.duplicate(row))
            }
            _ => Ok(()),
        }
    }

    fn out_of_order(&self) -> Error {
        self.protocol(format!(
            "rows arrived out of the order the diff compares keys in ({}); this is a bug in pgbranchdiff: \
             please report it with the key's column types",
            self.plan.key_names().join(", ")
        ))
    }

    fn duplicate(&self, row: usize) -> Error {
        let key: Vec<String> = self.plan.columns[..self.plan.nkey]
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = decode(self.kinds[i], c.literal, self.batch.field(row, i));
                format!("{}={}", c.name, v.to_text().unwrap_or_else(|| "NULL".into()))
            })
            .collect();
        Error::DuplicateKey {
            side: self.label.name,
            endpoint: self.label.endpoint.clone(),
            table: self.plan.qualified(),
            key: key.join(", "),
        }
    }

    fn field(&self, col: usize) -> Option<&[u8]> {
        self.batch.field(self.pos, col)
    }

    fn values(&self) -> Vec<Value> {
        let parent = self.label.name == SideName::Parent;
        self.plan
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                // json selected as text (a key of a keyless table) is still JSON: one type per column.
                let shape = if parent { &c.loss_shapes.0 } else { &c.loss_shapes.1 };
                match decode(self.kinds[i], c.literal, self.field(i)) {
                    Value::Literal(s) if c.literal && shape.is_json() => Value::Json(s),
                    v => v,
                }
            })
            .collect()
    }
}

/// Diffs one table. `emit` receives every row change and progress; an error
/// from it (the consumer went away) stops the merge.
pub fn run(
    plan: &TablePlan,
    parent: (Feed, SideLabel),
    child: (Feed, SideLabel),
    mut emit: impl FnMut(Event) -> Result<()>,
) -> Result<TableSummary> {
    let started = std::time::Instant::now();
    let mut p = Cursor::new(parent.0, parent.1, plan);
    let mut c = Cursor::new(child.0, child.1, plan);
    let mut counts = Counts::default();
    let nkey = plan.nkey;
    let mut compared: u64 = 0;
    let mut losses = Losses::default();
    let watch_unchanged = plan.columns.iter().any(|c| c.type_changed || !c.removed_labels.is_empty());
    loop {
        let (hp, hc) = (p.ready()?, c.ready()?);
        let ord = match (hp, hc) {
            (false, false) => break,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (true, true) => compare_keys(&p, &c),
        };
        let change = match ord {
            Ordering::Less => {
                let before = p.values();
                p.pos += 1;
                Some(RowChange {
                    op: Op::Delete,
                    key: before[..nkey].to_vec(),
                    changed: vec![],
                    before: Some(before),
                    after: None,
                })
            }
            Ordering::Greater => {
                let after = c.values();
                c.pos += 1;
                Some(RowChange {
                    op: Op::Insert,
                    key: after[..nkey].to_vec(),
                    changed: vec![],
                    before: None,
                    after: Some(after),
                })
            }
            Ordering::Equal => {
                let changed = changed_columns(&p, &c, nkey);
                // Unchanged rows need a look only where a type change can have lost values.
                if changed.is_some() || watch_unchanged {
                    losses.observe(&p, &c, changed.as_deref());
                }
                let change = changed.map(|changed| {
                    let (before, after) = (p.values(), c.values());
                    RowChange {
                        op: Op::Update,
                        key: after[..nkey].to_vec(),
                        changed,
                        before: Some(before),
                        after: Some(after),
                    }
                });
                p.pos += 1;
                c.pos += 1;
                change
            }
        };
        if let Some(change) = change {
            counts.add(change.op);
            emit(Event::Row { table: plan.id, change })?;
        }
        compared += 1;
        if compared.is_multiple_of(65_536) {
            emit(Event::Progress { table: plan.id, rows: p.stats.rows })?;
        }
    }
    Ok(TableSummary {
        counts,
        parent: p.stats,
        child: c.stats,
        millis: started.elapsed().as_millis() as u64,
        losses: losses.finish(plan),
        ..Default::default()
    })
}

/// Key examples kept per column and kind of loss.
const LOSS_EXAMPLES: usize = 3;

/// Values lost in place, counted per (column, kind) while merging: the count and a few keys.
#[derive(Default)]
struct Losses {
    found: std::collections::BTreeMap<(usize, LossKind), Found>,
}

type Found = (u64, Vec<Vec<Value>>);

impl Losses {
    /// Classifies the changed columns of a row present on both sides, and the columns whose
    /// type changed (a cast that rounds leaves the row equal in the new type, but values lost):
    /// the rule of [`loss::lost`].
    fn observe(&mut self, p: &Cursor, c: &Cursor, changed: Option<&[usize]>) {
        let plan = p.plan;
        for i in plan.nkey..plan.columns.len() {
            let col = &plan.columns[i];
            let is_changed = changed.is_some_and(|ch| ch.contains(&i));
            if !is_changed && !col.type_changed && col.removed_labels.is_empty() {
                continue;
            }
            let text = |f: Option<&[u8]>, kind: Kind| match kind {
                Kind::Jsonb => f.map(|b| String::from_utf8_lossy(b.strip_prefix(&[1u8]).unwrap_or(b)).into_owned()),
                _ => f.map(|b| String::from_utf8_lossy(b).into_owned()),
            };
            let removed = !col.removed_labels.is_empty()
                && text(p.field(i), Kind::Text).is_some_and(|v| col.removed_labels.contains(&v));
            let kind = match (p.field(i), c.field(i)) {
                _ if removed => Some(LossKind::EnumLabelRemoved),
                (Some(_), None) if is_changed => Some(LossKind::Nulled),
                (Some(_), Some(_)) if is_changed && matches!(col.kind, Kind::Json | Kind::Jsonb) => {
                    let (a, b) = (text(p.field(i), p.kinds[i]), text(c.field(i), c.kinds[i]));
                    a.zip(b).is_some_and(|(a, b)| loss::shrunk_json(&a, &b)).then_some(LossKind::Shrunk)
                }
                (Some(a), Some(b)) => loss::lost(&col.loss_shapes.0, a, &col.loss_shapes.1, b),
                _ => None,
            };
            if let Some(kind) = kind {
                let entry = self.found.entry((i, kind)).or_default();
                entry.0 += 1;
                if entry.1.len() < LOSS_EXAMPLES {
                    entry.1.push(
                        (0..plan.nkey).map(|k| decode(c.kinds[k], plan.columns[k].literal, c.field(k))).collect(),
                    );
                }
            }
        }
    }

    fn finish(self, plan: &TablePlan) -> Vec<DataLoss> {
        self.found
            .into_iter()
            .map(|((i, kind), (count, examples))| DataLoss {
                kind,
                schema: plan.schema.clone(),
                table: Some(plan.name.clone()),
                column: Some(plan.columns[i].name.clone()),
                count,
                bytes: None,
                examples,
                accepted: false,
            })
            .collect()
    }
}

/// Order of the parent's key against the child's, in the child's terms.
#[inline]
fn compare_keys(p: &Cursor, c: &Cursor) -> Ordering {
    for (i, col) in p.plan.columns[..p.plan.nkey].iter().enumerate() {
        let o = match (&col.conversion, p.field(i), c.field(i)) {
            (Some(cv), Some(a), Some(b)) => cv.compare(a, b),
            (_, a, b) => compare_opt(col.kind, a, b),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Order of two keys of one side: in the child's terms where the parent's
/// key columns are converted (`conversions`; empty for the stored order).
#[inline]
fn side_key_order(
    kinds: &[Kind],
    conversions: &[Option<crate::convert::Conversion>],
    nkey: usize,
    a: Field<'_>,
    b: Field<'_>,
) -> Ordering {
    for (i, kind) in kinds[..nkey].iter().enumerate() {
        let o = match (conversions.get(i).copied().flatten(), a(i), b(i)) {
            (Some(cv), Some(x), Some(y)) => cv.compare_parents(x, y),
            (_, x, y) => compare_opt(*kind, x, y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Whether the parent's value equals the child's, in the child's terms.
#[inline]
fn same_value(col: &crate::plan::ColumnPlan, a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (&col.conversion, a, b) {
        (Some(cv), Some(a), Some(b)) => cv.equal(a, b),
        (_, a, b) => equal_opt(col.kind, a, b),
    }
}

/// `None` when the rows are equal; else the indexes of the columns that differ.
#[inline]
fn changed_columns(p: &Cursor, c: &Cursor, nkey: usize) -> Option<Vec<usize>> {
    let cols = &p.plan.columns;
    let first = (nkey..cols.len()).find(|&i| !same_value(&cols[i], p.field(i), c.field(i)))?;
    Some((first..cols.len()).filter(|&i| !same_value(&cols[i], p.field(i), c.field(i))).collect())
}
