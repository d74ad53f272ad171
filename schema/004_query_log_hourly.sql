-- The old continuous aggregate, as an ordinary materialized view (refresh it after loading
-- query_log; the migration does). The unique index allows REFRESH ... CONCURRENTLY.
CREATE MATERIALIZED VIEW rag.query_log_hourly AS
SELECT date_trunc('hour', ts) AS bucket,
       collection_id,
       count(*) AS queries,
       avg(latency_ms) AS avg_latency_ms,
       max(latency_ms) AS max_latency_ms
FROM rag.query_log
GROUP BY 1, 2
WITH NO DATA;
CREATE UNIQUE INDEX query_log_hourly_bucket_idx ON rag.query_log_hourly (bucket, collection_id);
