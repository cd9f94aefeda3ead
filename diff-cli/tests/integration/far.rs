//! Branches far away: a parent on one cluster, its branch on another (as a
//! hosted branch is). The block-hash path must give the stream path's answer
//! for every key shape, also when the two servers collate text differently,
//! and report how each table was read and the bytes received.

use serde_json::Value;

use crate::harness::{cli, cluster, second_cluster, Cluster};

/// The same tables on both sides, each with a few thousand rows; key shapes:
/// text (under the side's collation), composite, uuid, numeric, timestamptz,
/// enum, none (a multiset with duplicates), and a partitioned table.
fn setup(text_collation: &str) -> String {
    format!(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'wild');
         CREATE TABLE tkey (k text COLLATE {text_collation} PRIMARY KEY, v text COLLATE {text_collation}, n numeric);
         INSERT INTO tkey SELECT 'key ' || g, 'Foo' || g, g / 4.0 FROM generate_series(1, 3000) g;
         CREATE TABLE comp (a int, b text, v float8, PRIMARY KEY (a, b));
         INSERT INTO comp SELECT g % 50, 'b' || g, g / 7.0 FROM generate_series(1, 3000) g;
         CREATE TABLE ukey (u uuid PRIMARY KEY, v int);
         INSERT INTO ukey SELECT md5(g::text)::uuid, g FROM generate_series(1, 3000) g;
         CREATE TABLE nkey (n numeric PRIMARY KEY, v text);
         INSERT INTO nkey SELECT g / 8.0, 'v' || g FROM generate_series(1, 3000) g;
         CREATE TABLE tskey (t timestamptz PRIMARY KEY, v interval);
         INSERT INTO tskey SELECT timestamptz '2024-01-01 00:00+00' + g * interval '1 minute', g * interval '1 hour'
           FROM generate_series(1, 3000) g;
         CREATE TABLE ekey (m mood, i int, v jsonb, PRIMARY KEY (m, i));
         INSERT INTO ekey SELECT (enum_range(NULL::mood))[1 + g % 4], g, jsonb_build_object('g', g)
           FROM generate_series(1, 3000) g;
         CREATE TABLE bag (x int, y text);
         INSERT INTO bag SELECT g % 10, 'y' || (g % 3) FROM generate_series(1, 3000) g;
         CREATE TABLE part (id int PRIMARY KEY, v numeric[]) PARTITION BY RANGE (id);
         CREATE TABLE part_lo PARTITION OF part FOR VALUES FROM (MINVALUE) TO (1500);
         CREATE TABLE part_hi PARTITION OF part FOR VALUES FROM (1500) TO (MAXVALUE);
         INSERT INTO part SELECT g, ARRAY[g / 2.0] FROM generate_series(1, 3000) g;
         ANALYZE;"
    )
}

/// Changes on the branch, with the counts each table must report (inserted, updated, deleted).
const CHANGES: &str = "
    UPDATE tkey SET v = 'foo7' WHERE k = 'key 7';          -- a case change: an update under any collation
    UPDATE tkey SET n = round(n, 1) WHERE k = 'key 8';     -- 2.0 for 2.0000…: another display scale, an update
    DELETE FROM tkey WHERE k = 'key 2999';
    INSERT INTO tkey VALUES ('new key', 'new', 1);
    UPDATE comp SET v = -0.0 WHERE a = 0 AND b = 'b50';    -- a value to -0: an update
    DELETE FROM comp WHERE a = 1;                          -- 60 rows
    UPDATE ukey SET v = -v WHERE v IN (10, 20, 30);
    UPDATE nkey SET v = 'changed' WHERE n = 2;
    UPDATE nkey SET n = 1 WHERE n = 1;                     -- the key prints differently: deleted and inserted
    UPDATE tskey SET v = v - interval '1 hour' + interval '60 minutes' WHERE t = timestamptz '2024-01-01 00:05+00';
    UPDATE tskey SET v = justify_hours(v) WHERE t = timestamptz '2024-01-01 01:00+00';
    UPDATE ekey SET v = '{\"g\": 5.0}' WHERE i = 5;
    DELETE FROM bag WHERE ctid IN (SELECT ctid FROM bag WHERE x = 3 AND y = 'y0' LIMIT 2);
    INSERT INTO bag VALUES (3, 'y0'), (11, 'new');
    UPDATE part SET v = ARRAY[1.5] WHERE id IN (3, 2000);";

const EXPECTED: &[(&str, (u64, u64, u64))] = &[
    ("public.tkey", (1, 2, 1)),
    ("public.comp", (0, 1, 60)),
    ("public.ukey", (0, 3, 0)),
    ("public.nkey", (1, 1, 1)),
    // '60 minutes' prints as 01:00:00 like '1 hour'; justify_hours(60 hours) prints as 2 days 12:00:00.
    ("public.tskey", (0, 1, 0)),
    ("public.ekey", (0, 1, 0)),
    // Two copies of (3, 'y0') deleted and one inserted again: one deletion of a multiset.
    ("public.bag", (1, 0, 1)),
    // Both printed with twenty decimals before.
    ("public.part", (0, 2, 0)),
];

fn exec_on(c: &Cluster, db: &str, sql: &str) {
    let mut client = postgres::Client::connect(&format!("{} dbname={db}", c.base), postgres::NoTls).unwrap();
    client.batch_execute(sql).unwrap_or_else(|e| panic!("on {db}: {e}\n{sql}"));
}

/// A collation that sorts text unlike "C" on this cluster (a case-insensitive
/// ICU one when the server has ICU, else a libc locale), or None.
fn other_collation(c: &Cluster, db: &str) -> Option<String> {
    let mut client = postgres::Client::connect(&format!("{} dbname={db}", c.base), postgres::NoTls).unwrap();
    let icu: bool =
        client.query_one("SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collprovider = 'i')", &[]).unwrap().get(0);
    if icu {
        client
            .batch_execute("CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
            .unwrap();
        return Some("public.ci".into());
    }
    let libc: Option<String> = client
        .query_opt(
            "SELECT quote_ident(collname) FROM pg_collation WHERE collprovider = 'c' AND collname ~ '^en_US' LIMIT 1",
            &[],
        )
        .unwrap()
        .map(|r| r.get(0));
    libc
}

fn run(p: &str, c: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--format", "json", "--quiet", p, c];
    args.extend_from_slice(extra);
    let run = cli(&args, &[]);
    assert_eq!(run.code, 1, "{extra:?}: {}", run.stderr);
    run.json()
}

fn without_stats(doc: &Value) -> Value {
    let mut d = doc.clone();
    d.as_object_mut().unwrap().remove("stats");
    for t in d["tables"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("stats");
    }
    d
}

fn table<'a>(doc: &'a Value, qualified: &str) -> &'a Value {
    doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| format!("{}.{}", t["schema"].as_str().unwrap(), t["name"].as_str().unwrap()) == qualified)
        .unwrap()
}

#[test]
fn block_hashes_agree_with_streaming_across_clusters_that_collate_differently() {
    let (a, b) = (cluster(), second_cluster());
    let tag = format!("far_{}", std::process::id());
    let (pdb, cdb) = (format!("{tag}_p"), format!("{tag}_c"));
    exec_on(a, "postgres", &format!("CREATE DATABASE {pdb}"));
    exec_on(b, "postgres", &format!("CREATE DATABASE {cdb}"));
    let collation = other_collation(b, &cdb);
    exec_on(a, &pdb, &setup("\"C\""));
    exec_on(b, &cdb, &setup(collation.as_deref().unwrap_or("\"default\"")));
    exec_on(b, &cdb, CHANGES);
    let (p, c) = (format!("{} dbname={pdb}", a.base), format!("{} dbname={cdb}", b.base));

    let stream = run(&p, &c, &["--strategy", "stream"]);
    let hash = run(&p, &c, &["--strategy", "hash"]);
    let auto = run(&p, &c, &[]);
    assert_eq!(
        without_stats(&hash),
        without_stats(&stream),
        "hash and stream disagree (child collation {collation:?})"
    );
    assert_eq!(without_stats(&auto), without_stats(&stream), "auto and stream disagree");
    for (name, want) in EXPECTED {
        let t = table(&hash, name);
        let got = (
            t["counts"]["inserted"].as_u64().unwrap(),
            t["counts"]["updated"].as_u64().unwrap(),
            t["counts"]["deleted"].as_u64().unwrap(),
        );
        assert_eq!(got, *want, "{name}");
        assert_eq!(t["stats"]["strategy"], "hash", "{name}: {}", t["stats"]);
        assert_eq!(t["stats"]["reason"], "--strategy hash");
        let blocks = &t["stats"]["blocks"];
        assert!(blocks["differing"].as_u64().unwrap() < blocks["count"].as_u64().unwrap(), "{name}: {blocks}");
        // Across servers, tables this small are streamed under auto, and the report says why.
        let reason = table(&auto, name)["stats"]["reason"].as_str().unwrap().to_string();
        assert!(reason.starts_with("across servers, small table"), "{name}: {reason}");
    }
    // Bytes are counted at the socket on both sides; hashing these tables receives less.
    let received = |d: &Value, side: &str| d["stats"]["received"][side].as_u64().unwrap();
    for side in ["parent", "child"] {
        assert!(received(&hash, side) > 0 && received(&stream, side) > received(&hash, side), "{side}");
        let rows: u64 =
            stream["tables"].as_array().unwrap().iter().map(|t| t["stats"][side]["bytes"].as_u64().unwrap()).sum();
        assert!(received(&stream, side) > rows, "{side}: the socket sees at least the COPY bytes");
    }

    // --verbose: each table's strategy and reason, and the bytes received.
    let text = cli(&["--strategy", "hash", "--verbose", "--color", "never", &p, &c], &[]);
    assert_eq!(text.code, 1, "{}", text.stderr);
    assert!(text.stdout.contains("public.tkey: hash (--strategy hash), "), "{}", text.stdout);
    assert!(text.stdout.contains("bytes received: parent "), "{}", text.stdout);

    for (cl, db) in [(a, &pdb), (b, &cdb)] {
        exec_on(cl, "postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
    }
}

fn ndjson_lines(p: &str, c: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--format", "ndjson", "--quiet", p, c];
    args.extend_from_slice(extra);
    let run = cli(&args, &[]);
    assert_eq!(run.code, 1, "{extra:?}: {}", run.stderr);
    run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Lines of these types, as sorted strings (a multiset).
fn of_type(lines: &[Value], ty: &str) -> Vec<String> {
    let mut out: Vec<String> = lines
        .iter()
        .filter(|l| l["type"] == ty)
        .map(|l| {
            let mut d = l["data"].clone();
            d.as_object_mut().unwrap().remove("table_id");
            d.to_string()
        })
        .collect();
    out.sort();
    out
}

/// (table, inserted, updated, deleted) summed over `table` lines.
fn table_counts(lines: &[Value]) -> std::collections::BTreeMap<String, (u64, u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    for l in lines.iter().filter(|l| l["type"] == "table") {
        let c = &l["data"]["counts"];
        let e = out.entry(l["data"]["table"].as_str().unwrap().to_string()).or_insert((0, 0, 0));
        e.0 += c["inserted"].as_u64().unwrap();
        e.1 += c["updated"].as_u64().unwrap();
        e.2 += c["deleted"].as_u64().unwrap();
    }
    out
}

#[test]
fn three_shards_together_are_the_single_report() {
    let pair = crate::harness::branch(
        "shards",
        "CREATE TABLE a (id int PRIMARY KEY, v text, gone int);
         INSERT INTO a SELECT g, 'v' || g, g FROM generate_series(1, 5000) g;
         CREATE TABLE b (k text, n int, PRIMARY KEY (k, n));
         INSERT INTO b SELECT 'k' || (g % 7), g FROM generate_series(1, 2000) g;
         CREATE TABLE bag (x int);
         INSERT INTO bag SELECT g % 5 FROM generate_series(1, 500) g;
         CREATE TABLE dup (k int, v int);
         INSERT INTO dup SELECT g, g FROM generate_series(1, 300) g;",
        "ALTER TABLE a DROP COLUMN gone;
         UPDATE a SET v = 'x' WHERE id % 97 = 0; DELETE FROM a WHERE id % 131 = 0; INSERT INTO a VALUES (9000, 'new');
         DELETE FROM b WHERE n % 50 = 0; UPDATE b SET n = -n WHERE n % 77 = 0;
         DELETE FROM bag WHERE ctid IN (SELECT ctid FROM bag WHERE x = 2 LIMIT 3); INSERT INTO bag VALUES (7), (7);
         UPDATE dup SET v = 0 WHERE k % 10 = 0;",
    );
    let (p, c) = (crate::harness::conn(&pair.parent), crate::harness::conn(&pair.child));
    // `dup` has no key: --key makes it a table streamed (its part in each shard).
    let key = ["--key", "public.dup=k"];
    let single = ndjson_lines(&p, &c, &key);
    let mut parts: Vec<Value> = vec![];
    for i in 0..3 {
        let shard = format!("{i}/3");
        let lines = ndjson_lines(&p, &c, &[key[0], key[1], "--shard", &shard]);
        // Schema changes and dropped objects come from part 0 alone.
        let schema = lines.iter().filter(|l| l["type"] == "schema_change").count();
        assert_eq!(schema > 0, i == 0, "part {i}");
        parts.extend(lines);
    }
    assert!(!of_type(&single, "row").is_empty());
    for ty in ["row", "schema_change"] {
        assert_eq!(of_type(&parts, ty), of_type(&single, ty), "{ty} lines");
    }
    assert_eq!(table_counts(&parts), table_counts(&single));
    // Counted by hand: a: 51 updated (97·k ≤ 5000) but 0 of them deleted ones (97·131 > 5000), 38 deleted, 1 inserted.
    assert_eq!(table_counts(&single)["public.a"], (1, 51, 38));
    // Deleted rows are data loss, counted per part: the parts add up to the whole.
    let deleted = |lines: &[Value], table: &str| -> u64 {
        lines
            .iter()
            .filter(|l| l["type"] == "data_loss" && l["data"]["kind"] == "deleted_rows" && l["data"]["table"] == table)
            .map(|l| l["data"]["count"].as_u64().unwrap())
            .sum()
    };
    for t in ["a", "b", "bag"] {
        assert_eq!(deleted(&parts, t), deleted(&single, t), "{t}");
    }
    let bad = cli(&["--shard", "3/3", &p, &c], &[]);
    assert_eq!(bad.code, 2);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("--shard 3/3"), "{}", bad.stderr);
}

#[test]
fn jobs_split_a_large_tables_blocks_across_connections() {
    let pair = crate::harness::branch(
        "jobsplit",
        "CREATE TABLE big (id int PRIMARY KEY, v text); INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 40000) g;
         ANALYZE big;",
        "UPDATE big SET v = 'x' WHERE id % 1000 = 0; DELETE FROM big WHERE id = 7;",
    );
    let (p, c) = (crate::harness::conn(&pair.parent), crate::harness::conn(&pair.child));
    let one = run(&p, &c, &["--strategy", "hash", "--jobs", "1"]);
    let four = run(&p, &c, &["--strategy", "hash", "--jobs", "4"]);
    assert_eq!(without_stats(&one), without_stats(&four));
    let blocks = |d: &Value| table(d, "public.big")["stats"]["blocks"].clone();
    assert_eq!(blocks(&one)["parts"], 1);
    assert_eq!(blocks(&four)["parts"], 4, "{}", blocks(&four));
    // Without --jobs nothing says the server has cores to spare: four connections, one per table.
    let default = run(&p, &c, &["--strategy", "hash"]);
    assert_eq!(blocks(&default)["parts"], 1, "{}", blocks(&default));
    assert_eq!(without_stats(&one), without_stats(&default));
    assert_eq!(blocks(&one)["count"], blocks(&four)["count"]);
    assert_eq!(blocks(&one)["differing"], blocks(&four)["differing"]);
    let t = table(&four, "public.big");
    assert_eq!((t["counts"]["updated"].as_u64(), t["counts"]["deleted"].as_u64()), (Some(40), Some(1)));
}

/// Integer keys: rows in blocks of key ranges (read back as index ranges), on
/// two clusters. Counts come from the fixture, by hand.
const RANGE_SETUP: &str = "
    CREATE TABLE ints (id int PRIMARY KEY, v text);
    INSERT INTO ints SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
    CREATE TABLE neg (id bigint PRIMARY KEY, v int);
    INSERT INTO neg SELECT g * 7 - 50000, g FROM generate_series(1, 10000) g;
    CREATE TABLE lead (a int, b text, v int, PRIMARY KEY (a, b));
    INSERT INTO lead SELECT g / 10, 'b' || g, g FROM generate_series(1, 5000) g;
    CREATE TABLE extreme (id bigint PRIMARY KEY, v int);
    INSERT INTO extreme SELECT g, g FROM generate_series(1, 1000) g;
    INSERT INTO extreme VALUES (-9223372036854775808, 0), (9223372036854775807, 0);
    CREATE TABLE churn (id int PRIMARY KEY, v int);
    INSERT INTO churn SELECT g, g FROM generate_series(1, 2000) g;
    CREATE TABLE words (k text PRIMARY KEY, v int);
    INSERT INTO words SELECT 'w' || g, g FROM generate_series(1, 3000) g;
    ANALYZE;";

const RANGE_CHANGES: &str = "
    UPDATE ints SET v = 'x' WHERE id BETWEEN 100 AND 199;            -- clustered: 100 updated
    DELETE FROM ints WHERE id BETWEEN 5000 AND 5049;                 -- a deleted range: 50
    -- Two neighbours (one block) swap their values: 2 updated, though the block holds the same values.
    UPDATE ints SET v = CASE id WHEN 300 THEN md5('301') ELSE md5('300') END WHERE id IN (300, 301);
    INSERT INTO ints SELECT g, 'above' FROM generate_series(20001, 20010) g;  -- beyond the parent's max: 10
    INSERT INTO ints SELECT g, 'below' FROM generate_series(-5, 0) g;         -- below its min: 6
    UPDATE neg SET v = -v WHERE id < -40000;                         -- 7g - 50000 < -40000: g ≤ 1428
    INSERT INTO neg VALUES (-60000, 0), (-50000, 0);                 -- below the min (-49993): 2
    DELETE FROM neg WHERE id = 20000;                                -- the max (g = 10000)
    UPDATE lead SET v = 0 WHERE a BETWEEN 10 AND 19;                 -- g / 10 in 10..19: g in 100..199
    UPDATE extreme SET v = 1 WHERE id IN (-9223372036854775808, 500);
    UPDATE churn SET v = v + 1;                                      -- every row
    UPDATE words SET v = 0 WHERE k IN ('w1', 'w2');";

const RANGE_EXPECTED: &[(&str, (u64, u64, u64), &str)] = &[
    ("public.ints", (16, 102, 50), "key_range"),
    ("public.neg", (2, 1428, 1), "key_range"),
    ("public.lead", (0, 100, 0), "key_range"),
    // 2^64 values apart: too sparse for ranges, hashed.
    ("public.extreme", (0, 2, 0), "key_hash"),
    ("public.churn", (0, 2000, 0), "key_range"),
    ("public.words", (0, 2, 0), "key_hash"),
];

#[test]
fn integer_keys_are_cut_into_key_ranges_read_by_index() {
    let (a, b) = (cluster(), second_cluster());
    let tag = format!("farrange_{}", std::process::id());
    let (pdb, cdb) = (format!("{tag}_p"), format!("{tag}_c"));
    exec_on(a, "postgres", &format!("CREATE DATABASE {pdb}"));
    exec_on(b, "postgres", &format!("CREATE DATABASE {cdb}"));
    exec_on(a, &pdb, RANGE_SETUP);
    exec_on(b, &cdb, RANGE_SETUP);
    exec_on(b, &cdb, RANGE_CHANGES);
    let (p, c) = (format!("{} dbname={pdb}", a.base), format!("{} dbname={cdb}", b.base));

    let stream = run(&p, &c, &["--strategy", "stream"]);
    let hash = run(&p, &c, &["--strategy", "hash"]);
    assert_eq!(without_stats(&hash), without_stats(&stream), "hash and stream disagree");
    for (name, want, by) in RANGE_EXPECTED {
        let t = table(&hash, name);
        let c = &t["counts"];
        let got = (c["inserted"].as_u64().unwrap(), c["updated"].as_u64().unwrap(), c["deleted"].as_u64().unwrap());
        assert_eq!(got, *want, "{name}");
        assert_eq!(t["stats"]["strategy"], "hash", "{name}");
        assert_eq!(t["stats"]["blocks"]["by"], *by, "{name}: {}", t["stats"]);
    }
    // Clustered changes in a few key ranges: few blocks differ, and each side
    // receives a small share of what streaming the table does.
    let ints = &table(&hash, "public.ints")["stats"];
    let (count, differing) = (ints["blocks"]["count"].as_u64().unwrap(), ints["blocks"]["differing"].as_u64().unwrap());
    assert!(differing * 20 < count, "{ints}");
    let streamed = &table(&stream, "public.ints")["stats"];
    for side in ["parent", "child"] {
        let (h, s) = (ints[side]["bytes"].as_u64().unwrap(), streamed[side]["bytes"].as_u64().unwrap());
        assert!(h * 20 < s, "{side}: {h} bytes hashed against {s} streamed");
    }
    // Every row of churn changed: read whole, and the reason says so.
    let churn = &table(&hash, "public.churn")["stats"];
    assert!(churn["reason"].as_str().unwrap().ends_with("most blocks differed: the whole table streamed"), "{churn}");
    // --jobs splits the ranges across connections; the answer stays the same.
    let four = run(&p, &c, &["--strategy", "hash", "--jobs", "4"]);
    assert_eq!(without_stats(&four), without_stats(&stream), "--jobs 4");

    for (cl, db) in [(a, &pdb), (b, &cdb)] {
        exec_on(cl, "postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
    }
}

/// Wide rows (a 128-character pad) with sparse changes: differing key-range blocks are hashed again
/// in finer ranges, so only a few rows around each change are read. Counts by hand.
const SPARSE_SETUP: &str = "
    CREATE TABLE spread (id int PRIMARY KEY, pad text);
    INSERT INTO spread SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 300000) g;
    CREATE TABLE few (id bigint PRIMARY KEY, pad text);
    INSERT INTO few SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 100000) g;
    CREATE TABLE split (id int, pad text, PRIMARY KEY (id)) PARTITION BY RANGE (id);
    CREATE TABLE split_a PARTITION OF split FOR VALUES FROM (MINVALUE) TO (50000);
    CREATE TABLE split_b PARTITION OF split FOR VALUES FROM (50000) TO (100000);
    CREATE TABLE split_c PARTITION OF split FOR VALUES FROM (100000) TO (MAXVALUE);
    INSERT INTO split SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 150000) g;
    CREATE TABLE dense (id bigint PRIMARY KEY, pad text);
    INSERT INTO dense SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 100000) g;
    ANALYZE;";

const SPARSE_CHANGES: &str = "
    UPDATE spread SET pad = 'x' WHERE id % 600 = 0;                 -- 500, each in a block of its own
    UPDATE spread SET pad = 'ends' WHERE id IN (1, 300000);         -- the first and last: 1 more
    DELETE FROM spread WHERE id IN (1200 + 1, 150000 + 7);          -- 2, next to updated rows
    UPDATE few SET pad = 'y' WHERE id BETWEEN 20000 AND 24760 AND id % 40 = 0;  -- 120 in one range
    UPDATE split SET pad = 'z' WHERE id % 750 = 0;                  -- 200, across the partitions
    DELETE FROM split WHERE id = 49999;
    UPDATE dense SET pad = 'd' WHERE id % 50 = 0;                   -- 2000, a third of the blocks";

/// Tables, their (inserted, updated, deleted) counts, and the most bytes hashing them may
/// receive per side, in percent of what streaming them does.
const SPARSE_EXPECTED: &[(&str, (u64, u64, u64), u64)] = &[
    ("public.spread", (0, 501, 2), 2),
    ("public.few", (0, 120, 0), 2),
    ("public.split", (0, 200, 1), 2),
    // One row in 50 changed: every change costs its sub-range's rows (a 16th of a 17-row
    // block, about 2) where reading the blocks whole would cost a third of the table.
    ("public.dense", (0, 2000, 0), 10),
];

#[test]
fn sparse_changes_are_hashed_again_in_finer_ranges() {
    let (a, b) = (cluster(), second_cluster());
    let tag = format!("farsparse_{}", std::process::id());
    let (pdb, cdb) = (format!("{tag}_p"), format!("{tag}_c"));
    exec_on(a, "postgres", &format!("CREATE DATABASE {pdb}"));
    exec_on(b, "postgres", &format!("CREATE DATABASE {cdb}"));
    exec_on(a, &pdb, SPARSE_SETUP);
    exec_on(b, &cdb, SPARSE_SETUP);
    exec_on(b, &cdb, SPARSE_CHANGES);
    let (p, c) = (format!("{} dbname={pdb}", a.base), format!("{} dbname={cdb}", b.base));

    let stream = run(&p, &c, &["--strategy", "stream"]);
    let hash = run(&p, &c, &["--strategy", "hash"]);
    assert_eq!(without_stats(&hash), without_stats(&stream), "hash and stream disagree");
    for (name, want, most) in SPARSE_EXPECTED {
        let t = table(&hash, name);
        let k = &t["counts"];
        let got = (k["inserted"].as_u64().unwrap(), k["updated"].as_u64().unwrap(), k["deleted"].as_u64().unwrap());
        assert_eq!(got, *want, "{name}");
        let stats = &t["stats"];
        assert_eq!(stats["blocks"]["by"], "key_range", "{name}: {stats}");
        let reason = stats["reason"].as_str().unwrap();
        assert!(reason.contains("hashed again"), "{name}: {stats}");
        // Many differing blocks are hashed again by one scan where `= ANY` is hashed (PostgreSQL 14 on).
        let scanned = *name == "public.dense" && a.version_num >= 140_000;
        assert_eq!(reason.contains("(one scan)"), scanned, "{name}: {reason}");
        let refined =
            (stats["blocks"]["refined_parts"].as_u64().unwrap(), stats["blocks"]["refined_differing"].as_u64());
        assert!(refined.0 > 1 && refined.1 >= Some(got.1 / 2), "{name}: {stats}");
        // Blocks hold about 17 rows of 170 bytes: reading every differing block whole would cost
        // each side over 2.5 % of what streaming does; hashed again, each change costs a few rows.
        let streamed = &table(&stream, name)["stats"];
        for side in ["parent", "child"] {
            let (h, s) = (stats[side]["bytes"].as_u64().unwrap(), streamed[side]["bytes"].as_u64().unwrap());
            assert!(h * 100 < s * most, "{name} {side}: {h} bytes hashed against {s} streamed");
        }
    }
    // In shards and across connections the answer stays the same.
    let four = run(&p, &c, &["--strategy", "hash", "--jobs", "4"]);
    assert_eq!(without_stats(&four), without_stats(&stream), "--jobs 4");
    let mut sharded = std::collections::BTreeMap::new();
    for i in 0..2 {
        let lines = ndjson_lines(&p, &c, &["--strategy", "hash", "--shard", &format!("{i}/2")]);
        for (t, (ins, upd, del)) in table_counts(&lines) {
            let e = sharded.entry(t).or_insert((0, 0, 0));
            *e = (e.0 + ins, e.1 + upd, e.2 + del);
        }
    }
    for (name, want, _) in SPARSE_EXPECTED {
        assert_eq!(sharded.get(*name), Some(want), "{name} in two shards");
    }

    for (cl, db) in [(a, &pdb), (b, &cdb)] {
        exec_on(cl, "postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
    }
}

/// Pairs of (column type, parent value, child value), as SQL expressions: values the rule tells
/// apart or not, chosen where a weaker hash would fail. `hashint8extended` folds a bigint to 32
/// bits (`lo ^ hi`), and timestamps hash like bigints: the generated pairs keep that fold.
fn value_pairs(version_num: i32) -> Vec<(String, String, String)> {
    let mut pairs: Vec<(String, String, String)> = vec![];
    let mut add = |ty: &str, a: &str, b: &str| pairs.push((ty.into(), a.into(), b.into()));
    // A small generator, so the folded pairs are many and fixed.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..6 {
        let (v, m) = (next() >> 2, next() >> 34);
        add("int8", &v.to_string(), &(v ^ (m << 32 | m)).to_string());
    }
    add("int8", "0", "4294967297");
    add("int8", "7", "7");
    for _ in 0..4 {
        // Microseconds since 2000 with both halves even: adding 2^32 + 1 keeps `lo ^ hi`.
        let v = (next() % (1 << 49)) & !(1 | 1 << 32);
        let ts = |us: u64| {
            format!(
                "timestamp '2000-01-01' + {} * interval '1 second' + {} * interval '1 microsecond'",
                us / 1_000_000,
                us % 1_000_000
            )
        };
        add("timestamp", &ts(v), &ts(v + (1 << 32) + 1));
        add("timestamptz", &format!("({})::timestamptz", ts(v)), &format!("({})::timestamptz", ts(v + (1 << 32) + 1)));
    }
    for (ty, a, b) in [
        ("int2", "1", "2"),
        ("int4", "-1", "1"),
        ("oid", "4294967295", "0"),
        ("numeric", "1.0", "1.00"),
        ("numeric", "1.0", "1.0"),
        ("numeric", "0", "0.0"),
        ("numeric", "1e-20", "0.00000000000000000001"),
        ("numeric", "'NaN'", "'NaN'"),
        ("numeric", "12345678901234567890.5", "12345678901234567890.50"),
        ("float8", "0", "'-0'"),
        ("float8", "'NaN'", "-('NaN'::float8)"),
        ("float8", "1e308", "'Infinity'"),
        ("float8", "1.0000000000000002", "1"),
        ("float8", "0.1", "0.1"),
        ("float4", "0", "'-0'"),
        ("float4", "1.5", "1.5"),
        ("bool", "true", "false"),
        ("bool", "true", "true"),
        ("text", "'Foo'", "'foo'"),
        ("text", "'a'", "'a '"),
        ("text", "''", "NULL"),
        ("text", "NULL", "NULL"),
        ("text", "'same'", "'same'"),
        ("char(4)", "'ab'", "'ab  '"),
        ("varchar(9)", "'x'", "'X'"),
        ("bytea", "'\\x00'", "'\\x'"),
        ("bytea", "'\\x0001'", "'\\x0100'"),
        ("bytea", "'\\xff'", "'\\xff'"),
        ("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'"),
        ("date", "'infinity'", "'-infinity'"),
        ("date", "'2024-01-01'", "'2024-01-02'"),
        ("date", "'2024-01-01'", "'2024-01-01'"),
        ("time", "'12:00'", "'12:00:00.000001'"),
        ("timestamptz", "'2024-01-01 12:00+00'", "'2024-01-01 14:00+02'"),
        ("timestamptz", "'infinity'", "'-infinity'"),
        ("jsonb", "'{\"a\": 1.0}'", "'{\"a\": 1.00}'"),
        ("jsonb", "'{\"b\": 1, \"a\": 2}'", "'{\"a\": 2, \"b\": 1}'"),
        ("json", "'{\"b\": 1, \"a\": 2}'", "'{\"a\": 2, \"b\": 1}'"),
        ("interval", "'1 day'", "'24 hours'"),
        ("interval", "'1 day'", "'1 day'"),
        ("numeric[]", "'{1.0}'", "'{1.00}'"),
        ("int4range", "'[1,3)'", "'[1,2]'"),
        ("mood", "'sad'", "'ok'"),
        ("mood", "'ok'", "'ok'"),
    ] {
        add(ty, a, b);
    }
    if version_num >= 140000 {
        add("numeric", "'Infinity'", "'-Infinity'");
        add("numeric", "'Infinity'", "'NaN'");
    }
    pairs
}

/// Whether PostgreSQL prints the two values differently under the settings every diff pins: the
/// rule itself, asked of the server.
fn printed_differently(c: &Cluster, ty: &str, a: &str, b: &str) -> bool {
    let mut client = postgres::Client::connect(&format!("{} dbname=postgres", c.base), postgres::NoTls).unwrap();
    client
        .batch_execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
             SET extra_float_digits = 3; SET bytea_output = 'hex'",
        )
        .unwrap();
    let ty = if ty == "mood" { "text" } else { ty };
    let sql = format!("SELECT (({a})::{ty})::text COLLATE \"C\" IS DISTINCT FROM (({b})::{ty})::text COLLATE \"C\"");
    client.query_one(&sql, &[]).unwrap().get(0)
}

/// Every pair in a table of its own (as a value, and as the key where it can be one), so each
/// row is a block alone: the block differs exactly when PostgreSQL prints the values differently,
/// and the report says updated (or deleted and inserted) then. Across two clusters, the child's
/// text in a case-insensitive collation, and again from a LATIN1 parent to a UTF-8 child.
#[test]
fn block_hashes_differ_exactly_when_the_values_print_differently() {
    let (a, b) = (cluster(), second_cluster());
    let tag = format!("farv_{}", std::process::id());
    let (pdb, cdb) = (format!("{tag}_p"), format!("{tag}_c"));
    exec_on(a, "postgres", &format!("CREATE DATABASE {pdb}"));
    exec_on(b, "postgres", &format!("CREATE DATABASE {cdb}"));
    let collation = other_collation(b, &cdb).map(|c| format!(" COLLATE {c}")).unwrap_or_default();
    let pairs = value_pairs(a.version_num.min(b.version_num));
    let (mut ps, mut cs) = (vec![], vec![]);
    let mut want = vec![];
    for (n, (ty, pa, cb)) in pairs.iter().enumerate() {
        let differ = printed_differently(a, ty, pa, cb);
        let coll = if ty == "text" { collation.as_str() } else { "" };
        ps.push(format!("CREATE TABLE v{n} (k int PRIMARY KEY, v {ty}); INSERT INTO v{n} VALUES (1, {pa});"));
        cs.push(format!("CREATE TABLE v{n} (k int PRIMARY KEY, v {ty}{coll}); INSERT INTO v{n} VALUES (1, {cb});"));
        want.push((format!("public.v{n}"), if differ { (0, 1, 0) } else { (0, 0, 0) }, differ));
        let keyable = !["json", "NULL"].iter().any(|x| ty == x || pa == x || cb == x);
        if keyable {
            ps.push(format!("CREATE TABLE k{n} (v {ty} PRIMARY KEY); INSERT INTO k{n} VALUES ({pa});"));
            cs.push(format!("CREATE TABLE k{n} (v {ty}{coll} PRIMARY KEY); INSERT INTO k{n} VALUES ({cb});"));
            want.push((format!("public.k{n}"), if differ { (1, 0, 1) } else { (0, 0, 0) }, differ));
        }
    }
    let enum_type = "CREATE TYPE mood AS ENUM ('sad', 'ok');";
    exec_on(a, &pdb, &format!("{enum_type}{}", ps.join("\n")));
    exec_on(b, &cdb, &format!("{enum_type}{}", cs.join("\n")));
    let (p, c) = (format!("{} dbname={pdb}", a.base), format!("{} dbname={cdb}", b.base));
    let differing = want.iter().filter(|w| w.2).count();
    assert!(differing > 20 && want.len() - differing > 20, "both kinds of pairs: {differing} of {}", want.len());
    check_pairs(&p, &c, &want);

    // Text in a LATIN1 parent and a UTF-8 child: the same text is other bytes, and the same
    // bytes (C3 A9) are 'Ã©' in one and 'é' in the other.
    let (lp, lc) = (format!("{tag}_lp"), format!("{tag}_lc"));
    exec_on(
        a,
        "postgres",
        &format!("CREATE DATABASE {lp} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"),
    );
    exec_on(b, "postgres", &format!("CREATE DATABASE {lc}"));
    let mut lwant = vec![];
    for (n, (pa, cb)) in [("'é'", "'é'"), ("'Ã©'", "'é'"), ("'abc'", "'abc'"), ("'ÿ'", "'Ÿ'")].iter().enumerate()
    {
        exec_on(a, &lp, &format!("CREATE TABLE e{n} (k int PRIMARY KEY, v text); INSERT INTO e{n} VALUES (1, {pa})"));
        exec_on(b, &lc, &format!("CREATE TABLE e{n} (k int PRIMARY KEY, v text); INSERT INTO e{n} VALUES (1, {cb})"));
        let differ = pa != cb;
        lwant.push((format!("public.e{n}"), if differ { (0, 1, 0) } else { (0, 0, 0) }, differ));
    }
    check_pairs(&format!("{} dbname={lp}", a.base), &format!("{} dbname={lc}", b.base), &lwant);

    for (cl, db) in [(a, &pdb), (b, &cdb), (a, &lp), (b, &lc)] {
        exec_on(cl, "postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
    }
}

/// Hash and stream give the same report; per table, the counts wanted and one differing block
/// exactly when the values differ.
fn check_pairs(p: &str, c: &str, want: &[(String, (u64, u64, u64), bool)]) {
    let stream = run(p, c, &["--strategy", "stream"]);
    let hash = run(p, c, &["--strategy", "hash"]);
    for (name, counts, differ) in want {
        let t = table(&hash, name);
        let got = (
            t["counts"]["inserted"].as_u64().unwrap(),
            t["counts"]["updated"].as_u64().unwrap(),
            t["counts"]["deleted"].as_u64().unwrap(),
        );
        assert_eq!(got, *counts, "{name}: {}", t["columns"]);
        assert_eq!(t["stats"]["strategy"], "hash", "{name}");
        let blocks = t["stats"]["blocks"]["differing"].as_u64().unwrap();
        assert_eq!(blocks > 0, *differ, "{name}: {} differing blocks", blocks);
    }
    assert_eq!(without_stats(&hash), without_stats(&stream), "hash and stream disagree");
}

/// A hosted branch is a physical clone on another server: same system
/// identifier, OIDs and pages, and after the fork both servers hand out the
/// same transaction ids. The same UPDATE on each then writes its new row
/// version at the same ctid with the same xmin, holding different values:
/// (ctid, xmin) proves nothing across the two, and every strategy must read
/// the row.
#[test]
fn a_physical_clone_elsewhere_is_not_settled_by_tuple_identity() {
    let (origin, clone) = crate::harness::cluster_and_physical_clone(|base| {
        let mut c = postgres::Client::connect(&format!("{base} dbname=postgres"), postgres::NoTls).unwrap();
        c.batch_execute("CREATE DATABASE fork").unwrap();
        let mut c = postgres::Client::connect(&format!("{base} dbname=fork"), postgres::NoTls).unwrap();
        c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)").unwrap();
        c.batch_execute("INSERT INTO t SELECT g, 'same' FROM generate_series(1, 2000) g").unwrap();
        c.batch_execute("VACUUM (FREEZE, ANALYZE) t").unwrap();
    });
    let (p, c) = (format!("{} dbname=fork", origin.0.base), format!("{} dbname=fork", clone.0.base));
    exec_on(&origin.0, "fork", "UPDATE t SET v = 'parent' WHERE id = 7");
    exec_on(&clone.0, "fork", "UPDATE t SET v = 'branch' WHERE id = 7");
    // The premise, from PostgreSQL itself: one system identifier, and the row's
    // versions at the same ctid with the same xmin on both servers.
    let fact = |conn: &str| {
        let mut client = postgres::Client::connect(conn, postgres::NoTls).unwrap();
        let row = client
            .query_one(
                "SELECT (SELECT system_identifier::text FROM pg_control_system()), ctid::text, xmin::text, v \
                 FROM t WHERE id = 7",
                &[],
            )
            .unwrap();
        (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, String>(2), row.get::<_, String>(3))
    };
    let (pf, cf) = (fact(&p), fact(&c));
    assert_eq!((&pf.0, &pf.1, &pf.2), (&cf.0, &cf.1, &cf.2), "the clone should share identifier, ctid and xmin");
    assert_ne!(pf.3, cf.3);

    for extra in [&[][..], &["--strategy", "hash"], &["--strategy", "stream"]] {
        let doc = run(&p, &c, extra);
        let t = table(&doc, "public.t");
        let counts = (&t["counts"]["inserted"], &t["counts"]["updated"], &t["counts"]["deleted"]);
        assert_eq!(counts, (&Value::from(0), &Value::from(1), &Value::from(0)), "{extra:?}: {t}");
        assert_ne!(t["stats"]["strategy"], "identity", "{extra:?}: {}", t["stats"]);
    }
}
