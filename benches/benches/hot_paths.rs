//! Criterion micro-benchmarks of the hot paths: COPY frame parsing, value
//! comparison, and the merge of two sides.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use diff_core::copy::{encode_rows, Decoder};
use diff_core::loss::Shape;
use diff_core::merge::{self, SideLabel};
use diff_core::plan::{ColumnPlan, KeySource, TablePlan};
use diff_core::value::{equal, Kind};
use diff_core::SideName;

/// Rows shaped like the benchmark's `orders`: int8 key, text, numeric, timestamptz, nullable text.
fn rows(n: usize, changed_every: usize) -> Vec<Bytes> {
    let ids: Vec<[u8; 8]> = (0..n as i64).map(|i| i.to_be_bytes()).collect();
    let amounts: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut v = vec![0, 2, 0, 0, 0, 0, 0, 2];
            v.extend(((i % 10000) as u16).to_be_bytes());
            v.extend(((i % 100) as u16 * 100).to_be_bytes());
            v
        })
        .collect();
    let ts: Vec<[u8; 8]> = (0..n as i64).map(|i| (i * 1_000_000).to_be_bytes()).collect();
    let status: Vec<&[u8]> = (0..n)
        .map(|i| if changed_every > 0 && i % changed_every == 7 { &b"cancelled"[..] } else { &b"paid"[..] })
        .collect();
    let note = b"note note note note ";
    let rows: Vec<Vec<Option<&[u8]>>> = (0..n)
        .map(|i| {
            vec![
                Some(&ids[i][..]),
                Some(status[i]),
                Some(&amounts[i][..]),
                Some(&ts[i][..]),
                if i % 3 == 0 { None } else { Some(&note[..]) },
            ]
        })
        .collect();
    encode_rows(&rows)
}

fn plan() -> TablePlan {
    let col = |name: &str, kind| ColumnPlan {
        name: name.into(),
        parent_name: name.into(),
        kind,
        parent_kind: kind,
        conversion: None,
        literal: false,
        removed_labels: vec![],
        parent_type: String::new(),
        child_type: String::new(),
        type_oids: (0, 0),
        info: diff_core::report::ColumnInfo::text(name),
        loss_shapes: (Shape::builtin(kind), Shape::builtin(kind)),
        type_changed: false,
    };
    TablePlan {
        id: 0,
        schema: "public".into(),
        name: "orders".into(),
        parent_qualified: "public.orders".into(),
        key_source: KeySource::PrimaryKey,
        nkey: 1,
        columns: vec![
            col("id", Kind::Int8),
            col("status", Kind::Text),
            col("amount", Kind::Numeric),
            col("created_at", Kind::Timestamptz),
            col("note", Kind::Text),
        ],
        parent_query: Default::default(),
        child_query: Default::default(),
        bytes: 0,
        rows: 0,
        identity_blocker: None,
        hash_blocker: None,
        parent_side: Default::default(),
        child_side: Default::default(),
    }
}

fn parse(c: &mut Criterion) {
    let msgs = rows(2048, 0);
    let bytes: usize = msgs.iter().map(|m| m.len()).sum();
    let mut g = c.benchmark_group("copy");
    g.throughput(Throughput::Elements(2048));
    g.bench_function("decode 2048 orders rows", |b| {
        b.iter(|| {
            let mut d = Decoder::new(5);
            black_box(d.decode(black_box(msgs.clone())).unwrap().len())
        })
    });
    g.finish();
    eprintln!("(batch of {bytes} bytes)");
}

fn compare(c: &mut Criterion) {
    let a = [0u8, 2, 0, 0, 0, 0, 0, 4, 0, 24, 26, 244];
    let b = [0u8, 2, 0, 0, 0, 0, 0, 2, 0, 24, 26, 244];
    c.bench_function("numeric equal, different scale", |x| {
        x.iter(|| equal(Kind::Numeric, black_box(&a), black_box(&b)))
    });
    let j1 = b"\x01{\"a\": 1.50, \"b\": [1, 2, 3], \"c\": \"text 2.0\"}";
    let j2 = b"\x01{\"a\": 1.5, \"b\": [1, 2, 3], \"c\": \"text 2.0\"}";
    c.bench_function("jsonb equal, number scale", |x| x.iter(|| equal(Kind::Jsonb, black_box(j1), black_box(j2))));
}

fn merge_rows(c: &mut Criterion) {
    let n = 200_000;
    let parent = rows(n, 0);
    let child = rows(n, 1000);
    let plan = plan();
    let mut g = c.benchmark_group("merge");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function("200k rows, 0.1% updated", |b| {
        b.iter(|| {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let feed = |msgs: &Vec<Bytes>| {
                let (tx, rx) = tokio::sync::mpsc::channel(msgs.len() / 2048 + 2);
                for chunk in msgs.chunks(2048) {
                    tx.try_send(Ok(chunk.to_vec())).unwrap();
                }
                rx
            };
            let label = |name| SideLabel { name, endpoint: String::new() };
            let (p, c) = (feed(&parent), feed(&child));
            let _guard = rt.enter();
            let summary =
                merge::run(&plan, (p, label(SideName::Parent)), (c, label(SideName::Child)), |_| Ok(())).unwrap();
            assert_eq!(summary.counts.updated, (n / 1000) as u64);
            black_box(summary)
        })
    });
    g.finish();
}

criterion_group!(benches, parse, compare, merge_rows);
criterion_main!(benches);
