#!/usr/bin/env python3
"""Runs queries.sql (beside this file) with the duckdb Python package and prints every result.

Usage: python3 examples/duckdb/run.py [STORE_PARENT_DIR] [--json]

STORE_PARENT_DIR is the directory holding genai-audit-data/ (default: the current directory).
With --json, each statement's rows are printed as one JSON array per line (for tests).
"""

import json
import os
import sys
from pathlib import Path

try:
    import duckdb
except ImportError:
    sys.exit("duckdb is not installed: python3 -m pip install duckdb")


def statements(sql):
    """The statements of a script: split on `;` at line ends, comments dropped."""
    out, cur = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(cur).strip()
            if stmt.strip(";").strip():
                out.append(stmt)
            cur = []
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    as_json = "--json" in sys.argv[1:]
    sql = (Path(__file__).resolve().parent / "queries.sql").read_text()
    if args:
        os.chdir(args[0])
    con = duckdb.connect()
    for stmt in statements(sql):
        cur = con.execute(stmt)
        if not stmt.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
        if as_json:
            print(json.dumps([dict(zip(cols, r)) for r in rows], default=str))
        else:
            print(" | ".join(cols))
            for r in rows:
                print(" | ".join("NULL" if v is None else str(v) for v in r))
            print()


if __name__ == "__main__":
    main()
