"""DuckDB side of the `scale` benchmark (crates/query/benches/scale): runs the workloads it is
given on stdin over the same Parquet files and prints timings as JSON on stdout.

Input: {"files": [...], "runs": N, "threads": T or null,
        "workloads": [{"name": ..., "calls": SQL or null, "statements": [SQL, ...]}]}
Output: {name: {"cold_ms": x, "warm_ms": [x, ...], "rows": n, "first": "text"}}

`audit_log` is a view over exactly the committed files listed (hive partitioning gives the
`tenant` and `dt` columns, as in genai-audit). Cold-ish = a fresh connection's first run (the
OS page cache is not dropped); warm = the runs after it on the same connection.
"""

import json
import sys
import time

import duckdb


def connect(files, threads):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(
        f"CREATE VIEW audit_log AS SELECT * FROM read_parquet([{listing}], hive_partitioning = true)"
    )
    return con


def run(con, workload):
    """Runs one workload; returns (seconds, rows of the last statement, its first value)."""
    start = time.perf_counter()
    if workload["calls"]:
        con.execute("CREATE OR REPLACE TEMP TABLE calls AS " + workload["calls"])
    rows = []
    for sql in workload["statements"]:
        rows = con.execute(sql).fetchall()
    elapsed = time.perf_counter() - start
    first = str(rows[0][0]) if rows and rows[0] else ""
    return elapsed, len(rows), first


def main():
    job = json.load(sys.stdin)
    out = {}
    for w in job["workloads"]:
        con = connect(job["files"], job.get("threads"))
        cold, rows, first = run(con, w)
        warm = [run(con, w)[0] * 1000 for _ in range(job["runs"])]
        con.close()
        out[w["name"]] = {"cold_ms": cold * 1000, "warm_ms": warm, "rows": rows, "first": first}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
