-- Shared-catalog state (tables Python Consist ignores): the catalog's own id, made once when the
-- catalog is created, and its purge epoch, which every purge raises; the runs purged, so no
-- host's queue writes one back; leases, by which hosts share one execution of a signature and
-- tell live runs from dead ones (PostgreSQL; a DuckDB catalog uses lock files beside it).
CREATE TABLE IF NOT EXISTS consist_catalog(id VARCHAR PRIMARY KEY, created_at TIMESTAMP WITH TIME ZONE NOT NULL, purge_epoch BIGINT NOT NULL);
INSERT INTO consist_catalog(id, created_at, purge_epoch) SELECT CAST(gen_random_uuid() AS VARCHAR), now(), 0 WHERE NOT EXISTS (SELECT 1 FROM consist_catalog);
CREATE TABLE IF NOT EXISTS consist_purged(run_id VARCHAR PRIMARY KEY, signature VARCHAR, purged_at TIMESTAMP WITH TIME ZONE NOT NULL);
CREATE TABLE IF NOT EXISTS consist_lease(name VARCHAR PRIMARY KEY, holder VARCHAR NOT NULL, run_id VARCHAR, host VARCHAR, expires_at TIMESTAMP WITH TIME ZONE NOT NULL);
