//! SQL that every backend runs verbatim on the shared schema: the purge plan and its deletes,
//! the referential checks of `db inspect`, and the runs of a lineage. Each backend creates the purge's temporary tables
//! its own way (`consist_purge_run`, filled with the runs to remove, and `consist_purge_artifact`,
//! `consist_purge_content`, `consist_purge_facet`, empty, each with one `id` column).

/// Select what a purge removes: the artifacts no remaining run links, their content rows, and
/// the config and facet rows only the purged runs used (so nothing unrelated that happens to be
/// unreferenced, such as rows another tool wrote, is touched).
pub(super) const PURGE_PLAN: &str = r#"
INSERT INTO consist_purge_artifact
  SELECT DISTINCT l.artifact_id FROM run_artifact_link l
  WHERE l.run_id IN (SELECT id FROM consist_purge_run)
    AND NOT EXISTS (SELECT 1 FROM run_artifact_link o
                    WHERE o.artifact_id = l.artifact_id AND o.run_id NOT IN (SELECT id FROM consist_purge_run));
INSERT INTO consist_purge_content
  SELECT DISTINCT content_id FROM artifact
  WHERE id IN (SELECT id FROM consist_purge_artifact) AND content_id IS NOT NULL;
INSERT INTO consist_purge_facet
  SELECT DISTINCT 'config:' || config_hash FROM run WHERE id IN (SELECT id FROM consist_purge_run)
  UNION SELECT DISTINCT facet_id FROM run_config_kv WHERE run_id IN (SELECT id FROM consist_purge_run);
"#;

/// Delete what the plan selected; shared rows go only when no remaining row refers to them.
pub(super) const PURGE_DELETE: &str = r#"
DELETE FROM run_artifact_link WHERE run_id IN (SELECT id FROM consist_purge_run);
DELETE FROM run_config_kv WHERE run_id IN (SELECT id FROM consist_purge_run);
DELETE FROM run WHERE id IN (SELECT id FROM consist_purge_run);
DELETE FROM artifact WHERE id IN (SELECT id FROM consist_purge_artifact);
DELETE FROM artifact_content c WHERE c.id IN (SELECT id FROM consist_purge_content)
  AND NOT EXISTS (SELECT 1 FROM artifact a WHERE a.content_id = c.id);
DELETE FROM config_facet f WHERE f.id IN (SELECT id FROM consist_purge_facet)
  AND NOT EXISTS (SELECT 1 FROM run r WHERE 'config:' || r.config_hash = f.id)
  AND NOT EXISTS (SELECT 1 FROM run_config_kv k WHERE k.facet_id = f.id);
"#;

/// Record the runs a purge removes (before their rows go, for their signatures) and raise the
/// catalog's purge epoch, so every host sees the purge (see `consist_catalog`).
pub(super) const PURGE_RECORD: &str = r#"
INSERT INTO consist_purged(run_id, signature, purged_at)
  SELECT p.id, r.signature, now() FROM consist_purge_run p LEFT JOIN run r ON r.id = p.id
  WHERE NOT EXISTS (SELECT 1 FROM consist_purged x WHERE x.run_id = p.id);
UPDATE consist_catalog SET purge_epoch = purge_epoch + 1;
"#;

/// Every output link, as `(run id, artifact id)`.
pub(super) const OUTPUT_LINKS: &str = "SELECT run_id, artifact_id FROM run_artifact_link WHERE direction = 'output'";

/// Set one key of one run's `meta` from a JSON merge patch (`{"key": value}`, `null` removes).
pub(super) const PATCH_META: &str =
    "UPDATE run SET meta = json_merge_patch(coalesce(meta, '{}'), ?), updated_at = now() WHERE id = ?";

/// Raise the purge epoch: runs left the catalog (a rebuild removed runs whose snapshots are gone,
/// `--replace-all` replaced everything), so every host asks again before serving a source.
pub(super) const RAISE_EPOCH: &str = "UPDATE consist_catalog SET purge_epoch = purge_epoch + 1;";

/// The runs among the parameter's ids (a list) that the catalog holds as finished: a rebuild
/// never writes an older `running` snapshot over them (the run finished while it read).
pub(super) const FINISHED_AMONG: &str = "SELECT id FROM run WHERE status <> 'running' AND id IN ";

/// Drop the staged rows of purged runs before a batch is merged: a host's queue, a rebuild or an
/// old tracker still running never writes a purged run back (a merge forgets the purge first,
/// deliberately). PostgreSQL runs it on its staging tables; DuckDB leaves purged runs out as it
/// reads what the catalog holds (`store/duckdb/batch.rs`).
pub(super) const DROP_PURGED: &str = r#"
DELETE FROM consist_stage_link WHERE run_id IN (SELECT run_id FROM consist_purged);
DELETE FROM consist_stage_kv WHERE run_id IN (SELECT run_id FROM consist_purged);
DELETE FROM consist_stage_run WHERE id IN (SELECT run_id FROM consist_purged);
DELETE FROM consist_stage_artifact WHERE id NOT IN (SELECT artifact_id FROM consist_stage_link);
"#;

/// Artifacts recorded by an absolute path: not `./` (run dir) nor `name://` (mount). Python
/// Consist's own URIs (`inputs://`, `workspace://`) count as portable too.
pub(crate) const NOT_PORTABLE: &str = "SELECT \"key\", container_uri FROM artifact \
     WHERE container_uri NOT LIKE './%' AND container_uri NOT LIKE '%://%' ORDER BY \"key\", container_uri";

/// Counts of orphan artifacts, dangling links and artifacts whose producer is gone.
pub(super) const INTEGRITY_CHECKS: [&str; 3] = [
    "SELECT count(*) FROM artifact a WHERE NOT EXISTS (SELECT 1 FROM run_artifact_link l WHERE l.artifact_id = a.id)",
    "SELECT count(*) FROM run_artifact_link l WHERE NOT EXISTS (SELECT 1 FROM run r WHERE r.id = l.run_id)
       OR NOT EXISTS (SELECT 1 FROM artifact a WHERE a.id = l.artifact_id)",
    "SELECT count(*) FROM artifact a WHERE a.run_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM run r WHERE r.id = a.run_id)",
];

/// The `RunQuery::input` filter of a `find_runs` over `run`, its key bound to `?` (PostgreSQL
/// puts its own placeholder there).
pub(super) const READS_KEY: &str = r#" AND EXISTS (SELECT 1 FROM run_artifact_link l JOIN artifact a ON a.id = l.artifact_id
    WHERE l.run_id = run.id AND l.direction = 'input' AND a."key" = ?)"#;

/// The artifact a key names, with `$1` bound to the key and `columns` over table alias `a`: the
/// output under that key of the completed run that started last (a cache hit's run included, so
/// after an all-hit rerun it is what that rerun returned, not the newest file written; a failed
/// run's outputs never), else, when `inputs_too`, the newest raw input file with that key (an
/// artifact no run produced).
pub(super) fn artifact_by_key(columns: &str, inputs_too: bool) -> String {
    let output = format!(
        r#"(SELECT {columns}, 1 AS rank FROM run_artifact_link l JOIN artifact a ON a.id = l.artifact_id
   JOIN run r ON r.id = l.run_id
   WHERE a."key" = $1 AND l.direction = 'output' AND r.status = 'completed' ORDER BY r.started_at DESC, r.id DESC LIMIT 1)"#
    );
    if !inputs_too {
        return output;
    }
    format!(
        r#"{output}
   UNION ALL (SELECT {columns}, 2 AS rank FROM artifact a WHERE a."key" = $1 AND a.run_id IS NULL
   ORDER BY a.created_at DESC, a.id DESC LIMIT 1)"#
    )
}

/// An artifact by its exact id, else by key as [`artifact_by_key`] finds it, else by the start
/// of an id; `$1` is the id, key or prefix. A key comes before a prefix: a key made of hex
/// digits (`2020`, `cafe`) is not taken for the start of some artifact's id. The first of these
/// that exists, by an explicit rank (a `UNION ALL`'s order is not guaranteed).
pub(super) fn artifact_by_id_or_key(columns: &str) -> String {
    format!(
        r#"SELECT * FROM ((SELECT {columns}, 0 AS rank FROM artifact a WHERE a.id = $1 LIMIT 1)
   UNION ALL {}
   UNION ALL (SELECT {columns}, 3 AS rank FROM artifact a WHERE starts_with(a.id, $1) ORDER BY a.id LIMIT 1))
   AS found ORDER BY rank LIMIT 1"#,
        artifact_by_key(columns, true)
    )
}

/// A recursive CTE `up(run_id, depth)`: the runs in the lineage of the artifact whose id is bound
/// to `id_param` (`?` or `$1`), at most `max_depth` producing-run levels up (its producer is level
/// 1, the producers of that run's inputs level 2...). One query for any depth; a cycle a damaged
/// catalog might hold ends at `max_depth`.
pub(super) fn lineage_runs(id_param: &str, max_depth: usize) -> String {
    let max = max_depth.min(i32::MAX as usize);
    format!(
        r#"WITH RECURSIVE up(run_id, depth) AS (
  SELECT a.run_id, 1 FROM artifact a WHERE a.id = {id_param} AND a.run_id IS NOT NULL AND {max} >= 1
  UNION
  SELECT i.run_id, up.depth + 1 FROM up
  JOIN run_artifact_link l ON l.run_id = up.run_id AND l.direction = 'input'
  JOIN artifact i ON i.id = l.artifact_id
  WHERE i.run_id IS NOT NULL AND up.depth < {max}
)
"#
    )
}

/// Where a backend's SQL differs in [`run_filter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// DuckDB: `?` parameters, `CAST(.. AS VARCHAR)`, JSON paths.
    DuckDb,
    /// PostgreSQL: `$n` parameters, `::text`, `->>`.
    Postgres,
}

/// The `AND ...` conditions of a `find_runs` over table `run` for `query`'s filters (order, offset
/// and limit are the caller's), with the text parameters they bind, in order. Both backends
/// build their queries here, so a filter means the same on each.
pub(super) fn run_filter(query: &super::RunQuery, dialect: Dialect) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut args: Vec<String> = Vec::new();
    let mut arg = |value: String| {
        args.push(value);
        match dialect {
            Dialect::DuckDb => "?".to_owned(),
            Dialect::Postgres => format!("${}", args.len()),
        }
    };
    let text = |column: &str| match dialect {
        Dialect::DuckDb => format!("CAST({column} AS VARCHAR)"),
        Dialect::Postgres => format!("{column}::text"),
    };
    if let Some(prefix) = &query.id_prefix {
        sql.push_str(&format!(" AND starts_with(id, {})", arg(prefix.clone())));
    }
    if !query.ids.is_empty() {
        let list: Vec<String> = query.ids.iter().map(|id| arg(id.clone())).collect();
        sql.push_str(&format!(" AND id IN ({})", list.join(", ")));
    }
    if let Some(i) = query.iteration {
        sql.push_str(&format!(" AND iteration = {i}"));
    }
    for (column, value) in [
        ("model_name", query.model.clone()),
        ("status", query.status.map(|s| s.as_str().to_owned())),
        ("signature", query.signature.clone()),
        ("parent_run_id", query.parent.clone()),
    ] {
        if let Some(v) = value {
            sql.push_str(&format!(" AND {column} = {}", arg(v)));
        }
    }
    for tag in &query.tags {
        let tag = arg(tag.clone());
        sql.push_str(&match dialect {
            Dialect::DuckDb => format!(r#" AND list_contains(from_json(tags, '["VARCHAR"]'), {tag})"#),
            Dialect::Postgres => {
                format!(" AND EXISTS (SELECT 1 FROM json_array_elements_text(tags) t WHERE t = {tag})")
            }
        });
    }
    for (key, value) in &query.facets {
        let (key, value) = (arg(key.clone()), arg(value.to_string()));
        sql.push_str(&format!(
            r#" AND EXISTS (SELECT 1 FROM run_config_kv kv WHERE kv.run_id = run.id AND kv."key" = {key}
                AND {} = {value})"#,
            text("kv.value_json")
        ));
    }
    if let Some(key) = &query.input {
        sql.push_str(&READS_KEY.replace('?', &arg(key.clone())));
    }
    if let Some(hit) = query.cache_hit {
        let flag = match dialect {
            Dialect::DuckDb => "meta->>'$.cache_hit'",
            Dialect::Postgres => concat!(pg_meta!(""), "->>'cache_hit'"),
        };
        sql.push_str(&format!(" AND coalesce({flag}, 'false') {} 'true'", if hit { "=" } else { "<>" }));
    }
    if let Some(needle) = &query.text {
        // The configs are searched once, as a set (a catalog holds far fewer configs than runs),
        // not looked up run by run: on PostgreSQL at 100,000 runs that was 1.05 s against 0.10.
        let (in_run, in_config) = (arg(needle.clone()), arg(needle.clone()));
        sql.push_str(&format!(
            r#" AND (strpos(lower(id || ' ' || model_name || ' ' || coalesce({}, '') || ' ' || coalesce(description, '')),
                lower({in_run})) > 0
              OR ('{}' || run.config_hash) IN (SELECT f.id FROM config_facet f WHERE strpos(lower({}), lower({in_config})) > 0))"#,
            text("tags"),
            crate::store::rows::config_id(""),
            text(r#"f."json""#)
        ));
    }
    (sql, args)
}

/// [`RunQuery`](super::RunQuery)'s order, offset and limit as SQL.
pub(super) fn run_page(query: &super::RunQuery, dialect: Dialect) -> String {
    // DuckDB subtracts time-zoned timestamps only with its ICU extension, which may be absent.
    let (duration, bytes) = match dialect {
        Dialect::DuckDb => ("(epoch_us(ended_at) - epoch_us(started_at))", ""),
        Dialect::Postgres => ("(ended_at - started_at)", r#" COLLATE "C""#),
    };
    let mut sql = format!(" ORDER BY {}", query.order.sql(duration, bytes));
    if let Some(limit) = query.limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    if query.offset > 0 {
        sql.push_str(&format!(" OFFSET {}", query.offset));
    }
    sql
}

/// The runs around a start, upstream and downstream, with their hop distance: `run_id` and
/// `hops` (negative upstream, positive downstream, 0 the start run). `$1` is a run id (the start,
/// 0 hops) when `from_artifact` is false, else an artifact id (its producer is -1 hop, the runs
/// that read it +1). At most `up` hops upstream (through inputs' producers) and `down` hops
/// downstream (through the runs that read an output); one query for any depth, and a cycle a
/// damaged catalog might hold ends at the bound.
pub(super) fn neighbourhood(from_artifact: bool, up: usize, down: usize) -> String {
    let (up, down) = (up.min(i32::MAX as usize), down.min(i32::MAX as usize));
    let (up_start, down_start) = if from_artifact {
        (
            format!("SELECT a.run_id, 1 FROM artifact a WHERE a.id = $1 AND a.run_id IS NOT NULL AND {up} >= 1"),
            format!(
                "SELECT l.run_id, 1 FROM run_artifact_link l WHERE l.artifact_id = $1 AND l.direction = 'input' AND {down} >= 1"
            ),
        )
    } else {
        ("SELECT id, 0 FROM run WHERE id = $1".to_owned(), "SELECT id, 0 FROM run WHERE id = $1".to_owned())
    };
    format!(
        r#"WITH RECURSIVE up(run_id, depth) AS (
  {up_start}
  UNION
  SELECT i.run_id, up.depth + 1 FROM up
  JOIN run_artifact_link l ON l.run_id = up.run_id AND l.direction = 'input'
  JOIN artifact i ON i.id = l.artifact_id
  WHERE i.run_id IS NOT NULL AND up.depth < {up}
), down(run_id, depth) AS (
  {down_start}
  UNION
  SELECT c.run_id, down.depth + 1 FROM down
  JOIN run_artifact_link o ON o.run_id = down.run_id AND o.direction = 'output'
  JOIN run_artifact_link c ON c.artifact_id = o.artifact_id AND c.direction = 'input'
  WHERE down.depth < {down}
)
SELECT run_id, CAST(-min(depth) AS BIGINT) FROM up GROUP BY run_id
UNION ALL SELECT run_id, CAST(min(depth) AS BIGINT) FROM down WHERE depth > 0 GROUP BY run_id"#
    )
}
