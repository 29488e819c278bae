"""Reads a genai-audit store directory with pyarrow and DuckDB, the way a user would.

Usage: python3 read_store.py <store root>

Prints one JSON object on stdout:
    {"versions": {...},
     "pyarrow": {"types": {column: type}, "rows": {record_id: {column: value}}},
     "duckdb":  {"types": {column: type}, "rows": {record_id: {column: value}}}}
Types are as each engine names them. Values are rendered so that nothing is lost on the way
to JSON: timestamps as ISO 8601 with microseconds and offset, decimals as their exact string,
dates as YYYY-MM-DD, lists as lists. Exit code 3 with a MISSING line when a package is absent.
"""

import datetime
import decimal
import json
import sys

COLUMNS = [
    "tenant",
    "dt",
    "record_id",
    "start_time",
    "start_time_unix_nano",
    "total_cost_usd",
    "input_tokens",
    "pii_types",
    "finish_reasons",
    "streaming",
    "retention_until",
    "data_classification",
]


def render(value):
    """A JSON-safe rendering that keeps the exact value."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return "NAIVE " + value.isoformat(timespec="microseconds")
        return value.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        # Fixed-point with the value's own scale (str() would switch to 2.2E-7).
        return format(value, "f")
    if isinstance(value, (list, tuple)):
        return [render(v) for v in value]
    if isinstance(value, (bool, int, float, str)):
        return value
    return "UNEXPECTED " + type(value).__name__ + " " + str(value)


def with_pyarrow(root):
    import pyarrow.dataset as ds

    dataset = ds.dataset(f"{root}/audit_log", format="parquet", partitioning="hive")
    table = dataset.to_table()
    types = {f.name: str(f.type) for f in table.schema}
    rows = {}
    for row in table.select(COLUMNS).to_pylist():
        rows[row["record_id"]] = {c: render(row[c]) for c in COLUMNS}
    return {"types": types, "count": table.num_rows, "rows": rows}


def with_duckdb(root):
    import duckdb

    con = duckdb.connect()
    # TIMESTAMPTZ values come back in the session time zone: make that UTC, whatever the machine.
    con.execute("SET TimeZone = 'UTC'")
    source = f"read_parquet('{root}/audit_log/*/*/*.parquet', hive_partitioning = true)"
    types = {
        name: ctype
        for name, ctype, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    }
    result = con.execute(f"SELECT {', '.join(COLUMNS)} FROM {source}").fetchall()
    rows = {}
    for values in result:
        row = dict(zip(COLUMNS, values))
        rows[row["record_id"]] = {c: render(row[c]) for c in COLUMNS}
    (count,) = con.execute(f"SELECT count(*) FROM {source}").fetchone()
    return {"types": types, "count": count, "rows": rows}


def main():
    root = sys.argv[1]
    try:
        import duckdb
        import pyarrow
    except ImportError as e:
        print(f"MISSING {e}", flush=True)
        return 3
    out = {
        "versions": {"pyarrow": pyarrow.__version__, "duckdb": duckdb.__version__},
        "pyarrow": with_pyarrow(root),
        "duckdb": with_duckdb(root),
    }
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
