//! The library API: snapshots shared across connections, read-only sides,
//! streaming with early stop.

use diff_core::snapshot::Side;
use diff_core::{ConnConfig, Event, Options, SideName};

use crate::harness::{branch, conn, connect};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn connections_share_one_snapshot_and_cannot_write() {
    let pair =
        branch("snapshot", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10);", "");
    rt().block_on(async {
        let cfg = ConnConfig::parse(SideName::Child, &conn(&pair.child)).unwrap();
        let side = Side::open(&cfg, 3).await.unwrap();
        assert!(side.snapshot_id.is_some());
        // A commit after the snapshot was taken is invisible to every connection of the side.
        let child = pair.child.clone();
        tokio::task::spawn_blocking(move || {
            connect(&child).batch_execute("INSERT INTO public.t VALUES (11), (12)").unwrap()
        })
        .await
        .unwrap();
        for i in 0..3 {
            let n: i64 = side.client(i).query_one("SELECT count(*) FROM public.t", &[]).await.unwrap().get(0);
            assert_eq!(n, 10, "connection {i}");
        }
        let err = side.client(1).batch_execute("INSERT INTO public.t VALUES (13)").await.unwrap_err();
        assert!(err.to_string().contains("read-only") || format!("{err:?}").contains("read-only"), "{err:?}");
    });
}

#[test]
fn stream_can_stop_early_and_report_is_complete() {
    let pair = branch(
        "stream",
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 200000) i;",
        "UPDATE t SET v = -v WHERE id % 1000 = 0;",
    );
    rt().block_on(async {
        let p = ConnConfig::parse(SideName::Parent, &conn(&pair.parent)).unwrap();
        let c = ConnConfig::parse(SideName::Child, &conn(&pair.child)).unwrap();
        let opts = Options::default();
        let mut stream = diff_core::start(&p, &c, &opts).await.unwrap();
        let mut rows = 0;
        while let Some(ev) = stream.next().await {
            if let Event::Row { .. } = ev.unwrap() {
                rows += 1;
                if rows == 3 {
                    break;
                }
            }
        }
        drop(stream);
        assert_eq!(rows, 3);
        let report = diff_core::run(&p, &c, &opts).await.unwrap();
        assert_eq!(report.tables[0].summary.counts.updated, 200);
        // One instance, one physical file: tuple identity settles 199,800 rows without reading them.
        assert_eq!(report.tables[0].summary.parent.identity_checked, 200_000);
        assert_eq!(report.tables[0].summary.parent.rows, 200);
        assert_eq!(report.tables[0].rows.len(), 200);
        // A report that keeps one row per table still counts the other 199 in its JSON.
        let opts = Options { max_rows_per_table: Some(1), ..Options::default() };
        let report = diff_core::run(&p, &c, &opts).await.unwrap();
        let doc: serde_json::Value = serde_json::from_str(&diff_core::render::json(&report)).unwrap();
        assert_eq!(doc["tables"][0]["rows"].as_array().unwrap().len(), 1);
        assert_eq!(doc["tables"][0]["rows_omitted"], serde_json::json!(199));
        assert_eq!(doc["tables"][0]["counts"]["updated"], serde_json::json!(200));
    });
}
