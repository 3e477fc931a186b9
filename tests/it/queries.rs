//! Queries over recorded provenance: latest artifact by key, lineage trees, validation, copies.

use consist::{Error, Validation, Value, step};

use crate::support::{Counter, Workspace};

#[step(outputs = ["cleaned"])]
fn clean(#[consist(input)] raw: &[i64], threshold: i64) -> Vec<i64> {
    raw.iter().copied().filter(|v| *v >= threshold).collect()
}

#[step(outputs = ["total"])]
fn total(#[consist(input)] cleaned: &[i64]) -> i64 {
    cleaned.iter().sum()
}

/// raw (a value produced by `load`) -> clean -> total; returns the `total` artifact id.
fn chain(tracker: &consist::Tracker) -> String {
    let raw = tracker.step("load").code_version("1").outputs(["raw"]).run(|_| Ok(Value(vec![10i64, 20, 30]))).unwrap();
    let cleaned = tracker.run(clean::step(raw.output("raw").unwrap(), 15)).unwrap();
    let sum = tracker.run(total::step(cleaned.output("cleaned").unwrap())).unwrap();
    assert_eq!(*sum.value().unwrap(), 50);
    sum.output("total").unwrap().id.clone()
}

#[test]
fn lineage_walks_producers_and_inputs_to_the_depth_asked() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let total_id = chain(&tracker);

    let full = tracker.artifact_lineage(&total_id, 10).unwrap();
    assert_eq!(full.depth(), 3, "total <- total run <- cleaned <- clean run <- raw <- load run");
    let total_run = full.producer.as_ref().unwrap();
    assert_eq!(total_run.run.model_name, "total");
    let cleaned = &total_run.inputs[0];
    assert_eq!(cleaned.artifact.key, "cleaned");
    let clean_run = cleaned.producer.as_ref().unwrap();
    assert_eq!(clean_run.run.model_name, "clean");
    assert_eq!(clean_run.inputs[0].artifact.key, "raw");
    assert_eq!(clean_run.inputs[0].producer.as_ref().unwrap().run.model_name, "load");
    let text = full.render();
    assert!(text.contains("└── clean run=clean_") && text.contains("raw ("), "{text}");

    let shallow = tracker.artifact_lineage(&total_id, 1).unwrap();
    assert_eq!(shallow.depth(), 1);
    assert!(shallow.producer.as_ref().unwrap().inputs[0].producer.is_none());
    let alone = tracker.artifact_lineage(&total_id, 0).unwrap();
    assert!(alone.producer.is_none(), "max_depth 0 is the artifact alone");

    let missing = tracker.artifact_lineage("no-such-id", 3).unwrap_err();
    assert!(matches!(missing, Error::ArtifactNotFound(ref id) if id == "no-such-id"), "{missing}");
}

#[test]
fn get_artifact_and_lineage_by_key_name_what_the_latest_run_returned() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    assert!(tracker.get_artifact("total").unwrap().is_none());
    let first = chain(&tracker);
    assert_eq!(tracker.get_artifact("total").unwrap().unwrap().id, first);
    let raw = tracker.step("load").code_version("2").outputs(["raw"]).run(|_| Ok(Value(vec![1i64]))).unwrap();
    let cleaned = tracker.run(clean::step(raw.output("raw").unwrap(), 0)).unwrap();
    let newer = tracker.run(total::step(cleaned.output("cleaned").unwrap())).unwrap();
    assert_eq!(tracker.get_artifact("total").unwrap().unwrap().id, newer.output("total").unwrap().id);
    // The first experiment again, all hits: its artifacts are older than `newer`'s, and they are
    // what the latest run returned, so a key names them (not the newest file written).
    assert_eq!(chain(&tracker), first);
    assert_eq!(tracker.get_artifact("total").unwrap().unwrap().id, first);
    assert_eq!(tracker.artifact_lineage("total", 0).unwrap().artifact.id, first);
    // A failed run's outputs are never what a key names.
    let failed = tracker.step("total").code_version("broken").outputs(["total"]).run(|ctx| {
        ctx.log_value("total", &-1i64)?;
        Err::<(), _>("the solver did not converge".into())
    });
    assert!(failed.is_err());
    assert_eq!(tracker.get_artifact("total").unwrap().unwrap().id, first);
    assert_eq!(tracker.artifact_lineage("total", 0).unwrap().artifact.id, first);
}

#[test]
fn both_validations_reexecute_when_an_output_was_modified() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let runs = Counter::default();
    let run = |validation| {
        tracker
            .step("report")
            .code_version("1")
            .validation(validation)
            .outputs(["report"])
            .run(|ctx| {
                runs.hit();
                let p = ctx.output_dir()?.join("report.txt");
                std::fs::write(&p, "original")?;
                Ok(p)
            })
            .unwrap()
    };
    let first = run(Validation::Eager);
    std::fs::write(first.value().unwrap(), "edited by hand").unwrap();
    let lazy = run(Validation::Lazy);
    assert!(!lazy.cache_hit(), "lazy sees the stat changed, hashes again and sees the bytes changed");
    assert_eq!(std::fs::read_to_string(lazy.value().unwrap()).unwrap(), "original");
    assert!(run(Validation::Lazy).cache_hit(), "the regenerated output is the cache entry");
    std::fs::write(lazy.value().unwrap(), "edited again").unwrap();
    let eager = run(Validation::Eager);
    assert!(!eager.cache_hit(), "eager sees the bytes changed");
    assert_eq!(std::fs::read_to_string(eager.value().unwrap()).unwrap(), "original");
    std::fs::remove_file(eager.value().unwrap()).unwrap();
    assert!(!run(Validation::Eager).cache_hit(), "eager sees the file gone");
    assert_eq!(runs.get(), 4);
}

#[test]
fn materialize_copies_cached_outputs_and_checks_them() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let r = tracker.step("v").code_version("1").outputs(["v"]).run(|_| Ok(Value(7u8))).unwrap();
    let art = r.output("v").unwrap().clone();
    let copied = tracker.materialize(std::slice::from_ref(&art), &ws.path().join("elsewhere")).unwrap();
    assert_eq!(std::fs::read(&copied[0]).unwrap(), std::fs::read(&art.path).unwrap());
    let good = std::fs::read(&copied[0]).unwrap();
    // Two artifacts that would land on one file name: refused before anything is copied.
    let other = tracker.step("v").code_version("2").outputs(["v"]).run(|_| Ok(Value(8u8))).unwrap();
    let both = [art.clone(), other.output("v").unwrap().clone()];
    let err = tracker.materialize(&both, &ws.path().join("both")).unwrap_err().to_string();
    assert!(err.contains("would both be materialized as"), "{err}");
    assert!(!ws.path().join("both/v.bin").exists());
    // A tampered file is an error, and never replaces a good copy.
    std::fs::write(&art.path, b"tampered").unwrap();
    let err = tracker.materialize(&[art], &ws.path().join("elsewhere")).unwrap_err().to_string();
    assert!(err.contains("changed since they were recorded"), "{err}");
    assert_eq!(std::fs::read(&copied[0]).unwrap(), good, "the earlier copy is intact");
    let leftovers: Vec<_> =
        std::fs::read_dir(ws.path().join("elsewhere")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
}

#[test]
fn the_catalog_answers_summary_scenarios_inspect_and_validate() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let (up, down) = (Counter::default(), Counter::default());
    let sc = tracker.scenario("beta=0.3").start().unwrap();
    crate::support::clean_and_summarize(&tracker, 1, &up, &down);
    let (cleaned, _) = crate::support::clean_and_summarize(&tracker, 1, &up, &down);
    sc.finish().unwrap();
    tracker.flush().unwrap();
    let catalog = consist::Catalog::duckdb(ws.db(), std::time::Duration::from_secs(5));

    let summary = catalog.summary().unwrap();
    assert_eq!((summary.runs, summary.completed, summary.cache_hits, summary.scenarios), (5, 5, 2, 1));
    assert_eq!(summary.cache_hit_ratio, Some(0.5), "2 hits among 4 completed step runs");
    assert_eq!(
        summary.models.iter().map(|m| (m.model.as_str(), m.runs)).collect::<Vec<_>>(),
        [("clean", 2), ("summarize", 2), ("beta=0.3", 1)]
    );
    let scenarios = catalog.scenarios(10).unwrap();
    assert_eq!((scenarios.len(), scenarios[0].name.as_str()), (1, "beta=0.3"));

    let inspection = catalog.inspect().unwrap();
    assert_eq!(inspection.tables[0], ("run".to_owned(), 5));
    assert_eq!((inspection.orphan_artifacts, inspection.dangling_links, inspection.pending), (0, 0, 0));

    assert_eq!(catalog.validate(false).unwrap().problems, []);

    let file = &cleaned.output("cleaned").unwrap().path;
    std::fs::write(file, b"tampered").unwrap();
    let report = catalog.validate(false).unwrap();
    assert_eq!(report.checked, 2);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(
        (report.problems[0].key.as_str(), report.problems[0].problem),
        ("cleaned", consist::admin::FileProblem::Modified)
    );
    assert_eq!(catalog.validate(true).unwrap().problems, [], "exists-only does not hash");
    std::fs::remove_file(file).unwrap();
    assert_eq!(catalog.validate(true).unwrap().problems[0].problem, consist::admin::FileProblem::Missing);

    // Read-only SQL with per-key views, and previews: answered by the library.
    for day in 0..3 {
        tracker
            .step("frame")
            .code_version("1")
            .config(&day)
            .outputs(["zones"])
            .run(|_| {
                use consist::polars::prelude::*;
                Ok(df!("zone" => [1, 2, 3], "day" => [day; 3])?)
            })
            .unwrap();
    }
    tracker.flush().unwrap();
    let views = catalog.artifact_views().unwrap();
    let view = views.iter().find(|v| v.key == "zones").expect("a view per Parquet key");
    assert_eq!((view.view.as_str(), view.missing), ("zones", 0));
    let (artifact, preview) = catalog.preview("zones", 2).unwrap();
    assert_eq!((artifact.key.as_str(), preview.columns.clone()), ("zones", vec!["zone".to_owned(), "day".to_owned()]));
    assert_eq!(preview.rows.len(), 2);
    let per_run = catalog.query("SELECT consist_run_id, count(*) AS n FROM zones GROUP BY 1").unwrap();
    assert_eq!(per_run.columns, ["consist_run_id", "n"]);
    assert_eq!((per_run.rows.len(), view.runs), (3, 3), "one group per producing run");
    assert!(per_run.rows.iter().all(|r| r[1] == 3), "{per_run:?}");
    match catalog.query("DELETE FROM run") {
        Err(consist::Error::Query { reason }) => assert!(reason.contains("read-only"), "{reason}"),
        other => panic!("a write must be refused: {other:?}"),
    }
    assert_eq!(catalog.summary().unwrap().runs, 8, "nothing was deleted");
}

#[test]
fn the_catalog_diffs_two_runs_and_explains_a_miss() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let run = |threshold: i64| {
        let raw = tracker.step("load").code_version("1").outputs(["raw"]).run(|_| Ok(Value(vec![10i64, 20]))).unwrap();
        tracker.run(clean::step(raw.output("raw").unwrap(), threshold)).unwrap().run
    };
    let (a, b) = (run(15), run(5));
    tracker.flush().unwrap();
    let catalog = tracker.catalog();
    let diff = catalog.diff_runs(&a.id, &b.id[..12]).unwrap();
    assert!(!diff.same_signature && !diff.code_changed && diff.inputs.is_empty(), "{diff:?}");
    assert_eq!(diff.config.changed["threshold"], [serde_json::json!(15), serde_json::json!(5)]);
    let explained = catalog.explain_run(&b.id).unwrap();
    assert!(!explained.cache_hit);
    assert!(explained.miss.unwrap().summary.contains("config changed: threshold"));
    assert_eq!(explained.diff.map(|d| d.run_a), Some(a.id.clone()));
    let hit = run(15);
    tracker.flush().unwrap();
    let hit = catalog.explain_run(&hit.id).unwrap();
    assert_eq!(hit.cache_source.as_deref(), Some(a.id.as_str()));
}

/// A list input's members differ by their place (`states[1]`), not by their artifacts' own key
/// (`state` for all of them): a diff of two runs reading different lists names the place.
#[test]
fn a_diff_of_list_inputs_names_the_member_that_differs() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let states: Vec<consist::Artifact> = (0..4u8)
        .map(|i| {
            let made = tracker.step("state").code_version("1").config(&i).outputs(["state"]).run(|_| Ok(Value(i)));
            made.unwrap().output("state").unwrap().clone()
        })
        .collect();
    // As `#[step]` records a `Vec<&DataFrame>` parameter `states`.
    let summarize = |picked: [usize; 3]| {
        let step = picked.iter().enumerate().fold(tracker.step("summarize").code_version("1"), |step, (place, &k)| {
            step.input(&format!("states[{place}]"), &states[k])
        });
        step.outputs(["total"]).run(|_| Ok(Value(0u8))).unwrap().run
    };
    let (first, swapped) = (summarize([0, 1, 2]), summarize([0, 2, 1]));
    tracker.flush().unwrap();
    let diff = tracker.catalog().diff_runs(&first.id, &swapped.id).unwrap();
    let changed: Vec<&String> = diff.inputs.changed.keys().collect();
    assert!(!diff.same_signature && changed == ["states[1]", "states[2]"], "{diff:?}");
}

#[test]
fn a_key_made_of_hex_digits_is_a_key_before_it_is_an_id_prefix() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let first = tracker.step("a").code_version("1").outputs(["x"]).run(|_| Ok(Value(1u8))).unwrap();
    let id = first.output("x").unwrap().id.clone();
    let key = id[..4].to_owned();
    let keyed = tracker.step("b").code_version("1").outputs([key.as_str()]).run(|_| Ok(Value(2u8))).unwrap();
    let named = keyed.output(&key).unwrap().id.clone();
    assert_eq!(tracker.artifact_lineage(&key, 0).unwrap().artifact.id, named, "`{key}` is a key here");
    assert_eq!(tracker.artifact_lineage(&id[..12], 0).unwrap().artifact.id, id, "a longer start is still an id");
}

#[test]
fn pages_of_runs_cover_stored_and_pending_runs_once_each_in_any_order() {
    use consist::{RunOrder, RunQuery, RunSort};
    let ws = Workspace::new();
    let tracker = ws.tracker();
    for value in 0..6 {
        crate::support::square(&tracker, value, || {});
    }
    drop(tracker);
    // Hits that wait in the pending queue, not in the file: the listing merges them.
    let deferring = consist::Tracker::builder(ws.run_dir()).db_path(ws.db()).defer_hit_writes(true).open().unwrap();
    for value in [0, 2, 4] {
        assert!(crate::support::square(&deferring, value, || {}).cache_hit());
    }
    drop(deferring);
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 6, "three hits are only in the queue");
    let catalog = consist::Catalog::duckdb(ws.db(), std::time::Duration::from_secs(10));
    assert_eq!(catalog.count_runs(&RunQuery::default()).unwrap(), 9);
    assert_eq!(catalog.count_runs(&RunQuery::default().cache_hit(true)).unwrap(), 3);
    for by in RunSort::ALL {
        for ascending in [false, true] {
            let order = RunOrder { by, ascending };
            let whole: Vec<String> =
                catalog.find_runs(&RunQuery::default().order(order)).unwrap().into_iter().map(|r| r.id).collect();
            let mut paged = Vec::new();
            for page in 0..5 {
                let query = RunQuery::default().order(order).offset(page * 2).limit(2);
                paged.extend(catalog.find_runs(&query).unwrap().into_iter().map(|r| r.id));
            }
            assert_eq!(whole.len(), 9, "{order:?}");
            assert_eq!(paged, whole, "{order:?}: pages of two, pending hits included, are the whole list");
        }
    }
}

#[test]
fn text_search_reads_a_run_in_the_pending_queue_as_the_store_reads_it() {
    use consist::RunQuery;
    let ws = Workspace::new();
    let run = |tracker: &consist::Tracker| {
        tracker
            .step("tagged")
            .code_version("1")
            .config(&serde_json::json!({ "threshold": 7 }))
            .tag("prep")
            .tag("study")
            .description("cleans")
            .outputs(["v"])
            .run(|_| Ok(Value(1)))
            .unwrap()
    };
    let stored = run(&ws.tracker());
    assert!(!stored.cache_hit());
    // The same run's hit, left in the pending queue: the same model, tags, description and config.
    let deferring = consist::Tracker::builder(ws.run_dir()).db_path(ws.db()).defer_hit_writes(true).open().unwrap();
    assert!(run(&deferring).cache_hit());
    drop(deferring);
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 1, "the hit is only in the queue");
    let catalog = consist::Catalog::duckdb(ws.db(), std::time::Duration::from_secs(10));
    // The run's line (id, model, tags as their JSON, description), or its config; nothing across.
    for (needle, found) in [
        ("TAGGED", true),
        (r#"["prep","study"]"#, true),
        ("cleans", true),
        (r#""threshold":7"#, true),
        ("prep study", false),
        (r#"cleans {"threshold""#, false),
    ] {
        let hits = catalog.find_runs(&RunQuery::default().text(needle)).unwrap();
        let (stored_found, pending_found) =
            (hits.iter().any(|r| !r.is_cache_hit()), hits.iter().any(|r| r.is_cache_hit()));
        assert_eq!((stored_found, pending_found), (found, found), "`{needle}`: the stored run, then the pending one");
    }
}
