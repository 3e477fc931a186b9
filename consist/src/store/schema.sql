-- The provenance schema shared with Python Consist 0.3.5 (same tables, columns, types and index
-- names), so its CLI and users' notebooks can read our database and we can read theirs.
CREATE TABLE IF NOT EXISTS run(id VARCHAR, parent_run_id VARCHAR, status VARCHAR NOT NULL, model_name VARCHAR NOT NULL, description VARCHAR, "year" INTEGER, iteration INTEGER, stage VARCHAR, phase VARCHAR, tags JSON, config_hash VARCHAR, git_hash VARCHAR, input_hash VARCHAR, signature VARCHAR, meta JSON, started_at TIMESTAMP WITH TIME ZONE NOT NULL, ended_at TIMESTAMP WITH TIME ZONE, created_at TIMESTAMP WITH TIME ZONE NOT NULL, updated_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY(id));
CREATE TABLE IF NOT EXISTS artifact(id VARCHAR, "key" VARCHAR NOT NULL, container_uri VARCHAR NOT NULL, table_path VARCHAR, array_path VARCHAR, driver VARCHAR NOT NULL, hash VARCHAR, content_id VARCHAR, parent_artifact_id VARCHAR, run_id VARCHAR, meta JSON, created_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY(id));
CREATE TABLE IF NOT EXISTS run_artifact_link(run_id VARCHAR, artifact_id VARCHAR, direction VARCHAR NOT NULL, is_implicit BOOLEAN NOT NULL, PRIMARY KEY(run_id, artifact_id));
CREATE TABLE IF NOT EXISTS artifact_content(id VARCHAR, content_hash VARCHAR NOT NULL, driver VARCHAR NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, meta JSON, PRIMARY KEY(id), UNIQUE(content_hash, driver));
CREATE TABLE IF NOT EXISTS config_facet(id VARCHAR, namespace VARCHAR NOT NULL, schema_name VARCHAR NOT NULL, schema_version VARCHAR, "json" JSON, created_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY(id));
CREATE TABLE IF NOT EXISTS run_config_kv(run_id VARCHAR, facet_id VARCHAR, namespace VARCHAR, "key" VARCHAR, value_type VARCHAR NOT NULL, value_str VARCHAR, value_num FLOAT, value_bool BOOLEAN, value_json JSON, created_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY(run_id, facet_id, namespace, "key"));
CREATE INDEX IF NOT EXISTS ix_run_signature ON run(signature);
CREATE INDEX IF NOT EXISTS ix_run_model_name ON run(model_name);
CREATE INDEX IF NOT EXISTS ix_run_parent_run_id ON run(parent_run_id);
CREATE INDEX IF NOT EXISTS ix_run_status ON run(status);
CREATE INDEX IF NOT EXISTS ix_run_config_hash ON run(config_hash);
CREATE INDEX IF NOT EXISTS ix_run_input_hash ON run(input_hash);
CREATE INDEX IF NOT EXISTS ix_run_iteration ON run(iteration);
CREATE INDEX IF NOT EXISTS ix_run_year ON run("year");
CREATE INDEX IF NOT EXISTS ix_artifact_key ON artifact("key");
CREATE INDEX IF NOT EXISTS ix_artifact_run_id ON artifact(run_id);
CREATE INDEX IF NOT EXISTS ix_artifact_hash ON artifact(hash);
CREATE INDEX IF NOT EXISTS ix_artifact_content_id ON artifact(content_id);
CREATE INDEX IF NOT EXISTS ix_config_facet_namespace ON config_facet(namespace);
CREATE INDEX IF NOT EXISTS ix_run_config_kv_run_id ON run_config_kv(run_id);
CREATE INDEX IF NOT EXISTS ix_run_config_kv_key ON run_config_kv("key");
