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
    pub parent: TidList,
    /// Child ctids.
    pub child: TidList,
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

/// Ascending ctids, stored as varint deltas (2–3 bytes each instead of 8):
/// the list grows with the diff, so it is kept small.
#[derive(Debug, Default, Clone)]
pub struct TidList {
    bytes: Vec<u8>,
    len: usize,
    last: Tid,
}

impl TidList {
    /// Appends a ctid greater than the last one.
    pub fn push(&mut self, t: Tid) {
        let mut d = t - self.last;
        self.last = t;
        self.len += 1;
        loop {
            let b = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                self.bytes.push(b);
                return;
            }
            self.bytes.push(b | 0x80);
        }
    }

    /// Number of ctids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ctids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = Tid> + '_ {
        let mut pos = 0;
        let mut last = 0;
        std::iter::from_fn(move || {
            if pos >= self.bytes.len() {
                return None;
            }
            let (mut d, mut shift) = (0u64, 0);
            loop {
                let b = self.bytes[pos];
                pos += 1;
                d |= ((b & 0x7f) as u64) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            last += d;
            Some(last)
        })
    }
}

/// Sent as one `tid[]` parameter in binary array format, straight from the list.
impl postgres_types::ToSql for TidList {
    fn to_sql(
        &self,
        _: &postgres_types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres_types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.reserve(20 + self.len * 10);
        for v in [1i32, 0, postgres_types::Type::TID.oid() as i32, self.len as i32, 1] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for t in self.iter() {
            out.extend_from_slice(&6i32.to_be_bytes());
            out.extend_from_slice(&((t >> 16) as u32).to_be_bytes());
            out.extend_from_slice(&((t & 0xffff) as u16).to_be_bytes());
        }
        Ok(postgres_types::IsNull::No)
    }

    fn accepts(ty: &postgres_types::Type) -> bool {
        *ty == postgres_types::Type::TID_ARRAY
    }

    postgres_types::to_sql_checked!();
}

/// The suspects' rows of one side, key-ordered: `ctid = ANY($1)` with the
/// ctids as one binary array parameter (COPY takes no parameters, and a
/// literal list would cost memory in proportion to the diff, several times over).
pub fn suspects_sql(plan: &TablePlan, parent: bool) -> String {
    let q = if parent { &plan.parent_query } else { &plan.child_query };
    q.select_sql(Some("ctid = ANY($1::tid[])"))
}

/// A raw field of a binary result row, whatever its type.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> postgres_types::FromSql<'a> for Raw<'a> {
    fn from_sql(
        _: &postgres_types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &postgres_types::Type) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &postgres_types::Type) -> bool {
        true
    }
}

/// Re-frames a result row as a binary COPY tuple (the merge reads those);
/// field bytes are the same binary send format in both.
pub fn row_as_tuple(row: &tokio_postgres::Row) -> Bytes {
    let n = row.len();
    let mut m = Vec::with_capacity(2 + n * 8);
    m.extend_from_slice(&(n as i16).to_be_bytes());
    for i in 0..n {
        match row.try_get::<_, Raw>(i).map(|r| r.0).unwrap_or(None) {
            None => m.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                m.extend_from_slice(&(b.len() as i32).to_be_bytes());
                m.extend_from_slice(b);
            }
        }
    }
    Bytes::from(m)
}

/// The binary COPY header and trailer messages, to frame re-framed rows.
pub fn copy_header() -> Bytes {
    let mut h = b"PGCOPY\n\xff\r\n\0".to_vec();
    h.extend_from_slice(&[0; 8]);
    Bytes::from(h)
}

/// See [`copy_header`].
pub fn copy_trailer() -> Bytes {
    Bytes::from_static(&[0xff, 0xff])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tid_lists_round_trip() {
        let tids: Vec<Tid> = vec![1, 2, 300, 70_000, 1 << 40, (1 << 40) + 1];
        let mut l = TidList::default();
        for t in &tids {
            l.push(*t);
        }
        assert_eq!(l.len(), 6);
        assert_eq!(l.iter().collect::<Vec<_>>(), tids);
        assert!(l.bytes.len() < 6 * 8);
    }
}
