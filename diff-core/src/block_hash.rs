//! The `hash` strategy: block digests computed inside PostgreSQL in one scan
//! per side, compared here, and only the rows of differing blocks read.
//!
//! A row's block is a range of its key when the key is led by an integer
//! column ([`crate::key_range`]): changes clustered in key order fall in few
//! blocks, and differing blocks are read as index ranges. Otherwise it is a
//! hash of its key (of the whole row in a keyless table): which block a row
//! falls in then depends on neither server's sort order nor collation, so two
//! servers that sort text differently still agree, and any key type works.
//! Each side returns, per block, the sum modulo 2^64 of 64-bit row hashes
//! (order-independent, and duplicates of a multiset add up instead of
//! cancelling). Blocks whose digests differ are read with one filtered COPY
//! per side, in key order, and merged exactly like the stream path, which
//! therefore decides every change.
//!
//! Row hashes follow the diff's equality rule ("What counts as a change" in
//! `docs/architecture.md`): each column is hashed, with its position as seed,
//! by a function that sees exactly what the rule compares (integers widened
//! to int8, numeric with its scale, floats with `-0` and one NaN, character
//! data as bytes whatever the collation, char(n) without its padding, and
//! every type read as text — arrays, composites, intervals, json … — as its
//! text, so the rule holds at every depth); dates, times, timestamps and bytea
//! go into one array of their send formats. The column hashes are combined by
//! XOR and mixed once. Every function used exists from PostgreSQL 11 on.

use futures_util::{pin_mut, TryStreamExt};

use crate::error::Result;
use crate::key_range::{self, Ranges};
use crate::options::Shard;
use crate::plan::{quote_ident, ColumnPlan, TablePlan, ALIAS};
use crate::snapshot::Side;
use crate::value::Kind;

/// Bytes of one block's digest on the wire: its number (int4) and its sum
/// (int8), packed into `bytea` values of up to 65,536 digests (a row per
/// digest would cost 35 bytes).
const DIGEST_BYTES: u64 = 12;
/// Digests packed into one value.
const DIGESTS_PER_VALUE: i64 = 65_536;

/// Fewest rows a block holds on average: smaller blocks cost more digest bytes than they save.
const MIN_BLOCK_ROWS: i64 = 8;
/// Most rows a block holds on average: larger blocks read too many unchanged rows per change.
const MAX_BLOCK_ROWS: i64 = 256;
/// Digest bytes aimed at, as a share of the table's bytes on disk (1/250: identical tables cost
/// under 1 % of what streaming them does, scattered changes read few unchanged rows, and the
/// servers' hash aggregates sum fewer, fuller blocks: grouping 5 M rows took 2.2 s in blocks of
/// 15 rows, 1.4 s in blocks of 64).
const DIGEST_SHARE: i64 = 250;
/// At most this many blocks (16 bytes each per side in memory).
const MAX_BLOCKS: i64 = 1 << 22;

/// How many blocks a table is cut into, from its estimated rows and bytes:
/// digests cost about 1/250 of the table's bytes on disk, each block holding 8 to 256
/// rows on average (a narrow table gets fuller blocks, a wide one emptier).
pub fn block_count(rows: i64, bytes: i64) -> i64 {
    let rows = rows.max(1);
    let by_bytes = bytes.max(0) / DIGEST_SHARE / DIGEST_BYTES as i64;
    let lo = (rows + MAX_BLOCK_ROWS - 1) / MAX_BLOCK_ROWS;
    let hi = (rows + MIN_BLOCK_ROWS - 1) / MIN_BLOCK_ROWS;
    by_bytes.clamp(lo, hi).clamp(1, MAX_BLOCKS)
}

/// How one column's value enters its row's hash.
enum Part {
    /// A 64-bit hash of the value under the equality rule, NULL for NULL.
    Hash(String),
    /// Bytes equal exactly when the values are equal under the rule, NULL for
    /// NULL: hashed together, one array per row, for types whose own hash
    /// function is not exact (timestamps' fold 64 bits into 32) or missing (bytea).
    Bytes(String),
}

/// How column `i`'s value `e` enters the row hash on a side whose text is
/// UTF-8 or not. Every function used exists from PostgreSQL 11 on and hashes
/// exactly what the rule compares: equal values hash equal (so unchanged blocks
/// match), and values that differ under the rule feed different inputs to a
/// 64-bit hash.
fn value_part(kind: Kind, literal: bool, type_oid: u32, e: &str, i: usize, utf8: bool) -> Part {
    // Character data: its bytes (`COLLATE "C"` hashes bytes whatever the column's
    // collation, even a nondeterministic one). A side that is not UTF-8 converts
    // first, as the client does: the same bytes in two encodings can be different text.
    let text = |t: String| {
        if utf8 {
            Part::Hash(format!("pg_catalog.hashtextextended(({t}) COLLATE \"C\", {i})"))
        } else {
            Part::Bytes(format!("pg_catalog.convert_to({t}, 'UTF8')"))
        }
    };
    if literal {
        return text(crate::plan::as_text(e, type_oid));
    }
    match kind {
        // Widened, so an int4 → int8 change keeps equal values equal; the value is the
        // seed, which enters the hash whole (`hashint8extended` folds it to 32 bits).
        Kind::Int2 | Kind::Int4 | Kind::Int8 | Kind::Oid => {
            Part::Hash(format!("pg_catalog.hashint4extended({i}, ({e})::int8)"))
        }
        // The value's hash ignores the display scale, so the scale is hashed in; NaN and
        // the infinities have no scale and one value's hash, so they are hashed as text.
        Kind::Numeric => Part::Hash(format!(
            "COALESCE(pg_catalog.hashint4extended(pg_catalog.scale({e}), pg_catalog.hash_numeric_extended({e}, {i})), \
             pg_catalog.hashtextextended(({e})::text, {i}))"
        )),
        // Widened to float8; every NaN hashes as one NaN. `0` and `-0` hash alike there, so
        // zeros are hashed as their text.
        Kind::Float4 | Kind::Float8 => Part::Hash(format!(
            "CASE WHEN ({e})::float8 = 0::float8 THEN pg_catalog.hashtextextended((({e})::float8)::text, {i}) \
             ELSE pg_catalog.hashfloat8extended(({e})::float8, {i}) END"
        )),
        Kind::Bool => Part::Hash(format!("pg_catalog.hashint4extended(({e})::int4, {i})")),
        Kind::Uuid => Part::Hash(format!("pg_catalog.uuid_hash_extended({e}, {i})")),
        Kind::Bytea => Part::Bytes(e.to_string()),
        Kind::Date => Part::Bytes(format!("pg_catalog.date_send({e})")),
        Kind::Time => Part::Bytes(format!("pg_catalog.time_send({e})")),
        Kind::Timestamp => Part::Bytes(format!("pg_catalog.timestamp_send({e})")),
        Kind::Timestamptz => Part::Bytes(format!("pg_catalog.timestamptz_send({e})")),
        // jsonb's text is its send format without the version byte; char(n) → text drops
        // the padding, which the rule ignores.
        Kind::Text | Kind::BpChar | Kind::Json | Kind::Jsonb => text(format!("({e})::text")),
    }
}

/// A column reference on one side.
fn column_ref(col: &ColumnPlan, parent: bool) -> String {
    let name = if parent { &col.parent_name } else { &col.name };
    format!("{ALIAS}.{}", quote_ident(name))
}

/// What a NULL in column `i` hashes to: a constant of its own per column.
fn null_hash(i: usize) -> i64 {
    (0x9E37_79B9_7F4A_7C15_u64.wrapping_mul(i as u64 + 1) ^ 0x5851_F42D_4C95_7F2D) as i64
}

/// A 64-bit hash of these columns' values on one side. Each column hashes with
/// its position as seed, the hashes are combined by XOR and the result mixed
/// once more as the seed of a hash keyed by `seed`: the key hash, the row hash
/// and the shard hash of the same values are independent, and a block's sum
/// of row hashes is no sum over each column apart (two rows swapping one
/// column's values change it).
fn columns_hash(cols: &[ColumnPlan], q: &crate::plan::Query, parent: bool, seed: i64) -> String {
    mix(seed, &columns_xor(cols, q, parent))
}

/// The column hashes of these columns combined by XOR, before the final mix.
fn columns_xor(cols: &[ColumnPlan], q: &crate::plan::Query, parent: bool) -> String {
    if cols.is_empty() {
        return "0::int8".into();
    }
    let (mut hashes, mut bytes) = (vec![], vec![]);
    for (i, c) in cols.iter().enumerate() {
        let (kind, oid) = if parent { (c.parent_kind, c.type_oids.0) } else { (c.kind, c.type_oids.1) };
        match value_part(kind, c.literal, oid, &column_ref(c, parent), i + 1, q.utf8) {
            Part::Hash(h) => hashes.push(format!("COALESCE({h}, '{}'::int8)", null_hash(i + 1))),
            // Its position in the array tells the columns apart (NULL elements count as 0).
            Part::Bytes(b) => bytes.push(b),
        }
    }
    if !bytes.is_empty() {
        hashes.push(format!("pg_catalog.hash_array_extended(ARRAY[{}]::bytea[], 0)", bytes.join(", ")));
    }
    hashes.join(" # ")
}

/// The combined column hashes `x` mixed once more, keyed by `seed`.
fn mix(seed: i64, x: &str) -> String {
    format!("pg_catalog.hashint4extended({seed}, {x})")
}

/// A key hash's block number out of `n`.
fn hash_block(h: &str, n: i64) -> String {
    format!("((({h}) & 9223372036854775807) % {n})::int4")
}

/// The row hash of one side.
pub fn row_hash(plan: &TablePlan, parent: bool) -> String {
    columns_hash(&plan.columns, side_query(plan, parent), parent, 0)
}

/// One side's row query.
fn side_query(plan: &TablePlan, parent: bool) -> &crate::plan::Query {
    if parent {
        &plan.parent_query
    } else {
        &plan.child_query
    }
}

/// How rows are cut into blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Block `hash(key) mod count` (the whole row's hash without a key): any
    /// key type under any collation.
    KeyHash(i64),
    /// Ranges of an integer leading key column ([`crate::key_range`]).
    KeyRange(Ranges),
}

impl Cut {
    /// Blocks the table is cut into.
    pub fn count(&self) -> i64 {
        match self {
            Cut::KeyHash(n) => *n,
            Cut::KeyRange(r) => r.count,
        }
    }

    /// The block number of a row on one side.
    pub fn block_expr(&self, plan: &TablePlan, parent: bool) -> String {
        match self {
            Cut::KeyHash(n) => {
                hash_block(&columns_hash(&plan.columns[..plan.nkey], side_query(plan, parent), parent, 1), *n)
            }
            Cut::KeyRange(r) => r.block_expr(plan, parent),
        }
    }

    /// Filters selecting the rows of blocks `a..b` on one side: a condition
    /// on the rows (a key range, which an index or a cheap filter serves), or
    /// one on the computed block number `b` (key hashes: each connection of a
    /// split table computes every row's key hash, but the row hash only of its
    /// range's rows). None for all blocks.
    fn part_filters(&self, plan: &TablePlan, parent: bool, (a, b): (i64, i64)) -> (Option<String>, Option<String>) {
        match self {
            _ if (a, b) == (0, self.count()) => (None, None),
            Cut::KeyHash(_) => (None, Some(format!("b >= {a} AND b < {b}"))),
            Cut::KeyRange(r) => (r.condition(plan, parent, (a, b)), None),
        }
    }
}

/// The cut for a table of about `rows` rows and `bytes` bytes: ranges of its
/// integer leading key when both sides' bounds allow, key hashes otherwise.
pub async fn cut(plan: &TablePlan, (p, c): (&Side, &Side), conn: usize) -> Result<Cut> {
    let target = block_count(plan.rows, plan.bytes);
    if !key_range::applies(plan) {
        return Ok(Cut::KeyHash(target));
    }
    let (pb, cb) =
        tokio::try_join!(key_range::side_bounds(p, conn, plan, true), key_range::side_bounds(c, conn, plan, false))?;
    let bounds = match (pb, cb) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, b) => a.or(b),
    };
    let ranges = bounds.and_then(|(lo, hi)| Ranges::new(lo, hi, target, plan.rows));
    Ok(ranges.map_or(Cut::KeyHash(target), Cut::KeyRange))
}

/// The condition selecting one shard's rows on one side: a key hash of its
/// own seed, independent of the block count (which follows statistics that
/// may change between the shards' runs).
fn shard_condition(plan: &TablePlan, parent: bool, shard: Shard) -> String {
    let h = columns_hash(&plan.columns[..plan.nkey], side_query(plan, parent), parent, 2);
    format!("((({h}) & 9223372036854775807) % {}) = {}", shard.count, shard.index)
}

/// What one digest query covers: blocks `lo..hi` of the table, within a shard.
#[derive(Debug, Clone, Copy)]
struct Scope {
    cut: Cut,
    range: (i64, i64),
    shard: Option<Shard>,
}

/// A digest: (block, sum of its row hashes mod 2^64). A 64-bit sum of random
/// hashes tells multisets apart by itself (a duplicate adds its hash again),
/// so no row count is sent.
type Digest = (i32, i64);

/// Server memory per block while summing (measured: 333,000 blocks took 78 MB in PostgreSQL 15).
const BYTES_PER_BLOCK: i64 = 256;
/// Most `work_mem` a digest query asks for, in kB: past it the sums spill to disk, slower but right.
const MAX_WORK_MEM_KB: i64 = 512 * 1024;

/// Raises `work_mem` for the rest of the transaction (never lowers it) so that
/// `blocks` sums fit in memory: at the default 4 MB a large table's hash
/// aggregate spills to disk and hashing takes twice as long.
async fn fit_work_mem(side: &Side, conn: usize, blocks: i64, context: &str) -> Result<()> {
    let kb = (blocks * BYTES_PER_BLOCK / 1024).min(MAX_WORK_MEM_KB);
    let sql = format!(
        "SELECT pg_catalog.set_config('work_mem', GREATEST(setting::int8, {kb})::text || 'kB', true) \
         FROM pg_catalog.pg_settings WHERE name = 'work_mem'"
    );
    side.client(conn).batch_execute(&sql).await.map_err(|e| side.query_error(context, &e))
}

/// Per-block digests of one side for `scope`, sorted by block, and the bytes received.
async fn digests(side: &Side, conn: usize, plan: &TablePlan, parent: bool, scope: Scope) -> Result<(Vec<Digest>, u64)> {
    let q = side_query(plan, parent);
    let (rows, blocks) = scope.cut.part_filters(plan, parent, scope.range);
    let rows: Vec<String> =
        [rows, scope.shard.map(|s| shard_condition(plan, parent, s))].into_iter().flatten().collect();
    let filter = if rows.is_empty() { String::new() } else { format!(" WHERE {}", rows.join(" AND ")) };
    let part = blocks.map(|b| format!(" WHERE {b}")).unwrap_or_default();
    let rows = match scope.cut {
        // A keyless table's block is its whole row's hash: the column hashes are
        // computed once per row (`OFFSET 0` keeps the planner from inlining them twice).
        Cut::KeyHash(n) if plan.nkey == plan.columns.len() => format!(
            "SELECT {} AS b, {} AS h FROM (SELECT {} AS x FROM {}{filter} OFFSET 0) AS pgbd_x",
            hash_block(&mix(1, "x"), n),
            mix(0, "x"),
            columns_xor(&plan.columns, q, parent),
            q.from
        ),
        _ => format!(
            "SELECT {} AS b, {} AS h FROM {}{filter}",
            scope.cut.block_expr(plan, parent),
            row_hash(plan, parent),
            q.from
        ),
    };
    let context = format!("hashing the blocks of {}", plan.qualified());
    fetch_digests(side, conn, &digest_sql(&rows, &part), scope.range.1 - scope.range.0, &context).await
}

/// The digest query over `rows` (a query of block numbers `b` and row hashes
/// `h`), `part` filtering its block numbers. sum(int8) is exact (numeric);
/// reduced modulo 2^64 into int8's range, per block only. Each digest is
/// packed as int4send(block) || int8send(sum), ascending, 65,536 to a value.
fn digest_sql(rows: &str, part: &str) -> String {
    format!(
        "SELECT string_agg(int4send(b) || int8send(s), ''::bytea ORDER BY b)
         FROM (SELECT b, ((((sum(h) % 18446744073709551616) + 18446744073709551616) % 18446744073709551616)
                          - 9223372036854775808)::int8 AS s
               FROM ({rows}) AS pgbd_h{part}
               GROUP BY b) AS pgbd_d
         GROUP BY b / {DIGESTS_PER_VALUE}"
    )
}

/// Runs a digest query summing about `blocks` blocks: the digests, sorted by block, and the bytes received.
async fn fetch_digests(side: &Side, conn: usize, sql: &str, blocks: i64, context: &str) -> Result<(Vec<Digest>, u64)> {
    fit_work_mem(side, conn, blocks, context).await?;
    let rows =
        side.client(conn).query_raw(sql, std::iter::empty::<i32>()).await.map_err(|e| side.query_error(context, &e))?;
    pin_mut!(rows);
    let (mut out, mut bytes) = (vec![], 0);
    while let Some(r) = rows.try_next().await.map_err(|e| side.query_error(context, &e))? {
        let packed: &[u8] = r.get(0);
        bytes += packed.len() as u64 + 11;
        out.extend(unpack(packed));
    }
    out.sort_unstable();
    Ok((out, bytes))
}

/// Digests from `int4send(block) || int8send(sum)` packed back to back.
fn unpack(packed: &[u8]) -> impl Iterator<Item = Digest> + '_ {
    packed.chunks_exact(DIGEST_BYTES as usize).map(|d| {
        let block = i32::from_be_bytes(d[..4].try_into().expect("4 bytes"));
        (block, i64::from_be_bytes(d[4..].try_into().expect("8 bytes")))
    })
}

/// Blocks whose digests differ between two sorted digest lists (a block
/// present on one side only differs), and how many blocks hold rows on either side.
fn differing(p: &[Digest], c: &[Digest]) -> (Vec<i32>, i64) {
    let (mut i, mut j, mut out, mut present) = (0, 0, vec![], 0);
    while i < p.len() || j < c.len() {
        present += 1;
        match (p.get(i), c.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                if a != b {
                    out.push(a.0);
                }
                i += 1;
                j += 1;
            }
            (Some(a), b) if b.is_none_or(|b| a.0 < b.0) => {
                out.push(a.0);
                i += 1;
            }
            (_, Some(b)) => {
                out.push(b.0);
                j += 1;
            }
            _ => break,
        }
    }
    (out, present)
}

/// What comparing the digests found.
#[derive(Debug, Clone)]
pub struct Blocks {
    /// How the table was cut into blocks.
    pub cut: Cut,
    /// Blocks holding rows on either side (key ranges may leave some empty).
    pub present: i64,
    /// Blocks whose digests differ, ascending.
    pub differing: Vec<i32>,
    /// Digest bytes received from the parent, and from the child (wire size).
    pub bytes: (u64, u64),
    /// Connections per side the blocks were hashed on.
    pub parts: u64,
    /// The differing blocks hashed again in finer ranges ([`refine`]).
    pub refined: Option<Refined>,
}

/// Differing key-range blocks hashed again, each cut into sub-ranges: only
/// the rows of differing sub-ranges are read.
#[derive(Debug, Clone)]
pub struct Refined {
    /// The finer cut ([`Ranges::refine`]).
    pub ranges: Ranges,
    /// Sub-ranges holding rows on either side, within the differing blocks.
    pub present: i64,
    /// Sub-ranges whose digests differ, ascending.
    pub differing: Vec<i32>,
    /// Whether the differing blocks were read by one scan of the table per
    /// side rather than by index ranges ([`SCAN_SHARE`]).
    pub scanned: bool,
}

/// Blocks each connection hashes at least when a table's blocks are split
/// across connections: fewer would cost more in repeated scans than they save.
const MIN_BLOCKS_PER_PART: i64 = 64;

/// Computes both sides' digests at once and compares them: the blocks are cut
/// into contiguous ranges, one per connection in `conns` (`--jobs`: a large
/// table is hashed by several backends per side, all in the side's one
/// snapshot), within `shard`.
pub async fn compare(
    plan: &TablePlan,
    (p, c): (&Side, &Side),
    conns: &[usize],
    cut: Cut,
    shard: Option<Shard>,
) -> Result<Blocks> {
    let count = cut.count();
    let parts = (conns.len() as i64).min(count / MIN_BLOCKS_PER_PART).max(1);
    let scopes: Vec<(usize, Scope)> = (0..parts)
        .map(|i| {
            let range = (count * i / parts, count * (i + 1) / parts);
            (conns[i as usize], Scope { cut, range, shard })
        })
        .collect();
    let ((pd, pb), (cd, cb)) =
        tokio::try_join!(side_digests(p, plan, true, &scopes), side_digests(c, plan, false, &scopes))?;
    let (differing, present) = differing(&pd, &cd);
    Ok(Blocks { cut, present, differing, bytes: (pb, cb), parts: parts as u64, refined: None })
}

/// One side's digests of every scope, sorted by block, and the bytes received.
async fn side_digests(
    side: &Side,
    plan: &TablePlan,
    parent: bool,
    scopes: &[(usize, Scope)],
) -> Result<(Vec<Digest>, u64)> {
    let all = futures_util::future::try_join_all(
        scopes.iter().map(|&(conn, scope)| digests(side, conn, plan, parent, scope)),
    )
    .await?;
    // Ranges ascend and each part is sorted: concatenated, the digests stay sorted.
    let bytes = all.iter().map(|(_, b)| b).sum();
    Ok((all.into_iter().flat_map(|(d, _)| d).collect(), bytes))
}

/// `WHERE` clause selecting one shard's rows on one side (a table streamed, part by part).
pub fn shard_filter(plan: &TablePlan, parent: bool, shard: Shard) -> String {
    shard_condition(plan, parent, shard)
}

/// Share of the blocks holding rows past which, once that many differ, the
/// whole table is read by one stream scan: the unchanged rows it reads on top
/// (at most 1/9 more) cost less than filtering every row by block on the server.
const MOSTLY_DIFFERING: (i64, i64) = (9, 10);

impl Blocks {
    /// Whether so many blocks differ that reading the whole table is cheaper.
    pub fn mostly_differ(&self) -> bool {
        let (num, den) = MOSTLY_DIFFERING;
        self.present > 0 && self.differing.len() as i64 * den > self.present * num
    }
}

/// Share of the blocks holding rows past which the second round scans the
/// table once instead of reading the differing blocks' ranges by index (from
/// PostgreSQL 14, whose `= ANY` of a constant list is a hash lookup): on the
/// benchmark's `orders` with a third of its blocks differing, 60,000 index range reads took
/// 2.6–3.1 s, one scan 1.5–1.9 s; a scan costs about what hashing an eighth of the rows
/// by index does.
const SCAN_SHARE: (i64, i64) = (1, 8);
/// Rows a sub-range holds on average after refining: fewer cost more digest
/// bytes than they save in rows read, more read more unchanged rows per change.
const REFINED_ROWS: i64 = 2;
/// Most sub-ranges a block is cut into.
const MAX_PARTS: i64 = 64;
/// Rows of differing blocks worth at least this many bytes on the wire are
/// worth a second, finer digest round (one more round trip) before reading.
const REFINE_MIN_BYTES: i64 = 256 << 10;

/// Whether hashing the differing key-range blocks again, finer, should pay:
/// enough of their rows would be read (by the table's estimated bytes per row)
/// and a block holds rows enough to cut; a table whose blocks mostly differ is read whole.
fn refine_parts(plan: &TablePlan, blocks: &Blocks) -> Option<Ranges> {
    let Cut::KeyRange(r) = blocks.cut else { return None };
    let rows_per_block = plan.rows.max(0) / blocks.present.max(1);
    let row_bytes = plan.bytes.max(0) / plan.rows.max(1);
    let read = blocks.differing.len() as i64 * rows_per_block * row_bytes;
    if blocks.mostly_differ() || blocks.differing.is_empty() || read < refine_min_bytes() {
        return None;
    }
    r.refine((rows_per_block / REFINED_ROWS).clamp(2, MAX_PARTS))
}

/// [`REFINE_MIN_BYTES`], or `PGBRANCHDIFF_REFINE_MIN_BYTES` when set: the
/// generated differential test sets 0, so that its small tables take the
/// second round too.
fn refine_min_bytes() -> i64 {
    static MIN: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *MIN.get_or_init(|| {
        std::env::var("PGBRANCHDIFF_REFINE_MIN_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(REFINE_MIN_BYTES)
    })
}

/// `PGBRANCHDIFF_REFINE_BY` (`index` or `scan`) forces how the second round
/// reads the differing blocks, whatever their share: the generated differential
/// test takes both paths with tables too small to choose them by themselves.
fn refine_by() -> Option<String> {
    std::env::var("PGBRANCHDIFF_REFINE_BY").ok().filter(|v| !v.is_empty())
}

/// Hashes the rows of the differing key-range blocks again in finer
/// sub-ranges, both sides at once, reading them by index (one range read per
/// run of consecutive blocks, joined with the runs' bounds; past an eighth of
/// the blocks, one scan, [`SCAN_SHARE`]), so that only the rows of differing
/// sub-ranges are read: the block size adapts to how sparse the differences
/// turned out to be. Blocks unchanged when refining
/// would not pay ([`refine_parts`]).
pub async fn refine(
    plan: &TablePlan,
    (p, c): (&Side, &Side),
    conn: usize,
    blocks: Blocks,
    shard: Option<Shard>,
) -> Result<Blocks> {
    let Some(fine) = refine_parts(plan, &blocks) else { return Ok(blocks) };
    let Cut::KeyRange(coarse) = blocks.cut else { return Ok(blocks) };
    let (starts, lasts) = coarse.run_arrays(&blocks.differing);
    let fine_blocks = blocks.differing.len() as i64 * fine.parts;
    let context = format!("hashing the differing blocks of {} again", plan.qualified());
    let many = match refine_by().as_deref() {
        Some("index") => false,
        Some("scan") => true,
        _ => blocks.differing.len() as i64 * SCAN_SHARE.1 > blocks.present * SCAN_SHARE.0,
    };
    let scan = many && p.server_version.min(c.server_version) >= 140_000;
    let sql = |parent: bool| {
        let (from, fine_block, h) =
            (&side_query(plan, parent).from, fine.block_expr(plan, parent), row_hash(plan, parent));
        let shard = shard.map(|s| shard_condition(plan, parent, s));
        let rows = if scan {
            // Many blocks: one scan, the rows' coarse blocks looked up in a hashed `= ANY`.
            let cond = block_in(&coarse.block_expr(plan, parent), &blocks.differing);
            let cond = match shard {
                Some(s) => format!("{s} AND {cond}"),
                None => cond,
            };
            format!("SELECT {fine_block} AS b, {h} AS h FROM {from} WHERE {cond}")
        } else {
            let col = column_ref(&plan.columns[0], parent);
            let shard = shard.map(|s| format!(" WHERE {s}")).unwrap_or_default();
            format!(
                "SELECT {fine_block} AS b, {h} AS h FROM {from} JOIN ROWS FROM (pg_catalog.unnest({starts}), pg_catalog.unnest({lasts})) AS pgbd_r(s, l) \
                 ON {col} >= pgbd_r.s AND {col} <= pgbd_r.l{shard}"
            )
        };
        digest_sql(&rows, "")
    };
    let (psql, csql) = (sql(true), sql(false));
    let ((pd, pb), (cd, cb)) = tokio::try_join!(
        fetch_digests(p, conn, &psql, fine_blocks, &context),
        fetch_digests(c, conn, &csql, fine_blocks, &context)
    )?;
    let (differing, present) = differing(&pd, &cd);
    let bytes = (blocks.bytes.0 + pb, blocks.bytes.1 + cb);
    Ok(Blocks { bytes, refined: Some(Refined { ranges: fine, present, differing, scanned: scan }), ..blocks })
}

/// `block = ANY (blocks)`: from PostgreSQL 14 on a hash lookup per row, the list being a constant.
fn block_in(block: &str, blocks: &[i32]) -> String {
    let list: Vec<String> = blocks.iter().map(i32::to_string).collect();
    format!("{block} = ANY ('{{{}}}'::int4[])", list.join(","))
}

/// `WHERE` clause selecting the rows of the differing blocks on one side (within the shard).
pub fn filter(plan: &TablePlan, blocks: &Blocks, parent: bool, shard: Option<Shard>) -> String {
    if let Some(r) = &blocks.refined {
        if r.differing.is_empty() {
            return "false".into();
        }
        let f = r.ranges.filter(plan, parent, &r.differing);
        return match shard {
            Some(s) => format!("{} AND {f}", shard_condition(plan, parent, s)),
            None => f,
        };
    }
    if blocks.differing.is_empty() {
        return "false".into();
    }
    let f = match &blocks.cut {
        Cut::KeyRange(r) => r.filter(plan, parent, &blocks.differing),
        Cut::KeyHash(_) => block_in(&blocks.cut.block_expr(plan, parent), &blocks.differing),
    };
    match shard {
        Some(s) => format!("{} AND {f}", shard_condition(plan, parent, s)),
        None => f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_counts_follow_rows_and_bytes() {
        assert_eq!(block_count(0, 0), 1);
        // A wide table: 8 rows a block at most.
        assert_eq!(block_count(1000, 1 << 30), 125);
        // A narrow one: 256 rows a block at least.
        assert_eq!(block_count(1_000_000, 1), 3907);
        // In between, digests of about 1/250 of the bytes on disk.
        assert_eq!(block_count(5_000_000, 488_000_000), 162_666);
        assert_eq!(block_count(i64::MAX / 2, i64::MAX / 2), MAX_BLOCKS);
    }

    #[test]
    fn packed_digests_unpack() {
        let mut packed = vec![];
        for (b, s) in [(3i32, -2i64), (70_000, i64::MAX)] {
            packed.extend(b.to_be_bytes());
            packed.extend(s.to_be_bytes());
        }
        assert_eq!(unpack(&packed).collect::<Vec<_>>(), [(3, -2), (70_000, i64::MAX)]);
    }

    #[test]
    fn differing_blocks_include_one_sided_ones() {
        let p = [(1, 10), (3, 7), (5, 1)];
        let c = [(1, 10), (2, 4), (3, 8)];
        assert_eq!(differing(&p, &c), (vec![2, 3, 5], 4));
        assert_eq!(differing(&[], &c), (vec![1, 2, 3], 3));
        assert_eq!(differing(&p, &p), (vec![], 3));
    }
}
