//! The `hash` strategy: compare key ranges by hashes computed inside
//! PostgreSQL, bisect the ranges that differ, and read rows only of the small
//! ranges left at the end. Identical ranges never cross the network, which is
//! what a branch far away (a hosted branch over the internet) needs.
//!
//! Applies to tables with a single integer key on PostgreSQL 14 or later
//! (`hash_record_extended`, `bit_xor`); other tables are streamed.
//! Hashes follow the diff's equality: numeric, float, char(n) and jsonb hash
//! by value like they compare, text-selected and character columns hash
//! their bytes (`COLLATE "C"`), so a case change under a case-insensitive
//! collation is still seen.

use std::collections::HashMap;

use crate::error::Result;
use crate::plan::{quote_ident, TablePlan, ALIAS};
use crate::snapshot::Side;
use crate::value::Kind;

/// Bisection stops at ranges with at most this many rows on either side.
const LEAF_ROWS: i64 = 512;
/// Buckets a differing range is split into per round.
const FANOUT: i64 = 32;
/// At most this many buckets in the first round.
const FIRST_ROUND_MAX: i64 = 4096;

/// A key range `lo..=hi`.
pub type Range = (i64, i64);

/// Why the hash strategy cannot handle the table, if it cannot.
pub fn blocker(plan: &TablePlan, p: &Side, c: &Side) -> Option<String> {
    if p.server_version < 140000 || c.server_version < 140000 {
        return Some("needs PostgreSQL 14 or later on both sides".into());
    }
    plan.hash_blocker.clone()
}

/// The row hash expression of one side, in the plan's column order.
fn row_hash(plan: &TablePlan, parent: bool) -> String {
    let q = if parent { &plan.parent_query } else { &plan.child_query };
    // The select list is the plan's column expressions, in order, separated by ", " at depth 0.
    let exprs = split_select(&q.select);
    let parts: Vec<String> = plan
        .columns
        .iter()
        .zip(&exprs)
        .map(|(col, e)| match col.kind {
            // Hashes must differ wherever printed values do (the diff's equality).
            Kind::Text | Kind::Json | Kind::Jsonb => format!("hashtextextended(({e})::text COLLATE \"C\", 0)"),
            // hash_numeric ignores the scale and gives NaN and both infinities one hash.
            Kind::Numeric => format!(
                "{e}, scale({e}), CASE WHEN {e} = 'NaN' THEN 1 WHEN {e} = 'Infinity' THEN 2 \
                 WHEN {e} = '-Infinity' THEN 3 ELSE 0 END"
            ),
            // -0 hashes like 0; NaN payloads differ in the send format, which only costs a re-read.
            Kind::Float4 => format!("float4send({e})"),
            Kind::Float8 => format!("float8send({e})"),
            _ => e.clone(),
        })
        .collect();
    format!("hash_record_extended(ROW({}), 0)", parts.join(", "))
}

/// Splits a select list on top-level commas (expressions hold no commas outside
/// quotes and parentheses: they are identifiers with casts).
fn split_select(select: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (vec![], String::new(), 0, false);
    for ch in select.chars() {
        match ch {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur.trim().to_string());
    out
}

fn key_expr(plan: &TablePlan, parent: bool) -> String {
    let col = &plan.columns[0];
    let name = if parent { &col.parent_name } else { &col.name };
    format!("{ALIAS}.{}::int8", quote_ident(name))
}

/// (rows, hash) per (range index, bucket) on one side.
type Buckets = HashMap<(usize, i64), (i64, i64)>;

/// Wire size of one bucket row (DataRow header and four int8-sized fields).
const BUCKET_ROW_BYTES: u64 = 51;

async fn bucket_hashes(
    side: &Side,
    conn: usize,
    plan: &TablePlan,
    ranges: &[(Range, i64)],
    parent: bool,
) -> Result<Buckets> {
    let q = if parent { &plan.parent_query } else { &plan.child_query };
    let k = key_expr(plan, parent);
    let values: Vec<String> = ranges
        .iter()
        .enumerate()
        .map(|(i, ((lo, hi), w))| format!("({i}, {lo}::int8, {hi}::int8, {w}::int8)"))
        .collect();
    let sql = format!(
        "SELECT pgbd_r.i, ({k} - pgbd_r.lo) / pgbd_r.w, count(*), bit_xor({h})
         FROM {from} JOIN (VALUES {v}) AS pgbd_r(i, lo, hi, w) ON {k} BETWEEN pgbd_r.lo AND pgbd_r.hi
         GROUP BY 1, 2",
        h = row_hash(plan, parent),
        from = q.from,
        v = values.join(", ")
    );
    let rows = side
        .client(conn)
        .query(&sql, &[])
        .await
        .map_err(|e| side.query_error(&format!("hashing key ranges of {}", plan.qualified()), &e))?;
    Ok(rows.iter().map(|r| ((r.get::<_, i32>(0) as usize, r.get::<_, i64>(1)), (r.get(2), r.get(3)))).collect())
}

async fn bounds(side: &Side, conn: usize, plan: &TablePlan, parent: bool) -> Result<(Option<i64>, Option<i64>, i64)> {
    let q = if parent { &plan.parent_query } else { &plan.child_query };
    let k = key_expr(plan, parent);
    let sql = format!("SELECT min({k}), max({k}), count(*) FROM {}", q.from);
    let row = side
        .client(conn)
        .query_one(&sql, &[])
        .await
        .map_err(|e| side.query_error(&format!("reading key bounds of {}", plan.qualified()), &e))?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// What the bisection found: the ranges whose rows must be read, and the
/// bytes the hash queries cost (reported in the table's stats).
pub struct Leaves {
    /// Ranges to read, ascending, disjoint.
    pub ranges: Vec<Range>,
    /// Hash rounds run.
    pub rounds: u32,
    /// Bytes of hash results received from the parent, and from the child (wire size).
    pub bytes: (u64, u64),
}

/// Bisects down to the differing leaf ranges.
pub async fn bisect(plan: &TablePlan, p: &Side, c: &Side, conn: usize) -> Result<Leaves> {
    let (pb, cb) = tokio::try_join!(bounds(p, conn, plan, true), bounds(c, conn, plan, false))?;
    let lo = [pb.0, cb.0].into_iter().flatten().min();
    let hi = [pb.1, cb.1].into_iter().flatten().max();
    let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(Leaves { ranges: vec![], rounds: 0, bytes: (0, 0) }) };
    let Some(span) = hi.checked_sub(lo).and_then(|s| s.checked_add(1)) else {
        return Ok(Leaves { ranges: vec![(lo, hi)], rounds: 0, bytes: (0, 0) });
    };
    let rows = pb.2.max(cb.2);
    let first = (rows / LEAF_ROWS).clamp(1, FIRST_ROUND_MAX);
    let mut pending: Vec<(Range, i64)> = vec![((lo, hi), width(span, first))];
    let mut leaves = vec![];
    let mut rounds = 0;
    let mut bytes = (0, 0);
    while !pending.is_empty() {
        rounds += 1;
        let (ph, ch) = tokio::try_join!(
            bucket_hashes(p, conn, plan, &pending, true),
            bucket_hashes(c, conn, plan, &pending, false)
        )?;
        bytes.0 += ph.len() as u64 * BUCKET_ROW_BYTES;
        bytes.1 += ch.len() as u64 * BUCKET_ROW_BYTES;
        let mut next = vec![];
        let mut keys: Vec<&(usize, i64)> = ph.keys().chain(ch.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (a, b) = (ph.get(key).copied().unwrap_or((0, 0)), ch.get(key).copied().unwrap_or((0, 0)));
            if a == b {
                continue;
            }
            let ((rlo, rhi), w) = pending[key.0];
            let blo = rlo + key.1 * w;
            let bhi = (blo + (w - 1)).min(rhi);
            if a.0.max(b.0) <= LEAF_ROWS || w == 1 {
                leaves.push((blo, bhi));
            } else {
                next.push(((blo, bhi), width(bhi - blo + 1, FANOUT)));
            }
        }
        pending = next;
    }
    leaves.sort();
    Ok(Leaves { ranges: merge_adjacent(leaves), rounds, bytes })
}

fn width(span: i64, buckets: i64) -> i64 {
    (span / buckets + i64::from(span % buckets != 0)).max(1)
}

fn merge_adjacent(ranges: Vec<Range>) -> Vec<Range> {
    let mut out: Vec<Range> = vec![];
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(r.0) => last.1 = r.1,
            _ => out.push(r),
        }
    }
    out
}

/// `WHERE` clause selecting the leaf ranges of one side.
pub fn range_filter(plan: &TablePlan, ranges: &[Range], parent: bool) -> String {
    if ranges.is_empty() {
        return "false".into();
    }
    let k = key_expr(plan, parent);
    let parts: Vec<String> = ranges.iter().map(|(lo, hi)| format!("{k} BETWEEN {lo} AND {hi}")).collect();
    parts.join(" OR ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_lists_split_on_top_level_commas() {
        assert_eq!(split_select(r#""a", "b,c"::text, "d""e""#), [r#""a""#, r#""b,c"::text"#, r#""d""e""#]);
    }

    #[test]
    fn widths_cover_the_span() {
        assert_eq!(width(100, 32), 4);
        assert_eq!(width(5, 32), 1);
        assert_eq!(merge_adjacent(vec![(1, 4), (5, 9), (20, 21)]), [(1, 9), (20, 21)]);
    }
}
