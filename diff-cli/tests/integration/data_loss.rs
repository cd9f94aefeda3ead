//! The data-loss section and the `--fail-on` gate. Every count below follows
//! from the fixture's own arithmetic (comments say how), not from the tool.

use std::collections::BTreeMap;

use crate::harness::{branch, cli, conn, Pair};

fn fixture() -> Pair {
    branch(
        "loss",
        "CREATE TABLE legacy (id int PRIMARY KEY); INSERT INTO legacy SELECT generate_series(1, 777);
         CREATE TABLE customers (id int PRIMARY KEY, name text, country text);
         INSERT INTO customers SELECT i, 'customer' || i, CASE WHEN i % 2 = 0 THEN 'DE' END FROM generate_series(1, 1000) i;
         CREATE MATERIALIZED VIEW mv AS SELECT id FROM customers WHERE id <= 5;
         CREATE TABLE orders (id int PRIMARY KEY, code varchar(30), amount numeric(12,4));
         INSERT INTO orders SELECT i, repeat('x', 5 + i % 20), i / 8.0 FROM generate_series(1, 600) i;
         CREATE TABLE sessions (id int PRIMARY KEY); INSERT INTO sessions SELECT generate_series(1, 50);
         CREATE SEQUENCE counter; SELECT setval('counter', 42);
         CREATE SCHEMA old; CREATE TABLE old.t (id int); INSERT INTO old.t SELECT generate_series(1, 12);
         CREATE TABLE tags (id int PRIMARY KEY, a text[], j jsonb);
         INSERT INTO tags SELECT i, '{x,y,z}', '{\"k\": 1, \"m\": 2}' FROM generate_series(1, 20) i;
         CREATE TYPE st AS ENUM ('new', 'old', 'done'); CREATE TABLE jobs (id int PRIMARY KEY, s st);
         INSERT INTO jobs SELECT i, (CASE WHEN i % 3 = 0 THEN 'old' ELSE 'new' END)::st FROM generate_series(1, 30) i;",
        "DROP TABLE legacy; DROP MATERIALIZED VIEW mv; ALTER TABLE customers DROP COLUMN country;
         UPDATE customers SET name = NULL WHERE id <= 7;
         UPDATE customers SET name = left(name, 2) WHERE id BETWEEN 8 AND 10;
         ALTER TABLE orders ALTER code TYPE varchar(10) USING left(code, 10), ALTER amount TYPE numeric(12,2);
         DELETE FROM orders WHERE id > 590; DELETE FROM sessions; DROP SEQUENCE counter; DROP SCHEMA old CASCADE;
         UPDATE tags SET a = '{x,z}' WHERE id <= 4; UPDATE tags SET j = j - 'm' WHERE id <= 6;
         ALTER TYPE st RENAME TO st_old; CREATE TYPE st AS ENUM ('new', 'done');
         ALTER TABLE jobs ALTER s TYPE st USING (CASE WHEN s::text = 'old' THEN 'done' ELSE s::text END)::st;
         DROP TYPE st_old;",
    )
}

/// object → (kind, count) of the JSON `data_loss` entries.
pub fn losses(doc: &serde_json::Value) -> BTreeMap<(String, String), u64> {
    doc["data_loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let object = [&l["schema"], &l["table"], &l["column"]]
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(".");
            ((l["kind"].as_str().unwrap().to_string(), object), l["count"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn every_kind_is_counted_exactly() {
    let pair = fixture();
    let run = cli(&["--format", "json", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    let got = losses(&doc);
    let want: BTreeMap<(String, String), u64> = [
        ("dropped_table", "public.legacy", 777),
        ("dropped_materialized_view", "public.mv", 5),
        // country is set for even ids: 500 of 1000.
        ("dropped_column", "public.customers.country", 500),
        ("dropped_sequence", "public.counter", 42),
        ("dropped_schema", "old", 12),
        ("nulled", "public.customers.name", 7),
        // 'customer8' … 'customer10' → 'cu'.
        ("truncated", "public.customers.name", 3),
        // code has 5 + i % 20 characters: cut when longer than 10, i.e. i % 20 in 6..=19, 14 ids in
        // every 20. Ids 1..=590 remain (591..=600 are deleted): 29 full blocks (1..=580) give
        // 29 × 14 = 406, and 581..=590 add 586..=590: 5. Total 411.
        ("truncated", "public.orders.code", 411),
        // i / 8 has 3 decimals for odd i: 295 odd ids in 1..590.
        ("rounded", "public.orders.amount", 295),
        ("deleted_rows", "public.orders", 10),
        ("emptied_table", "public.sessions", 50),
        ("shrunk", "public.tags.a", 4),
        ("shrunk", "public.tags.j", 6),
        // 'old' labelled ids divisible by 3: 10 of 30.
        ("enum_label_removed", "public.jobs.s", 10),
    ]
    .into_iter()
    .map(|(k, o, n)| ((k.to_string(), o.to_string()), n))
    .collect();
    assert_eq!(got, want, "{:#}", doc["data_loss"]);
    let legacy = doc["data_loss"].as_array().unwrap().iter().find(|l| l["kind"] == "dropped_table").unwrap();
    assert!(legacy["bytes"].as_u64().unwrap() > 0);
    let nulled = doc["data_loss"].as_array().unwrap().iter().find(|l| l["kind"] == "nulled").unwrap();
    assert_eq!(nulled["examples"], serde_json::json!([{"id": 1}, {"id": 2}, {"id": 3}]));
    // The text report starts with the same section.
    let text = cli(&[&conn(&pair.parent), &conn(&pair.child)], &[]);
    let first = text.stdout.lines().nth(3).unwrap_or_default();
    assert_eq!(first, "Data loss (14)", "{}", text.stdout);
    // Each drop says what it destroyed, on its own line in the schema section.
    let line = |needle: &str| text.stdout.lines().find(|l| l.contains(needle)).unwrap_or_default().to_string();
    assert!(line("dropped table    public.legacy").ends_with("777 rows lost"), "{}", text.stdout);
    assert!(line("dropped column   public.customers.country").contains("500 values lost"), "{}", text.stdout);
    // With filters, the section says it covers what was compared.
    let filtered = cli(&["-t", "public.orders", "--format", "json", &conn(&pair.parent), &conn(&pair.child)], &[]);
    let doc = filtered.json();
    assert_eq!(doc["compared"]["filtered"], true);
    let kinds: Vec<&str> = doc["data_loss"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["deleted_rows", "truncated", "rounded"], "only orders' losses");
    let filtered = cli(&["-t", "public.orders", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert!(filtered.stdout.contains("(within the tables and schemas the filters selected)"), "{}", filtered.stdout);
}

#[test]
fn nothing_lost_is_said_in_one_line() {
    let pair = branch(
        "noloss",
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1);",
        "UPDATE t SET v = 2;",
    );
    let run = cli(&[&conn(&pair.parent), &conn(&pair.child)], &[]);
    assert!(run.stdout.lines().any(|l| l == "No data lost."), "{}", run.stdout);
}

#[test]
fn the_gate_fails_on_the_classes_asked_for() {
    let pair = fixture();
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let gate = |args: &[&str]| {
        let mut all = vec!["--format", "json", "--quiet"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[p.as_str(), c.as_str()]);
        let run = cli(&all, &[]);
        (run.code, run.json())
    };
    for (class, code) in [
        ("data-loss", 1),
        ("deleted-rows", 1),
        ("dropped-objects", 1),
        ("schema", 1),
        ("rows", 1),
        ("any", 1),
        ("security", 0),
    ] {
        let (got, doc) = gate(&["--fail-on", class]);
        assert_eq!(got, code, "--fail-on {class}: {:#}", doc["gate"]);
        assert_eq!(doc["gate"]["passed"], serde_json::json!(code == 0));
    }
    // Accepting the intended deletions lets deleted-rows pass; the entries stay, marked accepted.
    let (code, doc) =
        gate(&["--fail-on", "deleted-rows", "--accept", "deleted-rows:public.orders", "--accept", "public.sessions"]);
    assert_eq!(code, 0, "{:#}", doc["gate"]);
    let accepted: Vec<&str> = doc["data_loss"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["accepted"] == true)
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(accepted, ["deleted_rows", "emptied_table"]);
    assert!(doc["gate"].get("unused_accepts").is_none(), "{:#}", doc["gate"]);
    // A pattern that matches nothing (a typo) is warned about on stderr and in the report.
    let args = ["--format", "json", "--fail-on", "deleted-rows", "--accept", "public.sesions", p.as_str(), c.as_str()];
    let run = cli(&args, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("warning: --accept public.sesions matched nothing"), "{}", run.stderr);
    assert_eq!(run.json()["gate"]["unused_accepts"], serde_json::json!(["public.sesions"]));
    let text = cli(&["--fail-on", "deleted-rows", "--accept", "public.sesions", p.as_str(), c.as_str()], &[]);
    assert!(text.stdout.contains("warning: --accept public.sesions matched nothing"), "{}", text.stdout);
    // A class-qualified pattern accepts the loss under any gate class (the emptied table is also data loss).
    let (code, doc) = gate(&["--fail-on", "deleted-rows,data-loss", "--accept", "deleted-rows:public.sessions"]);
    assert_eq!(code, 1);
    let reasons: Vec<&str> = doc["gate"]["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert!(!reasons.iter().any(|r| r.contains("public.sessions")), "{reasons:?}");
    // Objects outside tables are accepted by their full names.
    let (code, doc) = gate(&[
        "--fail-on",
        "dropped-objects",
        "--accept",
        "public.legacy",
        "--accept",
        "public.mv",
        "--accept",
        "public.customers",
        "--accept",
        "public.counter",
        "--accept",
        "old",
    ]);
    assert_eq!(code, 0, "{:#}", doc["gate"]);
    // No class at all is an error, not a gate switched off.
    let run = cli(&["--fail-on", "", &p, &c], &[]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    // An accept file naming every lossy object passes data-loss.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "# intended by migration 0042\npublic.legacy\npublic.mv\npublic.customers\npublic.counter\nold\npublic.orders\npublic.sessions\npublic.tags\npublic.jobs\n",
    )
    .unwrap();
    let (code, doc) = gate(&["--fail-on", "data-loss", "--accept-file", file.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{:#}", doc["gate"]);
    // Identical databases pass any class.
    let same = branch("gatesame", "CREATE TABLE t (id int PRIMARY KEY);", "");
    let run = cli(&["--fail-on", "any", &conn(&same.parent), &conn(&same.child)], &[]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.trim_end().ends_with("gate passed (--fail-on any)"), "{}", run.stdout);
}

/// Checks a Markdown document with a CommonMark/GFM parser: every table row has its header's
/// number of cells, and the only HTML is the report's own `<details>` blocks.
fn check_markdown(md: &str) {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut cells_in_head = 0;
    let mut cells = 0;
    let mut in_head = false;
    let mut tables = 0;
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Table(_)) => tables += 1,
            Event::Start(Tag::TableHead) => (in_head, cells) = (true, 0),
            Event::End(TagEnd::TableHead) => (in_head, cells_in_head) = (false, cells),
            Event::Start(Tag::TableRow) => cells = 0,
            Event::End(TagEnd::TableRow) => assert_eq!(cells, cells_in_head, "a row with another cell count:\n{md}"),
            Event::Start(Tag::TableCell) => cells += 1,
            Event::Html(h) | Event::InlineHtml(h) => {
                let ok = ["<details>", "<summary>", "</summary>", "</details>"];
                assert!(ok.iter().any(|t| h.trim_start().starts_with(t)), "HTML from the data: {h}");
            }
            _ => {}
        }
        let _ = in_head;
    }
    assert!(tables > 0);
}

#[test]
fn markdown_for_pull_requests() {
    let pair = branch(
        "markdown",
        "CREATE TABLE gone (id int PRIMARY KEY); INSERT INTO gone SELECT generate_series(1, 3);
         CREATE TABLE evil (id int PRIMARY KEY, v text); INSERT INTO evil VALUES (1, 'a'), (2, 'b');",
        "DROP TABLE gone;
         UPDATE evil SET v = E'x | y\\n| z <script>alert(1)</script> `code` **b**' WHERE id = 1;",
    );
    let run = cli(&["--format", "markdown", "--fail-on", "data-loss", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let md = &run.stdout;
    assert!(md.starts_with("### pgbranchdiff: ❌ gate FAILED"), "{md}");
    assert!(md.contains("| `dropped_table` | public.gone | 3 |"), "{md}");
    // The value is in a code span (shown, never interpreted); the parser finds no HTML from the data.
    assert!(md.contains("`x \\| y \\| z <script>alert(1)</script> ˋcodeˋ **b**`"), "{md}");
    check_markdown(md);
}

#[test]
fn markdown_stays_under_the_comment_limit() {
    // 300 tables with 5 changed rows of 80-character values: far more than 60,000 characters of examples.
    let setup = "DO $$ BEGIN FOR i IN 1..300 LOOP
                   EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
                   EXECUTE format('INSERT INTO t%s SELECT g, repeat(''a'', 80) FROM generate_series(1, 5) g', i);
                 END LOOP; END $$;";
    let change = "DO $$ BEGIN FOR i IN 1..300 LOOP
                    EXECUTE format('UPDATE t%s SET v = repeat(''b'', 80)', i);
                  END LOOP; END $$;";
    let pair = branch("mdcap", setup, change);
    let run = cli(&["--format", "markdown", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.len() < 60_000, "{} characters", run.stdout.len());
    assert!(run.stdout.contains("cut to stay under 60000 characters"), "{}", &run.stdout[run.stdout.len() - 300..]);
    // Every table's counts are still there; only examples were cut.
    assert_eq!(run.stdout.matches("| 0 | 5 | 0 |").count(), 300);
    check_markdown(&run.stdout);
}

#[test]
fn partitions_dropped_are_counted_once() {
    // parted holds 77 rows in two partitions (39 + 38). Dropping the root drops both.
    let pair = branch(
        "partdrop",
        "CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
         CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (1) TO (40);
         CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (40) TO (100);
         INSERT INTO parted SELECT generate_series(1, 77);
         CREATE TABLE kept (id int PRIMARY KEY) PARTITION BY RANGE (id);
         CREATE TABLE kept_1 PARTITION OF kept FOR VALUES FROM (1) TO (40);
         CREATE TABLE kept_2 PARTITION OF kept FOR VALUES FROM (40) TO (100);
         INSERT INTO kept SELECT generate_series(1, 77);",
        "DROP TABLE parted; DROP TABLE kept_2;",
    );
    let run = cli(&["--format", "json", &conn(&pair.parent), &conn(&pair.child)], &[]);
    let got = losses(&run.json());
    // kept_2 held ids 40..77: 38 rows, which kept lost.
    let want: BTreeMap<(String, String), u64> = [
        (("dropped_table".to_string(), "public.parted".to_string()), 77),
        (("deleted_rows".to_string(), "public.kept".to_string()), 38),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
}
