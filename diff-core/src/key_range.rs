//! Key-range blocks for the `hash` strategy: when a table's key is led by an
//! integer column, a row's block is a range of that column's values, so
//! changes clustered in key order fall in few blocks, and the rows of
//! differing blocks are read as key ranges the key's index serves.
//!
//! Integers order the same on every server and under every collation, and
//! subtract to numbers, so both sides agree on every row's block from two
//! numbers alone: the lowest value `lo` and the block `width`. Both are
//! computed once, from the smallest and largest value over both sides (each
//! read in its side's snapshot, an index endpoint each), and handed to both
//! sides. A row outside `[lo, hi]` is clamped into the first or last block,
//! so every row lands in a block even if the bounds were read apart from the
//! rows.

use crate::error::Result;
use crate::plan::quote_ident;
use crate::plan::{ColumnPlan, TablePlan, ALIAS};
use crate::snapshot::Side;

/// Keys sparser than this many values per row on average are hashed
/// instead: one far outlier would otherwise put almost every row in one block.
const MAX_VALUES_PER_ROW: i128 = 64;

/// Differing key ranges read as `OR`ed index range conditions up to this
/// many; beyond, one bounded scan filtered by block number (a plan of
/// thousands of index scans costs more than it saves).
const MAX_OR_RANGES: usize = 128;

/// Blocks as ranges of the leading key column: block `b` holds the values
/// `lo + b·width ..< lo + (b+1)·width`, values below `lo` going to block 0
/// and above `hi` to the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranges {
    /// Smallest value on either side.
    pub lo: i64,
    /// Largest value on either side.
    pub hi: i64,
    /// Values per block.
    pub width: i64,
    /// Blocks: `(hi - lo) / width + 1`.
    pub count: i64,
}

/// Whether the table's rows can be cut by ranges of its leading key column:
/// a real key (primary or unique, so the column has an index) led by an
/// integer column read as an integer on both sides.
pub fn applies(plan: &TablePlan) -> bool {
    use crate::plan::KeySource;
    let keyed = matches!(plan.key_source, KeySource::PrimaryKey | KeySource::UniqueIndex(_));
    keyed && plan.nkey > 0 && {
        let c = &plan.columns[0];
        !c.literal && c.kind.is_int() && c.parent_kind.is_int()
    }
}

/// The leading key column on one side.
fn column(col: &ColumnPlan, parent: bool) -> String {
    let name = if parent { &col.parent_name } else { &col.name };
    format!("{ALIAS}.{}", quote_ident(name))
}

/// Smallest and largest leading key value on one side (None for an empty table).
pub async fn side_bounds(side: &Side, conn: usize, plan: &TablePlan, parent: bool) -> Result<Option<(i64, i64)>> {
    let q = if parent { &plan.parent_query } else { &plan.child_query };
    let col = column(&plan.columns[0], parent);
    // min()/max() of an indexed column are read from the index's two ends.
    let sql = format!("SELECT min({col})::int8, max({col})::int8 FROM {}", q.from);
    let context = format!("reading the key bounds of {}", plan.qualified());
    let row = side.client(conn).query_one(&sql, &[]).await.map_err(|e| side.query_error(&context, &e))?;
    Ok(row.get::<_, Option<i64>>(0).zip(row.get::<_, Option<i64>>(1)))
}

impl Ranges {
    /// About `target` blocks over `[lo, hi]`, or None when the values are too
    /// sparse for `rows` rows (see [`MAX_VALUES_PER_ROW`]) or span more than
    /// an int8 holds.
    pub fn new(lo: i64, hi: i64, target: i64, rows: i64) -> Option<Ranges> {
        let span = hi as i128 - lo as i128 + 1;
        if span > i64::MAX as i128 || span > MAX_VALUES_PER_ROW * rows.max(1) as i128 {
            return None;
        }
        let target = target.max(1) as i128;
        let width = ((span + target - 1) / target).max(1);
        let count = (span - 1) / width + 1;
        Some(Ranges { lo, hi, width: width as i64, count: count as i64 })
    }

    /// The block number of a row on one side. Clamped first, so the
    /// subtraction stays within int8 whatever the value.
    pub fn block_expr(&self, plan: &TablePlan, parent: bool) -> String {
        let (lo, hi, w) = (self.lo, self.hi, self.width);
        let col = column(&plan.columns[0], parent);
        // Quoted literals: -9223372036854775808 unquoted would be numeric.
        format!("((LEAST(GREATEST(({col})::int8, '{lo}'::int8), '{hi}'::int8) - '{lo}'::int8) / '{w}'::int8)::int4")
    }

    /// First value of block `b` (`b < count`, so no overflow).
    fn start(&self, b: i64) -> i64 {
        self.lo + b * self.width
    }

    /// The condition selecting blocks `a..b` on one side, as a range of the
    /// column (open at the table's ends, where clamped rows live); None for
    /// all blocks.
    pub fn condition(&self, plan: &TablePlan, parent: bool, (a, b): (i64, i64)) -> Option<String> {
        let col = column(&plan.columns[0], parent);
        let mut parts = vec![];
        if a > 0 {
            parts.push(format!("{col} >= '{}'::int8", self.start(a)));
        }
        if b < self.count {
            parts.push(format!("{col} < '{}'::int8", self.start(b)));
        }
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }

    /// The condition selecting the rows of the differing blocks on one side:
    /// contiguous blocks merged into one key range, each an index range read;
    /// past [`MAX_OR_RANGES`] ranges, the span from the first to the last,
    /// filtered by block number.
    pub fn filter(&self, plan: &TablePlan, parent: bool, differing: &[i32]) -> String {
        let runs = runs(differing);
        let cond = |r| self.condition(plan, parent, r).unwrap_or_else(|| "true".into());
        if runs.len() <= MAX_OR_RANGES {
            let parts: Vec<String> = runs.into_iter().map(|r| format!("({})", cond(r))).collect();
            return format!("({})", parts.join(" OR "));
        }
        let span = (runs[0].0, runs[runs.len() - 1].1);
        let list: Vec<String> = differing.iter().map(i32::to_string).collect();
        format!("{} AND {} = ANY ('{{{}}}'::int4[])", cond(span), self.block_expr(plan, parent), list.join(","))
    }
}

/// Ascending block numbers as runs `a..b` of consecutive blocks.
fn runs(blocks: &[i32]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = vec![];
    for &b in blocks {
        let b = b as i64;
        match out.last_mut() {
            Some(last) if last.1 == b => last.1 = b + 1,
            _ => out.push((b, b + 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_span_in_about_target_blocks() {
        let r = Ranges::new(1, 1000, 100, 1000).unwrap();
        assert_eq!((r.width, r.count), (10, 100));
        // Not a multiple: the last block is shorter.
        let r = Ranges::new(-5, 1000, 100, 1000).unwrap();
        assert_eq!((r.width, r.count), (11, 92));
        assert!(r.start(r.count - 1) <= 1000 && r.start(r.count - 1) + r.width > 1000);
        // More blocks than values: one value a block.
        assert_eq!(Ranges::new(7, 9, 100, 3).unwrap(), Ranges { lo: 7, hi: 9, width: 1, count: 3 });
        // A single value.
        assert_eq!(Ranges::new(7, 7, 100, 1).unwrap().count, 1);
    }

    #[test]
    fn sparse_or_huge_spans_are_hashed() {
        assert!(Ranges::new(1, 64_000, 10, 1000).is_some());
        assert!(Ranges::new(1, 64_002, 10, 1000).is_none());
        assert!(Ranges::new(i64::MIN, i64::MAX, 10, i64::MAX).is_none());
        let r = Ranges::new(i64::MIN, i64::MIN + 999, 10, 1000).unwrap();
        assert_eq!(r.start(9), i64::MIN + 900);
    }

    #[test]
    fn consecutive_blocks_make_one_run() {
        assert_eq!(runs(&[0, 1, 2, 5, 7, 8]), [(0, 3), (5, 6), (7, 9)]);
        assert!(runs(&[]).is_empty());
    }
}
