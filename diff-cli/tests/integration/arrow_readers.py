"""Opens every file of a pgbranchdiff Arrow report in pyarrow, DuckDB and
polars, and prints what each reader read as JSON, one canonical form for all:
every leaf field (struct fields walked into, `before.d`) per row, with dates
as days since 1970-01-01, timestamps and times as microseconds and intervals
as [months, days, microseconds], each computed by the reader itself, so the
test can compare the readers with each other and with PostgreSQL.

polars has no Arrow interval type: a file with interval columns is read the way
docs/output-format.md says (pyarrow, `intervals_as_structs`, `polars.from_arrow`).

Usage: arrow_readers.py DIR
"""

import json
import sys
import uuid as uuidlib
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc


MDN = pa.struct([("months", pa.int32()), ("days", pa.int32()), ("nanoseconds", pa.int64())])


def intervals_as_structs(arr):
    """docs/output-format.md's fallback for polars, as written there: every
    interval (also in structs and lists) as a struct of months, days and nanoseconds."""
    t = arr.type
    if pa.types.is_interval(t):
        return pa.array([None if v is None else {"months": v.months, "days": v.days, "nanoseconds": v.nanoseconds}
                         for v in arr.to_pylist()], type=MDN)
    if pa.types.is_struct(t):
        kids = [intervals_as_structs(arr.field(i)) for i in range(t.num_fields)]
        fields = [pa.field(t.field(i).name, k.type, metadata=t.field(i).metadata) for i, k in enumerate(kids)]
        return pa.StructArray.from_arrays(kids, fields=fields, mask=arr.is_null())
    if pa.types.is_list(t):
        return pa.ListArray.from_arrays(arr.offsets, intervals_as_structs(arr.values), mask=arr.is_null())
    return arr


def has_interval(t):
    if pa.types.is_interval(t):
        return True
    if pa.types.is_struct(t):
        return any(has_interval(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_map(t):
        return has_interval(t.value_type)
    return False


def leaves(schema):
    """(path, arrow type, is json) of every leaf: struct fields walked into."""
    out = []

    def walk(path, field):
        t = field.type
        if pa.types.is_struct(t):
            out.append((path, t, "struct"))
            for i in range(t.num_fields):
                walk(path + [t.field(i).name], t.field(i))
            return
        meta = field.metadata or {}
        ext = t.extension_name if isinstance(t, pa.BaseExtensionType) else meta.get(b"ARROW:extension:name", b"").decode()
        out.append((path, t, "json" if ext == "arrow.json" else None))

    for f in schema:
        walk([f.name], f)
    return out


def float_text(x):
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    r = repr(x)
    return r[:-2] if r.endswith(".0") else r


def canon(v, t, kind):
    """One value as JSON, by its Arrow type; temporal values are already numbers."""
    if v is None:
        return None
    if isinstance(t, pa.BaseExtensionType):
        t = t.storage_type
    if kind == "struct":
        return False
    if pa.types.is_list(t):
        return [canon(e, t.value_type, kind) for e in v]
    if pa.types.is_map(t):
        pairs = v.items() if isinstance(v, dict) else [(p["key"], p["value"]) if isinstance(p, dict) else p for p in v]
        return sorted([k, val] for k, val in pairs)
    if kind == "json":
        return json.loads(v)
    if pa.types.is_interval(t):
        return list(v)
    if pa.types.is_floating(t):
        return float_text(v)
    if pa.types.is_decimal(t):
        return format(Decimal(v), "f")
    if pa.types.is_fixed_size_binary(t):
        return str(v if isinstance(v, uuidlib.UUID) else uuidlib.UUID(bytes=bytes(v)))
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return bytes(v).hex()
    if pa.types.is_struct(t):
        return {k: canon(x, t.field(k).type, None) for k, x in v.items()}
    if isinstance(v, uuidlib.UUID):
        return str(v)
    return v


def rows_of(columns, leaf_list, n):
    """Rows of {path: value}; leaves under a null struct left out (a reader
    may show their children as anything)."""
    out = []
    for r in range(n):
        row, null_structs = {}, []
        for (path, t, kind), col in zip(leaf_list, columns):
            name = ".".join(path)
            if any(name.startswith(p + ".") for p in null_structs):
                continue
            v = col[r]
            if kind == "struct":
                if v:
                    null_structs.append(name)
                row[name + "?"] = bool(v)
                continue
            row[name] = canon(v, t, kind)
        out.append(row)
    return out


# pyarrow: temporal values cast to integers by pyarrow.
def pa_leaf(arr, t):
    if pa.types.is_list(t):
        out = []
        for i in range(len(arr)):
            out.append(None if not arr[i].is_valid else pa_leaf(arr[i].values, t.value_type))
        return out
    if pa.types.is_date32(t):
        return arr.cast(pa.int32()).to_pylist()
    if pa.types.is_timestamp(t) or pa.types.is_time64(t):
        return arr.cast(pa.int64()).to_pylist()
    if pa.types.is_interval(t):
        return [None if v is None else [v.months, v.days, v.nanoseconds // 1000] for v in arr.to_pylist()]
    return arr.to_pylist()


def read_pyarrow(table, leaf_list):
    cols = []
    for path, t, kind in leaf_list:
        arr = table.column(path[0]).combine_chunks()
        for p in path[1:]:
            arr = arr.field(p)
        cols.append(arr.is_null().to_pylist() if kind == "struct" else pa_leaf(arr, t))
    return rows_of(cols, leaf_list, table.num_rows)


# DuckDB: the same, in DuckDB's SQL over the pyarrow table (its documented way in).
def duck_expr(x, t):
    if pa.types.is_list(t):
        return "list_transform(%s, lambda e: %s)" % (x, duck_expr("e", t.value_type)) if temporal(t.value_type) else x
    if pa.types.is_date32(t):
        return "(%s - DATE '1970-01-01')" % x
    if pa.types.is_timestamp(t):
        return "epoch_us(%s)" % x
    if pa.types.is_time64(t):
        return "((hour({0}) * 3600 + minute({0}) * 60)::BIGINT * 1000000 + microsecond({0}))".format(x)
    if pa.types.is_interval(t):
        return ("CASE WHEN {0} IS NULL THEN NULL ELSE [datepart('year', {0}) * 12 + datepart('month', {0}), datepart('day', {0}), "
                "datepart('hour', {0})::BIGINT * 3600000000 + datepart('minute', {0})::BIGINT * 60000000 "
                "+ datepart('microsecond', {0})] END").format(x)
    return x


def temporal(t):
    return any(f(t) for f in (pa.types.is_date32, pa.types.is_timestamp, pa.types.is_time64, pa.types.is_interval))


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def read_duckdb(table, leaf_list):
    exprs = []
    for path, t, kind in leaf_list:
        x = quote(path[0])
        for p in path[1:]:
            x = "struct_extract(%s, '%s')" % (x, p.replace("'", "''"))
        exprs.append("(%s IS NULL)" % x if kind == "struct" else duck_expr(x, t))
    con = duckdb.connect()
    con.register("report", table)
    got = con.execute("SELECT %s FROM report" % ", ".join(exprs)).fetchall()
    cols = [list(c) for c in zip(*got)] if got else [[] for _ in exprs]
    return rows_of(cols, leaf_list, len(got))


# polars: the same with polars' expressions; intervals come as structs (the fallback).
def pl_expr(e, t):
    if pa.types.is_list(t):
        return e.list.eval(pl_expr(pl.element(), t.value_type)) if temporal(t.value_type) else e
    if pa.types.is_date32(t):
        return e.cast(pl.Int32)
    if pa.types.is_timestamp(t):
        return e.cast(pl.Int64)
    if pa.types.is_time64(t):
        return e.cast(pl.Int64) // 1000
    if pa.types.is_interval(t):
        parts = [e.struct.field("months").cast(pl.Int64), e.struct.field("days").cast(pl.Int64),
                 e.struct.field("nanoseconds") // 1000]
        return pl.when(e.is_null()).then(None).otherwise(pl.concat_list(parts))
    return e


def read_polars(path, table, leaf_list):
    try:
        df = pl.read_ipc(path)
        fallback = False
    except BaseException:  # polars panics (a BaseException) on a type it cannot import
        if not any(has_interval(f.type) for f in table.schema):
            raise
        columns = [pa.chunked_array([intervals_as_structs(c) for c in col.chunks]) for col in table.columns]
        df = pl.from_arrow(pa.table(columns, names=table.column_names))
        fallback = True
    exprs = []
    for i, (path_, t, kind) in enumerate(leaf_list):
        e = pl.col(path_[0])
        for p in path_[1:]:
            e = e.struct.field(p)
        e = e.is_null() if kind == "struct" else pl_expr(e, t)
        exprs.append(e.alias("c%d" % i))
    out = df.select(exprs)
    cols = [out.get_column("c%d" % i).to_list() for i in range(len(leaf_list))]
    return rows_of(cols, leaf_list, df.height), fallback


def main():
    d = Path(sys.argv[1])
    doc = {}
    for f in sorted(d.glob("*.arrow")):
        with pa.memory_map(str(f)) as source:
            table = ipc.open_file(source).read_all()
        leaf_list = leaves(table.schema)
        polars_rows, fallback = read_polars(f, table, leaf_list)
        doc[f.name] = {
            "pyarrow": read_pyarrow(table, leaf_list),
            "duckdb": read_duckdb(table, leaf_list),
            "polars": polars_rows,
            "polars_fallback": fallback,
        }
    print(json.dumps(doc, sort_keys=True))


if __name__ == "__main__":
    main()
