//! Property tests of the public API: binary COPY framing round trips through
//! `copy::Decoder`, and `merge::run` agrees with a BTreeMap reference diff.
//!
//! Streams are framed the way the server frames them (the 19-byte header rides
//! in the first row's message, one `CopyData` message per row, the trailer on
//! its own, header and trailer together when there are no rows) and handed over
//! in random batch splits.

use std::collections::BTreeMap;

use bytes::Bytes;
use diff_core::copy::Decoder;
use diff_core::loss::Shape;
use diff_core::merge::{self, Feed, SideLabel};
use diff_core::plan::{ColumnPlan, KeySource, Query, TablePlan};
use diff_core::value::Kind;
use diff_core::{Event, Op, RowChange, SideName, Value};
use proptest::prelude::*;

/// One row as it travels: a field per column, `None` for NULL.
type Row = Vec<Option<Vec<u8>>>;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// A binary COPY stream of `rows`, cut into messages as the server sends them.
fn encode(rows: &[Row]) -> Vec<Bytes> {
    let mut header = SIGNATURE.to_vec();
    header.extend_from_slice(&0i32.to_be_bytes()); // flags
    header.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    let mut msgs = vec![];
    for (i, row) in rows.iter().enumerate() {
        let mut m = if i == 0 { header.clone() } else { vec![] };
        m.extend_from_slice(&(row.len() as i16).to_be_bytes());
        for field in row {
            match field {
                None => m.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(b) => {
                    m.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    m.extend_from_slice(b);
                }
            }
        }
        msgs.push(Bytes::from(m));
    }
    let mut trailer = if rows.is_empty() { header } else { vec![] };
    trailer.extend_from_slice(&(-1i16).to_be_bytes());
    msgs.push(Bytes::from(trailer));
    msgs
}

/// Consecutive batches of `sizes[0]`, `sizes[1]`, … messages; the rest in one last batch.
fn batches(msgs: Vec<Bytes>, sizes: &[usize]) -> Vec<Vec<Bytes>> {
    let mut out = vec![];
    let mut it = msgs.into_iter().peekable();
    for &n in sizes {
        if it.peek().is_none() {
            break;
        }
        out.push(it.by_ref().take(n).collect());
    }
    let rest: Vec<Bytes> = it.collect();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn field() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![1 => Just(None), 4 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Some)]
}

fn copy_case() -> impl Strategy<Value = (usize, Vec<Row>, Vec<usize>)> {
    (1usize..8).prop_flat_map(|ncols| {
        (
            Just(ncols),
            prop::collection::vec(prop::collection::vec(field(), ncols), 0..20),
            prop::collection::vec(0usize..4, 0..30),
        )
    })
}

proptest! {
    #[test]
    fn copy_framing_round_trips((ncols, rows, sizes) in copy_case()) {
        let msgs = encode(&rows);
        let total = msgs.len();
        let mut seen = 0;
        let mut decoder = Decoder::new(ncols);
        let mut decoded: Vec<Row> = vec![];
        for batch in batches(msgs, &sizes) {
            // Messages `seen..seen + batch.len()`; message i < rows.len() carries row i.
            let nrows = (seen..seen + batch.len()).filter(|&i| i < rows.len()).count();
            seen += batch.len();
            let bytes: u64 = batch.iter().map(|m| m.len() as u64).sum();
            let b = decoder.decode(batch).map_err(TestCaseError::fail)?;
            prop_assert_eq!(b.bytes(), bytes);
            prop_assert_eq!(b.len(), nrows);
            prop_assert_eq!(b.is_empty(), nrows == 0);
            for row in 0..b.len() {
                decoded.push((0..ncols).map(|col| b.field(row, col).map(<[u8]>::to_vec)).collect());
            }
            prop_assert_eq!(decoder.finished, seen == total, "finished after {} of {} messages", seen, total);
        }
        prop_assert!(decoder.finished);
        prop_assert_eq!(decoded, rows);
    }
}

// ---------------------------------------------------------------------------
// The merge against a reference.

/// The only place that builds a `TablePlan`: one table whose first `nkey`
/// columns are the key (`nkey == kinds.len()` is a keyless table).
fn plan(kinds: &[Kind], nkey: usize) -> TablePlan {
    let key_source = if nkey == kinds.len() { KeySource::WholeRow } else { KeySource::PrimaryKey };
    TablePlan {
        id: 7,
        schema: "public".into(),
        name: "t".into(),
        parent_qualified: "public.t".into(),
        key_source,
        nkey,
        columns: kinds
            .iter()
            .enumerate()
            .map(|(i, &kind)| ColumnPlan {
                name: format!("c{i}"),
                parent_name: format!("c{i}"),
                kind,
                parent_kind: kind,
                conversion: None,
                literal: false,
                removed_labels: vec![],
                parent_type: format!("{kind:?}").to_lowercase(),
                child_type: format!("{kind:?}").to_lowercase(),
                type_oids: (0, 0),
                info: diff_core::report::ColumnInfo::text(&format!("c{i}")),
                loss_shapes: (Shape::builtin(kind), Shape::builtin(kind)),
                type_changed: false,
            })
            .collect(),
        parent_query: Query::default(),
        child_query: Query::default(),
        bytes: 0,
        rows: 0,
        identity_blocker: None,
        hash_blocker: None,
        parent_side: Default::default(),
        child_side: Default::default(),
    }
}

/// Kinds whose equality is byte equality, so the reference can compare bytes.
const SIMPLE: [Kind; 5] = [Kind::Int4, Kind::Int8, Kind::Text, Kind::Bytea, Kind::Bool];

/// A value of `kind` from a small domain, so that rows collide often.
fn value(kind: Kind) -> BoxedStrategy<Option<Vec<u8>>> {
    let v: BoxedStrategy<Vec<u8>> = match kind {
        Kind::Int4 => {
            prop_oneof![-2i32..3, Just(i32::MIN), Just(i32::MAX)].prop_map(|i| i.to_be_bytes().to_vec()).boxed()
        }
        Kind::Int8 => {
            prop_oneof![-2i64..3, Just(i64::MIN), Just(i64::MAX)].prop_map(|i| i.to_be_bytes().to_vec()).boxed()
        }
        Kind::Text => "[ab é😀]{0,3}".prop_map(String::into_bytes).boxed(),
        Kind::Bytea => prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xff)], 0..3).boxed(),
        Kind::Bool => prop_oneof![Just(vec![0u8]), Just(vec![1u8])].boxed(),
        _ => unreachable!("not a simple kind: {kind:?}"),
    };
    prop_oneof![1 => Just(None), 3 => v.prop_map(Some)].boxed()
}

/// A key field: not null, from a domain wide enough for a few dozen keys.
fn key_value(kind: Kind) -> BoxedStrategy<Vec<u8>> {
    match kind {
        Kind::Int4 => {
            prop_oneof![-4i32..4, Just(i32::MIN), Just(i32::MAX)].prop_map(|i| i.to_be_bytes().to_vec()).boxed()
        }
        Kind::Int8 => {
            prop_oneof![-20i64..20, Just(i64::MIN), Just(i64::MAX)].prop_map(|i| i.to_be_bytes().to_vec()).boxed()
        }
        // oid is unsigned: 3000000000 sorts after 2147483647.
        Kind::Oid => prop_oneof![0u32..20, Just(i32::MAX as u32), Just(1 << 31), Just(3_000_000_000), Just(u32::MAX)]
            .prop_map(|i| i.to_be_bytes().to_vec())
            .boxed(),
        Kind::Text => "[ab é😀]{0,3}".prop_map(String::into_bytes).boxed(),
        _ => unreachable!("not a key kind here: {kind:?}"),
    }
}

fn row(kinds: &[Kind]) -> Vec<BoxedStrategy<Option<Vec<u8>>>> {
    kinds.iter().map(|&k| value(k)).collect()
}

/// The server's `ORDER BY … ASC NULLS LAST` on one column (text under COLLATE "C").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Int(i64),
    Bytes(Vec<u8>),
    Null,
}

fn sort_key(kinds: &[Kind], row: &[Option<Vec<u8>>]) -> Vec<Part> {
    kinds
        .iter()
        .zip(row)
        .map(|(kind, f)| match (kind, f) {
            (_, None) => Part::Null,
            (Kind::Int4, Some(b)) => Part::Int(i32::from_be_bytes(b[..].try_into().unwrap()) as i64),
            (Kind::Int8, Some(b)) => Part::Int(i64::from_be_bytes(b[..].try_into().unwrap())),
            (Kind::Oid, Some(b)) => Part::Int(u32::from_be_bytes(b[..].try_into().unwrap()) as i64),
            (_, Some(b)) => Part::Bytes(b.clone()),
        })
        .collect()
}

/// What a report should show for a field.
fn expected_value(kind: Kind, f: &Option<Vec<u8>>) -> Value {
    let Some(b) = f else { return Value::Null };
    match kind {
        Kind::Int4 => Value::Int(i32::from_be_bytes(b[..].try_into().unwrap()) as i64),
        Kind::Int8 => Value::Int(i64::from_be_bytes(b[..].try_into().unwrap())),
        Kind::Oid => Value::Int(u32::from_be_bytes(b[..].try_into().unwrap()) as i64),
        Kind::Text => Value::Text(String::from_utf8(b.clone()).unwrap()),
        Kind::Bytea => Value::Bytes(b.clone()),
        Kind::Bool => Value::Bool(b[0] == 1),
        _ => unreachable!(),
    }
}

fn values(kinds: &[Kind], row: &Row) -> Vec<Value> {
    kinds.iter().zip(row).map(|(&k, f)| expected_value(k, f)).collect()
}

fn change(kinds: &[Kind], nkey: usize, op: Op, before: Option<&Row>, after: Option<&Row>) -> RowChange {
    // Byte equality of the fields (a NULL differs from every value).
    let changed = match (before, after) {
        (Some(b), Some(a)) => (nkey..kinds.len()).filter(|&i| b[i] != a[i]).collect(),
        _ => vec![],
    };
    let (before, after) = (before.map(|r| values(kinds, r)), after.map(|r| values(kinds, r)));
    let key = after.as_ref().or(before.as_ref()).unwrap()[..nkey].to_vec();
    RowChange { op, key, changed, before, after }
}

fn feed(batches: Vec<Vec<Bytes>>) -> Feed {
    let (tx, rx) = tokio::sync::mpsc::channel(batches.len().max(1));
    for b in batches {
        tx.try_send(Ok(b)).expect("the channel holds every batch");
    }
    rx
}

/// Sorts both sides as the server would, runs the merge on their COPY streams
/// (split into batches of `splits` messages) and returns what it emitted.
fn run_merge(
    kinds: &[Kind],
    nkey: usize,
    parent: &mut [Row],
    child: &mut [Row],
    splits: (&[usize], &[usize]),
) -> Result<Vec<RowChange>, TestCaseError> {
    parent.sort_by_key(|r| sort_key(&kinds[..nkey], &r[..nkey]));
    child.sort_by_key(|r| sort_key(&kinds[..nkey], &r[..nkey]));
    let plan = plan(kinds, nkey);
    let label = |name| SideLabel { name, endpoint: format!("{name}@test") };
    let (pmsgs, cmsgs) = (encode(parent), encode(child));
    let bytes = |m: &[Bytes]| m.iter().map(|m| m.len() as u64).sum::<u64>();
    let (pbytes, cbytes) = (bytes(&pmsgs), bytes(&cmsgs));
    let mut out = vec![];
    let summary = merge::run(
        &plan,
        (feed(batches(pmsgs, splits.0)), label(SideName::Parent)),
        (feed(batches(cmsgs, splits.1)), label(SideName::Child)),
        |event| {
            if let Event::Row { table, change } = event {
                assert_eq!(table, plan.id);
                out.push(change);
            }
            Ok(())
        },
    )
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let count = |op| out.iter().filter(|c: &&RowChange| c.op == op).count() as u64;
    prop_assert_eq!(summary.counts.inserted, count(Op::Insert));
    prop_assert_eq!(summary.counts.updated, count(Op::Update));
    prop_assert_eq!(summary.counts.deleted, count(Op::Delete));
    prop_assert_eq!((summary.parent.rows, summary.child.rows), (parent.len() as u64, child.len() as u64));
    prop_assert_eq!((summary.parent.bytes, summary.child.bytes), (pbytes, cbytes));
    Ok(out)
}

/// Keyed tables: delete, insert, or update with exactly the differing columns.
fn reference_keyed(kinds: &[Kind], nkey: usize, parent: &[Row], child: &[Row]) -> Vec<RowChange> {
    let key = |r: &Row| sort_key(&kinds[..nkey], &r[..nkey]);
    let mut both: BTreeMap<Vec<Part>, (Option<&Row>, Option<&Row>)> = BTreeMap::new();
    for r in parent {
        both.entry(key(r)).or_default().0 = Some(r);
    }
    for r in child {
        both.entry(key(r)).or_default().1 = Some(r);
    }
    both.into_values()
        .filter_map(|sides| match sides {
            (Some(p), None) => Some(change(kinds, nkey, Op::Delete, Some(p), None)),
            (None, Some(c)) => Some(change(kinds, nkey, Op::Insert, None, Some(c))),
            (Some(p), Some(c)) if p != c => Some(change(kinds, nkey, Op::Update, Some(p), Some(c))),
            _ => None,
        })
        .collect()
}

/// Keyless tables: the multiset difference, in row order.
fn reference_keyless(kinds: &[Kind], parent: &[Row], child: &[Row]) -> Vec<RowChange> {
    let mut counts: BTreeMap<Vec<Part>, (&Row, usize, usize)> = BTreeMap::new();
    for r in parent {
        counts.entry(sort_key(kinds, r)).or_insert((r, 0, 0)).1 += 1;
    }
    for r in child {
        counts.entry(sort_key(kinds, r)).or_insert((r, 0, 0)).2 += 1;
    }
    let n = kinds.len();
    let mut out = vec![];
    for (r, p, c) in counts.into_values() {
        for _ in c..p {
            out.push(change(kinds, n, Op::Delete, Some(r), None));
        }
        for _ in p..c {
            out.push(change(kinds, n, Op::Insert, None, Some(r)));
        }
    }
    out
}

/// How the child is derived from the parent, per parent row: kept as the
/// random child row (or absent), copied, deleted, or copied with one value
/// column taken from the random child row.
fn derive_child(
    parent: &[Row],
    random_child: Vec<Row>,
    fate: &[u8],
    nkey: usize,
    key: impl Fn(&Row) -> Vec<Part>,
) -> Vec<Row> {
    let mut child: BTreeMap<Vec<Part>, Row> = random_child.into_iter().map(|r| (key(&r), r)).collect();
    for (i, p) in parent.iter().enumerate() {
        let k = key(p);
        match fate.get(i).copied().unwrap_or(0) {
            1 => {
                child.insert(k, p.clone());
            }
            2 => {
                child.remove(&k);
            }
            3 => {
                let mut r = p.clone();
                if let Some(other) = child.get(&k) {
                    if r.len() > nkey {
                        let col = nkey + i % (r.len() - nkey);
                        r[col] = other[col].clone();
                    }
                }
                child.insert(k, r);
            }
            _ => {}
        }
    }
    child.into_values().collect()
}

type Sides = (Vec<Row>, Vec<Row>, Vec<usize>, Vec<usize>);

/// Two sides of a keyed table: `key_kinds` then 0..4 simple value columns.
/// Keys are unique within a side (a map), and drawn from a small domain so
/// that the sides share many.
fn keyed_case(key_kinds: Vec<Kind>) -> impl Strategy<Value = (Vec<Kind>, Sides)> {
    prop::collection::vec(prop::sample::select(SIMPLE.to_vec()), 0..=4).prop_flat_map(move |vals| {
        let kinds: Vec<Kind> = key_kinds.iter().chain(&vals).copied().collect();
        let nkey = key_kinds.len();
        let key_strategy: Vec<BoxedStrategy<Vec<u8>>> = key_kinds.iter().map(|&k| key_value(k)).collect();
        let side = prop::collection::btree_map(key_strategy, row(&vals), 0..30).prop_map(|m| {
            m.into_iter().map(|(k, v)| k.into_iter().map(Some).chain(v).collect::<Row>()).collect::<Vec<Row>>()
        });
        let k2 = kinds.clone();
        (
            side.clone(),
            side,
            prop::collection::vec(0u8..4, 30),
            prop::collection::vec(1usize..5, 0..20),
            prop::collection::vec(1usize..5, 0..20),
        )
            .prop_map(move |(parent, random_child, fate, ps, cs)| {
                let key = |r: &Row| sort_key(&k2[..nkey], &r[..nkey]);
                let child = derive_child(&parent, random_child, &fate, nkey, key);
                (k2.clone(), (parent, child, ps, cs))
            })
    })
}

fn check_keyed(kinds: &[Kind], nkey: usize, sides: Sides) -> Result<(), TestCaseError> {
    let (mut parent, mut child, ps, cs) = sides;
    let got = run_merge(kinds, nkey, &mut parent, &mut child, (&ps, &cs))?;
    prop_assert_eq!(got, reference_keyed(kinds, nkey, &parent, &child));
    Ok(())
}

/// A keyless table: 1..4 columns, rows drawn from a small pool so that
/// duplicates are common on and across both sides.
fn keyless_case() -> impl Strategy<Value = (Vec<Kind>, Sides)> {
    prop::collection::vec(prop::sample::select(SIMPLE.to_vec()), 1..=4).prop_flat_map(|kinds| {
        let pool = prop::collection::vec(row(&kinds), 1..6);
        (Just(kinds), pool).prop_flat_map(|(kinds, pool)| {
            let n = pool.len();
            let pick = prop::collection::vec(0..n, 0..25);
            (
                Just(kinds),
                pick.clone(),
                pick,
                prop::collection::vec(1usize..5, 0..20),
                prop::collection::vec(1usize..5, 0..20),
            )
                .prop_map(move |(kinds, p, c, ps, cs)| {
                    let rows = |ix: Vec<usize>| ix.into_iter().map(|i| pool[i].clone()).collect::<Vec<Row>>();
                    (kinds, (rows(p), rows(c), ps, cs))
                })
        })
    })
}

proptest! {
    #[test]
    fn merge_int8_key_matches_reference((kinds, sides) in keyed_case(vec![Kind::Int8])) {
        check_keyed(&kinds, 1, sides)?;
    }

    #[test]
    fn merge_int4_text_key_matches_reference((kinds, sides) in keyed_case(vec![Kind::Int4, Kind::Text])) {
        check_keyed(&kinds, 2, sides)?;
    }

    #[test]
    fn merge_oid_key_matches_reference((kinds, sides) in keyed_case(vec![Kind::Oid])) {
        check_keyed(&kinds, 1, sides)?;
    }

    #[test]
    fn merge_keyless_is_multiset_difference((kinds, sides) in keyless_case()) {
        let (mut parent, mut child, ps, cs) = sides;
        let n = kinds.len();
        let got = run_merge(&kinds, n, &mut parent, &mut child, (&ps, &cs))?;
        prop_assert_eq!(got, reference_keyless(&kinds, &parent, &child));
    }
}
