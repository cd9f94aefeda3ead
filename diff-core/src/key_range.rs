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

/// Differing blocks past [`MAX_OR_RANGES`] runs are read as a list of their key values (an index
/// lookup each) when they hold at most this many values; beyond, one bounded scan.
const MAX_LISTED_VALUES: i128 = 1 << 20;

/// Blocks as ranges of the leading key column: block `b` holds the values
/// `lo + b·width ..< lo + (b+1)·width`, values below `lo` going to block 0
/// and above `hi` to the last. A refined cut ([`Ranges::refine`]) cuts each
/// such range into `parts` sub-ranges of `sub` values: block `b·parts + s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranges {
    /// Smallest value on either side.
    pub lo: i64,
    /// Largest value on either side.
    pub hi: i64,
    /// Values per block.
    pub width: i64,
    /// Block numbers: `((hi - lo) / width + 1) · parts`.
    pub count: i64,
    /// Sub-ranges per range of `width` values (1: not refined).
    pub parts: i64,
    /// Values per sub-range (`width` when not refined).
    pub sub: i64,
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
        Some(Ranges { lo, hi, width: width as i64, count: count as i64, parts: 1, sub: width as i64 })
    }

    /// These ranges each cut into about `parts` sub-ranges (never empty ones), or
    /// None when a range holds too few values to cut.
    pub fn refine(&self, parts: i64) -> Option<Ranges> {
        let sub = (self.width + parts.max(1) - 1) / parts.max(1);
        let parts = (self.width + sub - 1) / sub;
        (self.parts == 1 && parts > 1).then_some(Ranges { count: self.count * parts, parts, sub, ..*self })
    }

    /// The block number of a row on one side. Clamped first, so the
    /// subtraction stays within int8 whatever the value.
    pub fn block_expr(&self, plan: &TablePlan, parent: bool) -> String {
        let (lo, hi, w) = (self.lo, self.hi, self.width);
        let col = column(&plan.columns[0], parent);
        // Quoted literals: -9223372036854775808 unquoted would be numeric.
        let d = format!("(LEAST(GREATEST(({col})::int8, '{lo}'::int8), '{hi}'::int8) - '{lo}'::int8)");
        if self.parts == 1 {
            return format!("({d} / '{w}'::int8)::int4");
        }
        let (parts, sub) = (self.parts, self.sub);
        format!("({d} / '{w}'::int8 * {parts} + {d} % '{w}'::int8 / '{sub}'::int8)::int4")
    }

    /// Values `start ..< end` of block `b` (wide integers: the last block may end past int8).
    fn bounds(&self, b: i64) -> (i128, i128) {
        let (range, s) = ((b / self.parts) as i128, (b % self.parts) as i128);
        let (w, sub) = (self.width as i128, self.sub as i128);
        let first = self.lo as i128 + range * w;
        (first + (s * sub).min(w), first + ((s + 1) * sub).min(w))
    }

    /// Values `start ..= last` of blocks `a..b`, None where the run is open
    /// (block 0 takes every value below `lo`, the block holding `hi` every value above).
    fn run_bounds(&self, (a, b): (i64, i64)) -> (Option<i64>, Option<i64>) {
        let start = (a > 0).then(|| self.bounds(a).0 as i64);
        let end = self.bounds(b - 1).1;
        (start, (end <= self.hi as i128).then(|| (end - 1) as i64))
    }

    /// The condition selecting blocks `a..b` on one side, as a range of the
    /// column (open at the table's ends, where clamped rows live); None for
    /// all blocks.
    pub fn condition(&self, plan: &TablePlan, parent: bool, run: (i64, i64)) -> Option<String> {
        let col = column(&plan.columns[0], parent);
        let (start, last) = self.run_bounds(run);
        let parts: Vec<String> =
            [start.map(|s| format!("{col} >= '{s}'::int8")), last.map(|l| format!("{col} <= '{l}'::int8"))]
                .into_iter()
                .flatten()
                .collect();
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }

    /// Runs of the differing blocks as inclusive key bounds, for a join with
    /// `unnest(starts, lasts)` (open ends as int8's extremes): one index range
    /// read per run, however many runs there are.
    pub fn run_arrays(&self, differing: &[i32]) -> (String, String) {
        let (mut starts, mut lasts) = (vec![], vec![]);
        for r in runs(differing) {
            let (s, l) = self.run_bounds(r);
            starts.push(s.unwrap_or(i64::MIN).to_string());
            lasts.push(l.unwrap_or(i64::MAX).to_string());
        }
        (format!("'{{{}}}'::int8[]", starts.join(",")), format!("'{{{}}}'::int8[]", lasts.join(",")))
    }

    /// The condition selecting the rows of the differing blocks on one side:
    /// contiguous blocks merged into one key range, each an index range read;
    /// past [`MAX_OR_RANGES`] ranges, every key value they hold as one list
    /// (an index lookup each) when there are at most [`MAX_LISTED_VALUES`];
    /// else the span from the first to the last, filtered by block number.
    pub fn filter(&self, plan: &TablePlan, parent: bool, differing: &[i32]) -> String {
        let runs = runs(differing);
        let cond = |r| self.condition(plan, parent, r).unwrap_or_else(|| "true".into());
        if runs.len() <= MAX_OR_RANGES {
            let parts: Vec<String> = runs.into_iter().map(|r| format!("({})", cond(r))).collect();
            return format!("({})", parts.join(" OR "));
        }
        if let Some(listed) = self.listed(plan, parent, differing) {
            return listed;
        }
        let span = (runs[0].0, runs[runs.len() - 1].1);
        let list: Vec<String> = differing.iter().map(i32::to_string).collect();
        format!("{} AND {} = ANY ('{{{}}}'::int4[])", cond(span), self.block_expr(plan, parent), list.join(","))
    }

    /// The differing blocks' key values as one list the key's index looks up
    /// (`= ANY` of an array built on the server from the runs' bounds), the
    /// open ends as conditions of their own; None past [`MAX_LISTED_VALUES`].
    fn listed(&self, plan: &TablePlan, parent: bool, differing: &[i32]) -> Option<String> {
        let runs = runs(differing);
        let (lo, hi) = (self.lo as i128, self.hi as i128);
        let values: i128 = runs.iter().map(|&(a, b)| self.bounds(b - 1).1.min(hi + 1) - self.bounds(a).0.max(lo)).sum();
        if values > MAX_LISTED_VALUES {
            return None;
        }
        let col = column(&plan.columns[0], parent);
        let (starts, ends): (Vec<String>, Vec<String>) = runs
            .iter()
            .map(|&(a, b)| (self.bounds(a).0.max(lo).to_string(), (self.bounds(b - 1).1.min(hi + 1) - 1).to_string()))
            .unzip();
        let mut parts = vec![format!(
            "{col} = ANY (ARRAY(SELECT pg_catalog.generate_series(pgbd_r.s, pgbd_r.l) \
             FROM ROWS FROM (pg_catalog.unnest('{{{}}}'::int8[]), pg_catalog.unnest('{{{}}}'::int8[])) AS pgbd_r(s, l)))",
            starts.join(","),
            ends.join(",")
        )];
        // Rows outside [lo, hi] belong to the first and last blocks (none when the bounds hold).
        let (first, last) = (runs[0], runs[runs.len() - 1]);
        if self.run_bounds(first).0.is_none() {
            parts.push(format!("{col} < '{}'::int8", self.lo));
        }
        if self.run_bounds(last).1.is_none() {
            parts.push(format!("{col} > '{}'::int8", self.hi));
        }
        Some(format!("({})", parts.join(" OR ")))
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
        assert!(r.bounds(r.count - 1).0 <= 1000 && r.bounds(r.count - 1).1 > 1000);
        // More blocks than values: one value a block.
        assert_eq!(Ranges::new(7, 9, 100, 3).unwrap(), Ranges { lo: 7, hi: 9, width: 1, count: 3, parts: 1, sub: 1 });
        // A single value.
        assert_eq!(Ranges::new(7, 7, 100, 1).unwrap().count, 1);
    }

    #[test]
    fn sparse_or_huge_spans_are_hashed() {
        assert!(Ranges::new(1, 64_000, 10, 1000).is_some());
        assert!(Ranges::new(1, 64_002, 10, 1000).is_none());
        assert!(Ranges::new(i64::MIN, i64::MAX, 10, i64::MAX).is_none());
        let r = Ranges::new(i64::MIN, i64::MIN + 999, 10, 1000).unwrap();
        assert_eq!(r.bounds(9).0, i64::MIN as i128 + 900);
    }

    #[test]
    fn refined_ranges_cut_each_range_and_stay_open_at_the_ends() {
        // Width 10 over 1..=1000: block 5 holds 51..=60.
        let r = Ranges::new(1, 1000, 100, 1000).unwrap();
        assert_eq!(r.run_bounds((5, 6)), (Some(51), Some(60)));
        // Four parts of 3 values: 3 + 3 + 3 + 1.
        let f = r.refine(4).unwrap();
        assert_eq!((f.parts, f.sub, f.count), (4, 3, 400));
        assert_eq!([f.bounds(20), f.bounds(21), f.bounds(23)], [(51, 54), (54, 57), (60, 61)]);
        assert_eq!(f.run_bounds((20, 24)), r.run_bounds((5, 6)));
        // Block 0 takes every value below lo, the block holding hi every value above.
        assert_eq!(f.run_bounds((0, 1)), (None, Some(3)));
        assert_eq!(f.run_bounds((399, 400)), (Some(1000), None));
        // Never empty sub-ranges; a range of one value, or a refined one, is not cut again.
        assert_eq!(r.refine(7).unwrap().parts, 5);
        assert!(r.refine(1).is_none() && f.refine(2).is_none());
        assert!(Ranges::new(7, 9, 100, 3).unwrap().refine(4).is_none());
    }

    #[test]
    fn consecutive_blocks_make_one_run() {
        assert_eq!(runs(&[0, 1, 2, 5, 7, 8]), [(0, 3), (5, 6), (7, 9)]);
        assert!(runs(&[]).is_empty());
    }
}
