//! Tuple identity: on one running PostgreSQL instance, a row version is
//! named by (`ctid`, `xmin`). A branch made with `CREATE DATABASE … TEMPLATE`
//! keeps every untouched row at the same ctid with the same xmin, and a
//! transaction id is never reused by the instance before wraparound, so equal
//! pairs on both sides are the same row version and need not be read at all.
//! This pass reads only those pairs (10 bytes a row, never detoasted), then the
//! merge reads just the "suspect" tuples of each side by TID scan.
//!
//! Preconditions (checked by the engine and the plan): both databases on the
//! same instance (same system identifier and postmaster start time), the xid
//! epoch still 0 (no wraparound ever, so raw xmins are unique), the same plain
//! table (same OID) in the same physical file (same relfilenode: VACUUM FULL,
//! CLUSTER and rewrites move rows to other ctids but keep their xmin, so after
//! one a different row can sit at a ctid with the same xmin), and seq scans in
//! physical order (`synchronize_seqscans = off`, no parallel workers).

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::copy::{Batch, Decoder};
use crate::error::{Error, Result};
use crate::merge::{Feed, SideLabel};
use crate::plan::TablePlan;

/// A ctid as one ordered number: block << 16 | offset.
pub type Tid = u64;

/// Tuples that may differ, per side.
#[derive(Debug, Default)]
pub struct Suspects {
    /// Parent ctids.
    pub parent: Vec<Tid>,
    /// Child ctids.
    pub child: Vec<Tid>,
    /// Tuples checked by identity on the parent, and bytes received.
    pub parent_scanned: (u64, u64),
    /// Same for the child.
    pub child_scanned: (u64, u64),
}

/// Beyond this many suspects (and 10 % of the tuples seen), reading everything is cheaper.
const MAX_SUSPECTS: usize = 200_000;

/// The identity query of one side.
pub fn identity_sql(plan: &TablePlan, parent: bool) -> String {
    let q = if parent { &plan.parent_query } else { &plan.child_query };
    format!("COPY (SELECT ctid, xmin FROM {}) TO STDOUT (FORMAT binary)", q.from)
}

/// `ctid = ANY('{…}'::tid[])`, or `false` for none.
pub fn tid_filter(tids: &[Tid]) -> String {
    if tids.is_empty() {
        return "false".into();
    }
    let mut s = String::with_capacity(tids.len() * 12 + 32);
    s.push_str("ctid = ANY('{");
    for (i, t) in tids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("\"({},{})\"", t >> 16, t & 0xffff));
    }
    s.push_str("}'::tid[])");
    s
}

struct Cursor {
    feed: Feed,
    decoder: Decoder,
    batch: Batch,
    pos: usize,
    rows: u64,
    bytes: u64,
    last: Option<Tid>,
    label: SideLabel,
    table: String,
}

impl Cursor {
    fn new(feed: Feed, label: SideLabel, table: String) -> Cursor {
        Cursor {
            feed,
            decoder: Decoder::new(2),
            batch: Batch::default(),
            pos: 0,
            rows: 0,
            bytes: 0,
            last: None,
            label,
            table,
        }
    }

    fn protocol(&self, message: String) -> Error {
        Error::Protocol {
            side: self.label.name,
            endpoint: self.label.endpoint.clone(),
            table: self.table.clone(),
            message,
        }
    }

    /// Next (ctid, xmin); `Ok(None)` at the end. `Err(None)`: not in physical order.
    fn next(&mut self) -> Result<Option<(Tid, u32)>, Option<Error>> {
        while self.pos >= self.batch.len() {
            match self.feed.blocking_recv() {
                Some(Ok(msgs)) => {
                    self.bytes += msgs.iter().map(|m| m.len() as u64).sum::<u64>();
                    self.batch = self.decoder.decode(msgs).map_err(|m| Some(self.protocol(m)))?;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(Some(e)),
                None if self.decoder.finished => return Ok(None),
                None => return Err(Some(self.protocol("the COPY stream ended before its trailer".into()))),
            }
        }
        let (tid, xmin) = (self.batch.field(self.pos, 0), self.batch.field(self.pos, 1));
        self.pos += 1;
        self.rows += 1;
        let (Some(tid), Some(xmin)) = (tid, xmin) else { return Err(Some(self.protocol("NULL ctid or xmin".into()))) };
        if tid.len() != 6 || xmin.len() != 4 {
            return Err(Some(self.protocol("unexpected ctid or xmin size".into())));
        }
        let block = u32::from_be_bytes([tid[0], tid[1], tid[2], tid[3]]) as u64;
        let t = block << 16 | u16::from_be_bytes([tid[4], tid[5]]) as u64;
        if self.last.is_some_and(|l| l >= t) {
            return Err(None);
        }
        self.last = Some(t);
        Ok(Some((t, u32::from_be_bytes([xmin[0], xmin[1], xmin[2], xmin[3]]))))
    }
}

/// Walks both identity streams in ctid order. `Ok(None)`: identity does not
/// pay off or does not apply (too many suspects, or rows not in physical
/// order); the caller reads the whole table instead.
pub fn merge(table: String, parent: (Feed, SideLabel), child: (Feed, SideLabel)) -> Result<Option<Suspects>> {
    let mut p = Cursor::new(parent.0, parent.1, table.clone());
    let mut c = Cursor::new(child.0, child.1, table);
    let mut s = Suspects::default();
    let fallback = |e: Option<Error>| e.map_or(Ok(None), Err);
    let (mut a, mut b) = (p.next(), c.next());
    loop {
        let (x, y) = match (a, b) {
            (Err(e), _) | (_, Err(e)) => return fallback(e),
            (Ok(x), Ok(y)) => (x, y),
        };
        match (x, y) {
            (None, None) => break,
            (Some((tp, xp)), Some((tc, xc))) if tp == tc => {
                if xp != xc {
                    s.parent.push(tp);
                    s.child.push(tc);
                }
                (a, b) = (p.next(), c.next());
            }
            (Some((tp, _)), Some((tc, _))) if tp < tc => {
                s.parent.push(tp);
                (a, b) = (p.next(), Ok(y));
            }
            (Some(_), Some((tc, _))) | (None, Some((tc, _))) => {
                s.child.push(tc);
                (a, b) = (Ok(x), c.next());
            }
            (Some((tp, _)), None) => {
                s.parent.push(tp);
                (a, b) = (p.next(), Ok(None));
            }
        }
        let seen = p.rows.max(c.rows) as usize;
        if s.parent.len().max(s.child.len()) > MAX_SUSPECTS.max(seen / 10) {
            return Ok(None);
        }
    }
    s.parent_scanned = (p.rows, p.bytes);
    s.child_scanned = (c.rows, c.bytes);
    Ok(Some(s))
}

/// A channel pair for one side's identity stream.
pub fn channel() -> (mpsc::Sender<Result<Vec<Bytes>>>, Feed) {
    mpsc::channel(4)
}
