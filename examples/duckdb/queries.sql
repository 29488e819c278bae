-- The genai-audit store read directly by DuckDB. Run from the directory that holds
-- genai-audit-data/ (see README.md):   duckdb < examples/duckdb/queries.sql
-- or, with the Python package:         python3 examples/duckdb/run.py

-- The audit log: every Parquet file, with the partition columns tenant (text) and dt (date).
CREATE OR REPLACE VIEW audit_log AS
SELECT *
FROM read_parquet('genai-audit-data/audit_log/*/*/*.parquet', hive_partitioning = true);

-- Calls, tokens and exact cost per tenant, day and model (provider calls only: wrapper spans
-- never carry tokens or cost, so nothing is counted twice).
SELECT tenant, dt, provider, response_model,
       count(*) AS calls,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(total_cost_usd) AS cost_usd,
       count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_calls
FROM audit_log
WHERE span_kind IN ('llm_call', 'embeddings')
GROUP BY ALL
ORDER BY tenant, dt, cost_usd DESC NULLS LAST, response_model;

-- Calls whose prompt or response contained personal data, by type.
SELECT pii_type, count(*) AS calls
FROM (SELECT unnest(pii_types) AS pii_type FROM audit_log WHERE pii_detected)
GROUP BY ALL
ORDER BY calls DESC, pii_type;

-- Everything recorded about one end user (a data subject access request), newest first.
SELECT start_time, service_name, provider, response_model, status, pii_types, retention_until
FROM audit_log
WHERE user_id = 'user-7f3a9c'
ORDER BY start_time DESC;
