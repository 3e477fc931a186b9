//! `consist-schema-check --resource FILE... --schema URL [--at POINTER] DOC...`: validate JSON
//! documents (a `.jsonl` file holds one per line) against a JSON schema. Resources are schema
//! files registered under their `$id`, so `$ref`s between them resolve offline. With `--at`,
//! the value at that JSON pointer of each document is validated (documents without it are
//! skipped, and counted). Format assertions (`uuid`, `date-time`, `uri`) are on. Prints one line
//! per document checked; exits 1 on the first invalid one, naming it and why.

use std::process::ExitCode;

use serde_json::Value;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn run(args: Vec<String>) -> Result<String, String> {
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    let (mut schema, mut at, mut docs) = (None, None, Vec::new());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--resource" => {
                let path = value()?;
                let json: Value = serde_json::from_str(&read(&path)?).map_err(|e| format!("{path}: {e}"))?;
                let id = json["$id"]
                    .as_str()
                    .or(json["id"].as_str())
                    .ok_or(format!("{path} has no $id (or draft-04 id)"))?
                    .to_owned();
                compiler.add_resource(&id, json).map_err(|e| format!("{path}: {e}"))?;
            }
            "--schema" => schema = Some(value()?),
            "--at" => at = Some(value()?),
            _ => docs.push(arg),
        }
    }
    let schema = schema.ok_or("--schema URL is required")?;
    let mut schemas = boon::Schemas::new();
    let index = compiler.compile(&schema, &mut schemas).map_err(|e| format!("{schema}: {e:#}"))?;
    let (mut checked, mut skipped) = (0, 0);
    for doc in &docs {
        let text = read(doc)?;
        let values: Vec<Value> = if doc.ends_with(".jsonl") {
            text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect::<Result<_, _>>()
        } else {
            serde_json::from_str(&text).map(|v| vec![v])
        }
        .map_err(|e| format!("{doc}: {e}"))?;
        for (n, value) in values.iter().enumerate() {
            let target = match &at {
                Some(pointer) => match value.pointer(pointer) {
                    Some(v) => v,
                    None => {
                        skipped += 1;
                        continue;
                    }
                },
                None => value,
            };
            schemas
                .validate(target, index)
                .map_err(|e| format!("{doc} document {}: invalid against {schema}: {e:#}", n + 1))?;
            checked += 1;
        }
    }
    Ok(format!("valid: {checked} checked, {skipped} without {}", at.as_deref().unwrap_or("-")))
}
