#!/usr/bin/env bash
# Regenerates the seed corpora fuzz/corpus/copy_frames and fuzz/corpus/values
# from REAL binary COPY output of a throwaway PostgreSQL server.
#
#   fuzz/make_corpus.sh                  # system PostgreSQL 15
#   PGBIN=/path/to/bin fuzz/make_corpus.sh
#
# Runs as root (the server is started as `postgres` through runuser) or as an
# ordinary user (the server runs as that user). Needs python3 to cut the COPY
# files into fuzz inputs. The input formats are described in fuzz/README.md and
# at the top of each target in fuzz/fuzz_targets/.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/pgbranchdiff-corpus.XXXXXX)
port=54329

if [ "$(id -u)" = 0 ]; then
  chown postgres: "$work"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_pg "$PGBIN/initdb" -D "$work/data" -A trust -U postgres --no-sync -E UTF8 --locale=C >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
  -o "-k $work -p $port -c listen_addresses='' -c fsync=off" start >/dev/null

mkdir "$work/out"
[ "$(id -u)" = 0 ] && chown postgres: "$work/out"

psql() { as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres -d postgres "$@"; }

# A wide table with every kind the diff reads in binary, extremes and NULLs.
psql <<'SQL'
SET timezone = 'UTC';
CREATE TABLE t (
  id int8 PRIMARY KEY,
  i2 int2, i4 int4, i8 int8, o oid,
  f4 float4, f8 float8, n numeric,
  tx text, c5 char(5), vc varchar(20), by bytea, u uuid,
  d date, tm time, ts timestamp, tz timestamptz,
  j json, jb jsonb, b bool
);
INSERT INTO t VALUES
 (1, 0, 0, 0, 0, 0, 0, 0, '', '', '', '\x', '00000000-0000-0000-0000-000000000000',
  '2000-01-01', '00:00', '2000-01-01 00:00', '2000-01-01 00:00+00', '{}', '{}', false),
 (2, -32768, -2147483648, -9223372036854775808, 3000000000, '-0', '-0', 'NaN',
  'héllo wörld ✓ 😀', 'ab', 'x', '\xdeadbeef00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '-infinity', '23:59:59.999999', '-infinity', '-infinity',
  '{"b": 1, "a": [1, 2.50]}', '{"b": 1, "a": [1, 2.50]}', true),
 (3, 32767, 2147483647, 9223372036854775807, 4294967295, 'NaN', 'NaN', 'Infinity',
  E'tab\there\nnewline \\ "quote"', 'abcde', 'ünïcödé', '\x00', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
  'infinity', '12:34:56.5', 'infinity', 'infinity', '[1, "x", null, true, 1e400]', '[1, "x", null, true]', NULL),
 (4, 1, 1, 1, 1, 'Infinity', 'Infinity', '-Infinity', 'a', 'a    ', 'a ', '\x01',
  '123e4567-e89b-12d3-a456-426614174000', '4713-01-01 BC', '00:00:00.000001',
  '4713-01-01 00:00 BC', '294276-12-31 23:59:59.999999+00', '"str"', '"str"', false),
 (5, -1, -1, -1, 2147483648, '-Infinity', '-Infinity', '123456789.000100', 'z', 'é', 'é',
  '\xffffffff', '00000000-0000-0000-0000-000000000001', '5874897-12-31', '24:00',
  '1999-12-31 23:59:59.999999', '1970-01-01 00:00+05:30', '{"a": {"b": [{"c": -0.0}]}}',
  '{"a": {"b": [{"c": -0.0}]}}', true),
 (6, 2, 100000, 10000000000, 2147483647, 1.5, 3.141592653589793, '-0.00001230', 'Zürich',
  'x y', 'AbC', '\x5c78', '01234567-89ab-cdef-0123-456789abcdef', '1970-01-01', '01:02:03',
  '2024-02-29 12:00', '2024-02-29 12:00-08', '{"n": 2.0, "m": 2.00}', '{"n": 2.0, "m": 2.00}', false),
 (7, -2, -100000, -10000000000, 16384, 1e-45, 5e-324, '1e-20', repeat('long ', 40), NULL, NULL,
  decode(repeat('ab', 64), 'hex'), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (8, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL),
 (9, 3, 3, 3, 3, 3.4028235e38, 1.7976931348623157e308, '12345678901234567890123456789.5', '日本語',
  '     ', '', '\x', 'ffffffff-0000-0000-0000-000000000000', '2000-02-29', '00:00:00', '2000-01-01 00:00:00.5',
  '2000-01-01 00:00:00.5+00', '[]', '[]', true),
 (10, 4, 4, 4, 4, -1.5, -2.5e-300, '5.00', 'Ω≈ç√∫', 'abc  ', 'abc  ', '\x00ff00ff', NULL,
  '0001-01-01', '11:59:59', '0001-01-01 00:00', '0001-01-01 00:00+00', '{"k": "v\u00e9"}',
  '{"k": "v\u00e9", "e": ""}', false);

-- A (int4, text) key, as the merge sees it: ordered, text in byte order.
CREATE TABLE k2 (a int4, s text, v int4, w text, PRIMARY KEY (a, s));
INSERT INTO k2 VALUES (-1, 'b', 1, 'x'), (-1, 'é', 2, NULL), (0, '', NULL, ''), (0, 'B', 4, 'y'),
  (0, 'a', 5, 'z'), (2147483647, 'z', -1, 'héllo');
SQL

# Every COPY that becomes a seed: name|ncols|query. Column order = the query's.
copies=(
  "wide|20|SELECT * FROM t ORDER BY id"
  "wide_rev|20|SELECT * FROM t ORDER BY id DESC"
  "empty|20|SELECT * FROM t WHERE false"
  "one_row|20|SELECT * FROM t WHERE id = 2"
  "key_int8_text|2|SELECT id, tx FROM t ORDER BY id"
  "k2|4|SELECT a, s, v, w FROM k2 ORDER BY a, s COLLATE \"C\""
  "k2_empty|4|SELECT a, s, v, w FROM k2 WHERE false"
  "single_null|1|SELECT NULL::int4"
  "no_columns|0|SELECT FROM t ORDER BY id"
)
for c in "${copies[@]}"; do
  IFS='|' read -r name ncols query <<<"$c"
  psql -c "\\copy ($query) to '$work/out/$name.$ncols.copy' with (format binary)"
done

# One single-column table per kind (for the values corpus), named after diff_core::value::Kind.
psql <<'SQL'
CREATE TABLE "Bool" (v bool);               INSERT INTO "Bool" VALUES (true), (false), (NULL);
CREATE TABLE "Int2" (v int2);               INSERT INTO "Int2" VALUES (0), (1), (-1), (32767), (-32768), (256);
CREATE TABLE "Int4" (v int4);               INSERT INTO "Int4" VALUES (0), (1), (-1), (2147483647), (-2147483648), (65536);
CREATE TABLE "Int8" (v int8);
INSERT INTO "Int8" VALUES (0), (1), (-1), (9223372036854775807), (-9223372036854775808), (4294967296);
CREATE TABLE "Oid" (v oid);                 INSERT INTO "Oid" VALUES (0), (1), (2147483647), (2147483648), (3000000000), (4294967295);
CREATE TABLE "Float4" (v float4);
INSERT INTO "Float4" VALUES ('0'), ('-0'), ('NaN'), ('Infinity'), ('-Infinity'), ('1.5'), ('-1.5'), ('1e-45'),
  ('3.4028235e38'), ('0.1');
CREATE TABLE "Float8" (v float8);
INSERT INTO "Float8" VALUES ('0'), ('-0'), ('NaN'), ('Infinity'), ('-Infinity'), ('1.5'), ('5e-324'),
  ('1.7976931348623157e308'), ('0.1'), ('-2.5e-300');
CREATE TABLE "Numeric" (v numeric);
INSERT INTO "Numeric" VALUES ('0'), ('0.000'), ('NaN'), ('Infinity'), ('-Infinity'), ('1'), ('1.0'), ('1.00'), ('-1'),
  ('5'), ('5.00'), ('5.1'), ('10000'), ('-0.00001230'), ('123456789.000100'), ('1e-20'),
  ('12345678901234567890123456789.5'), ('24.6900'), ('24.69'), ('0.0001'), ('9999.9999'), ('-10000.0001'),
  ('1e1000'), ('-1e-1000');
CREATE TABLE "Text" (v text);
INSERT INTO "Text" VALUES (''), ('a'), ('z'), ('é'), ('héllo wörld ✓ 😀'), ('日本語'), (E'tab\there\n'), ('abc  ');
CREATE TABLE "BpChar" (v char(5));          INSERT INTO "BpChar" VALUES (''), ('a'), ('a    '), ('abcde'), ('é'), ('x y');
CREATE TABLE "Bytea" (v bytea);             INSERT INTO "Bytea" VALUES ('\x'), ('\x00'), ('\xff'), ('\xdeadbeef'), ('\x00ff00ff');
CREATE TABLE "Uuid" (v uuid);
INSERT INTO "Uuid" VALUES ('00000000-0000-0000-0000-000000000000'), ('ffffffff-ffff-ffff-ffff-ffffffffffff'),
  ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
CREATE TABLE "Date" (v date);
INSERT INTO "Date" VALUES ('2000-01-01'), ('1970-01-01'), ('infinity'), ('-infinity'), ('4713-01-01 BC'),
  ('5874897-12-31'), ('2024-02-29');
CREATE TABLE "Time" (v time);
INSERT INTO "Time" VALUES ('00:00'), ('23:59:59.999999'), ('24:00'), ('12:34:56.5'), ('00:00:00.000001');
CREATE TABLE "Timestamp" (v timestamp);
INSERT INTO "Timestamp" VALUES ('2000-01-01'), ('infinity'), ('-infinity'), ('4713-01-01 00:00 BC'),
  ('294276-12-31 23:59:59.999999'), ('1999-12-31 23:59:59.999999'), ('2000-01-01 00:00:00.5');
CREATE TABLE "Timestamptz" (v timestamptz);
INSERT INTO "Timestamptz" VALUES ('2000-01-01 00:00+00'), ('infinity'), ('-infinity'), ('2024-02-29 12:00-08'),
  ('1970-01-01 00:00+05:30'), ('0001-01-01 00:00+00 BC');
CREATE TABLE "Json" (v json);
INSERT INTO "Json" VALUES ('{}'), ('[]'), ('{"b": 1, "a": [1, 2.50]}'), ('"str"'), ('null'),
  ('[1, "x", null, true, 1e400]'), ('{"k": "v\u00e9"}');
CREATE TABLE "Jsonb" (v jsonb);
INSERT INTO "Jsonb" VALUES ('{}'), ('[]'), ('{"b": 1, "a": [1, 2.50]}'), ('"str"'), ('null'),
  ('{"n": 2.0, "m": 2.00}'), ('{"a": {"b": [{"c": -0.0}]}}'), ('{"k": "v\u00e9", "e": ""}');
SQL
for kind in Bool Int2 Int4 Int8 Oid Float4 Float8 Numeric Text BpChar Bytea Uuid Date Time Timestamp Timestamptz \
  Json Jsonb; do
  psql -c "\\copy (SELECT v FROM \"$kind\") to '$work/out/kind_$kind.1.copy' with (format binary)"
done

rm -rf "$here/corpus/copy_frames" "$here/corpus/values"
mkdir -p "$here/corpus/copy_frames" "$here/corpus/values"
python3 - "$work/out" "$here/corpus" <<'PY'
import hashlib, os, random, struct, sys

src, dst = sys.argv[1], sys.argv[2]
# Must list diff_core::value::Kind in the order of KINDS in fuzz_targets/values.rs.
KINDS = ["Bool", "Int2", "Int4", "Int8", "Oid", "Float4", "Float8", "Numeric", "Text", "BpChar",
         "Bytea", "Uuid", "Date", "Time", "Timestamp", "Timestamptz", "Json", "Jsonb"]
rng = random.Random(20240601)

def save(target, data):
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(dst, target, name), "wb") as f:
        f.write(data)

def parse(stream):
    """Server framing: (messages, rows). The header rides in the first row's
    message (or with the trailer when there are no rows); one message per row."""
    assert stream[:11] == b"PGCOPY\n\xff\r\n\0"
    ext = struct.unpack(">i", stream[15:19])[0]
    pos = 19 + ext
    cuts, rows = [], []
    start = 0
    while True:
        n = struct.unpack(">h", stream[pos:pos + 2])[0]
        if n == -1:
            break
        p = pos + 2
        row = []
        for _ in range(n):
            ln = struct.unpack(">i", stream[p:p + 4])[0]
            p += 4
            row.append(None if ln < 0 else stream[p:p + ln])
            p += max(ln, 0)
        rows.append(row)
        cuts.append(p - start)
        start = p
        pos = p
    msgs = cuts + [len(stream) - start]
    return msgs, rows

def frame_input(ncols, lengths, mask, stream):
    # copy_frames input: ncols u8, count u8, count x u16 BE message lengths,
    # u64 BE batch mask (bit i: a decode() call ends after message i), stream.
    head = bytes([ncols, len(lengths)]) + b"".join(struct.pack(">H", l) for l in lengths)
    return head + struct.pack(">Q", mask) + stream

for fname in sorted(os.listdir(src)):
    stream = open(os.path.join(src, fname), "rb").read()
    ncols = int(fname.split(".")[1])
    msgs, rows = parse(stream)
    explicit = msgs[:-1][:255]  # the last message is "the rest"
    # As the server frames it, one message per decode() call, everything in one
    # call, and a random grouping.
    for mask in (2**64 - 1, 0, rng.getrandbits(64)):
        save("copy_frames", frame_input(ncols, explicit, mask, stream))
    if fname.startswith("kind_"):
        kind = KINDS.index(fname[5:].split(".")[0])
        vals = [r[0] for r in rows if r[0] is not None]
        # values input: kind u8, u16 BE length of a, a, b (the rest).
        for i, a in enumerate(vals):
            for b in (a, vals[(i + 1) % len(vals)]):
                save("values", bytes([kind]) + struct.pack(">H", len(a)) + a + b)
    elif fname.startswith("wide."):
        # Columns of table t, in order, as kinds (varchar reads as Text).
        cols = ["Int8", "Int2", "Int4", "Int8", "Oid", "Float4", "Float8", "Numeric", "Text", "BpChar",
                "Text", "Bytea", "Uuid", "Date", "Time", "Timestamp", "Timestamptz", "Json", "Jsonb", "Bool"]
        for c, kname in enumerate(cols):
            vals = [r[c] for r in rows if r[c] is not None]
            for a, b in zip(vals, vals[1:] + vals[:1]):
                save("values", bytes([KINDS.index(kname)]) + struct.pack(">H", len(a)) + a + b)
PY

echo "copy_frames: $(ls "$here/corpus/copy_frames" | wc -l) files, values: $(ls "$here/corpus/values" | wc -l) files,"\
  "$(du -sh --apparent-size "$here/corpus" | cut -f1) in all"
