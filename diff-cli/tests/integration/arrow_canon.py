"""Reads a pgbranchdiff Arrow report with pyarrow and prints it as canonical
JSON in the JSON report's terms, so the test can compare the two outputs.

Typed Arrow values are printed back into PostgreSQL's text forms (dates,
timestamps, intervals, arrays) by the rules of PostgreSQL's output functions,
written here independently of the Rust code that parsed them.

Usage: arrow_canon.py DIR
"""

import json
import sys
import uuid as uuidlib
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

MAX_SAFE = 2**53 - 1


def read(path):
    with pa.memory_map(str(path)) as source:
        return ipc.open_file(source).read_all()


def extension_name(field_type, metadata):
    if isinstance(field_type, pa.BaseExtensionType):
        return field_type.extension_name
    if metadata and b"ARROW:extension:name" in metadata:
        return metadata[b"ARROW:extension:name"].decode()
    return None


def storage(arr):
    return arr.storage if isinstance(arr, pa.ExtensionArray) else arr


def civil(days):
    """Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (year 0 = 1 BC)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return y, m, d


def date_text(days):
    y, m, d = civil(days)
    if y <= 0:
        return "%04d-%02d-%02d BC" % (1 - y, m, d)
    return "%04d-%02d-%02d" % (y, m, d)


def clock_text(us):
    secs, frac = divmod(us, 1_000_000)
    s = "%02d:%02d:%02d" % (secs // 3600, secs // 60 % 60, secs % 60)
    if frac:
        s += ("." + "%06d" % frac).rstrip("0")
    return s


def timestamp_text(us, tz):
    days, rest = divmod(us, 86_400_000_000)
    date = date_text(days)
    bc = date.endswith(" BC")
    date = date[:-3] if bc else date
    return date + " " + clock_text(rest) + ("+00" if tz else "") + (" BC" if bc else "")


def interval_text(months, days, nanos):
    """PostgreSQL's EncodeInterval, IntervalStyle postgres."""
    assert nanos % 1000 == 0
    micros = nanos // 1000
    year, mon = int(months / 12), months - 12 * int(months / 12)
    parts = []
    is_before, is_zero = False, True
    for value, unit in ((year, "year"), (mon, "mon"), (days, "day")):
        if value == 0:
            continue
        parts.append("%s%d %s%s" % ("+" if is_before and value > 0 else "", value, unit, "" if value == 1 else "s"))
        is_before, is_zero = value < 0, False
    if is_zero or micros != 0:
        minus = micros < 0
        a = abs(micros)
        hours, rest = divmod(a, 3_600_000_000)
        mins, rest = divmod(rest, 60_000_000)
        secs, frac = divmod(rest, 1_000_000)
        t = "%s%02d:%02d:%02d" % ("-" if minus else ("+" if is_before else ""), hours, mins, secs)
        if frac:
            t += ("." + "%06d" % frac).rstrip("0")
        parts.append(t)
    return " ".join(parts)


def float_text(x):
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    r = repr(x)
    return r[:-2] if r.endswith(".0") else r


def array_element(text):
    """array_out's quoting of one element."""
    needs = text == "" or text.upper() == "NULL" or any(c in text for c in '{},"\\') or any(c.isspace() for c in text)
    if not needs:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def texts(arr, typ, ext):
    """PostgreSQL's text form of every value of a scalar array (None for null)."""
    arr = storage(arr)
    typ = arr.type
    valid = [v.is_valid for v in arr]
    if pa.types.is_date32(typ):
        raw = arr.cast(pa.int32()).to_pylist()
        return [date_text(v) if v is not None else None for v in raw]
    if pa.types.is_timestamp(typ):
        raw = arr.cast(pa.int64()).to_pylist()
        return [timestamp_text(v, typ.tz is not None) if v is not None else None for v in raw]
    if pa.types.is_time64(typ):
        raw = arr.cast(pa.int64()).to_pylist()
        return [clock_text(v) if v is not None else None for v in raw]
    out = []
    for v, ok in zip(arr.to_pylist(), valid):
        if not ok or v is None:
            out.append(None)
        elif pa.types.is_boolean(typ):
            out.append("t" if v else "f")
        elif pa.types.is_floating(typ):
            out.append(float_text(v))
        elif pa.types.is_decimal(typ):
            out.append(format(v, "f"))
        elif pa.types.is_fixed_size_binary(typ) and ext == "arrow.uuid":
            out.append(str(uuidlib.UUID(bytes=bytes(v))))
        elif pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
            out.append("\\x" + bytes(v).hex())
        elif pa.types.is_interval(typ):
            out.append(interval_text(v.months, v.days, v.nanoseconds))
        else:
            out.append(str(v))
    return out


def values(arr, field):
    """The JSON report's value of every row of a column."""
    typ = field.type
    ext = extension_name(typ, field.metadata)
    base = storage(arr).type
    if pa.types.is_list(base):
        item = base.value_field
        lst = storage(arr)
        elems = texts(lst.values, item.type, extension_name(item.type, item.metadata))
        offsets = lst.offsets.to_pylist()
        out = []
        for i in range(len(lst)):
            if not lst[i].is_valid:
                out.append(None)
                continue
            parts = ["NULL" if e is None else array_element(e) for e in elems[offsets[i] : offsets[i + 1]]]
            out.append("{" + ",".join(parts) + "}")
        return out
    if pa.types.is_integer(base):
        return [v if v is None or abs(v) <= MAX_SAFE else str(v) for v in storage(arr).to_pylist()]
    if pa.types.is_floating(base):
        raw = storage(arr).to_pylist()
        return [v if v is None or (v == v and abs(v) != float("inf")) else float_text(v) for v in raw]
    if pa.types.is_boolean(base):
        return storage(arr).to_pylist()
    if ext == "arrow.json":
        return [None if v is None else json.loads(v) for v in storage(arr).to_pylist()]
    return texts(arr, base, ext)


def struct_rows(arr, struct_type):
    """A struct column as a list of dicts (None where the struct is null)."""
    arr = storage(arr)
    columns = {}
    for i in range(struct_type.num_fields):
        f = struct_type.field(i)
        columns[f.name] = values(arr.field(i), f)
    out = []
    for r in range(len(arr)):
        if not arr[r].is_valid:
            out.append(None)
        else:
            out.append({name: col[r] for name, col in columns.items()})
    return out


def rows(table):
    out = []
    schema = table.schema
    for batch in table.to_batches():
        n = batch.num_rows
        col = {name: batch.column(name) for name in schema.names}
        key = struct_rows(col["key"], schema.field("key").type) if "key" in col else [{}] * n
        before = struct_rows(col["before"], schema.field("before").type)
        after = struct_rows(col["after"], schema.field("after").type)
        ops = col["op"].to_pylist()
        changed = col["changed"].to_pylist()
        refused = col["unrepresentable"].to_pylist()
        for i in range(n):
            row = {"op": ops[i], "key": key[i], "before": before[i], "after": after[i]}
            if changed[i] is not None:
                row["changed"] = changed[i]
            for entry in refused[i] or []:
                side, name = entry["column"].split(".", 1)
                row[side][name] = entry["value"]
            if refused[i] is not None:
                row["unrepresentable"] = sorted(e["column"] for e in refused[i])
            out.append(row)
    return out


def flat_types(schema):
    """`before.col` -> {type, extension} of a table file, list items as `[]`."""
    out = {}

    def walk(prefix, field):
        typ = field.type
        ext = extension_name(typ, field.metadata)
        base = typ.storage_type if isinstance(typ, pa.BaseExtensionType) else typ
        if pa.types.is_struct(base) and not prefix.startswith("unrepresentable"):
            for i in range(base.num_fields):
                walk(prefix + "." + base.field(i).name, base.field(i))
            return
        if pa.types.is_list(base):
            out[prefix] = {"type": "list", "extension": ext}
            walk(prefix + "[]", base.value_field)
            return
        out[prefix] = {"type": str(base), "extension": ext}

    for f in schema:
        walk(f.name, f)
    return out


def main():
    d = Path(sys.argv[1])
    tables = read(d / "tables.arrow").to_pylist()
    doc = {"files": sorted(p.name for p in d.iterdir()), "tables": [], "types": {}}
    for t in tables:
        entry = dict(t)
        if t["file"] is not None:
            data = read(d / t["file"])
            entry["rows"] = rows(data)
            doc["types"][t["schema"] + "." + t["name"]] = flat_types(data.schema)
        doc["tables"].append(entry)
    schema_changes = read(d / "schema_changes.arrow").to_pylist()
    for c in schema_changes:
        c["before"] = dict(c["before"])
        c["after"] = dict(c["after"])
    doc["schema_changes"] = schema_changes
    losses = read(d / "data_loss.arrow").to_pylist()
    for loss in losses:
        loss["examples"] = [json.loads(e) for e in loss["examples"]]
    doc["data_loss"] = losses
    doc["metadata"] = {k.decode(): v.decode() for k, v in (read(d / "tables.arrow").schema.metadata or {}).items()}
    print(json.dumps(doc, sort_keys=True))


if __name__ == "__main__":
    main()
