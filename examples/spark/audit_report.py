#!/usr/bin/env python3
"""Cost and PII report over a genai-audit store with PySpark, reading exactly the committed files.

Usage:
  spark-submit examples/spark/audit_report.py STORE
  STORE: a local directory (./genai-audit-data) or an s3a://bucket/prefix URL (configure the
  hadoop-aws connector and credentials as usual for your cluster).

Spark could read the whole `audit_log/` directory (it discovers the tenant= and dt=
partitions), but a directory listing can include a file of an interrupted flush or files a
compaction replaced. This script reads the commit manifests (`_manifest/<collector>/<n>.json`,
small JSON files) and loads only the files they list as live: the same set `genai-audit query`
sees.
"""

import json
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def live_files(spark, store):
    """Keys of the committed files: every commit's `added` minus every commit's `removed`."""
    manifests = spark.sparkContext.wholeTextFiles(f"{store}/_manifest/*/*.json").values().collect()
    added, removed = set(), set()
    for text in manifests:
        commit = json.loads(text)
        added.update(f["key"] for f in commit.get("added", []))
        removed.update(commit.get("removed", []))
    return sorted(f"{store}/{key}" for key in added - removed)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    store = sys.argv[1].rstrip("/")
    spark = SparkSession.builder.appName("genai-audit-report").getOrCreate()
    files = live_files(spark, store)
    if not files:
        sys.exit(f"no committed files under {store}")
    # basePath keeps tenant and dt as partition columns of every file.
    log = spark.read.option("basePath", f"{store}/audit_log").parquet(*files)

    calls = log.where(F.col("span_kind").isin("llm_call", "embeddings"))
    (
        calls.groupBy("tenant", "dt", "provider", "response_model")
        .agg(
            F.count("*").alias("calls"),
            F.sum("input_tokens").alias("input_tokens"),
            F.sum("output_tokens").alias("output_tokens"),
            F.sum("total_cost_usd").alias("cost_usd"),
        )
        .orderBy("tenant", "dt", F.desc_nulls_last("cost_usd"))
        .show(truncate=False)
    )
    (
        log.where("pii_detected")
        .select(F.explode("pii_types").alias("pii_type"))
        .groupBy("pii_type")
        .count()
        .orderBy(F.desc("count"))
        .show(truncate=False)
    )
    spark.stop()


if __name__ == "__main__":
    main()
