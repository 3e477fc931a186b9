//! The source files of the crate a macro expands in: its root file and every file reachable from
//! it through `mod name;` (or `#[path = ".."] mod name;`), each parsed once per macro call.
//!
//! A step's code identity follows what it uses anywhere in its crate ([`super::scope`]); this
//! module finds the files. The crate root is the macro's own file when it is one (`main.rs`,
//! `lib.rs`, a file of `src/bin`, `examples`, `tests`, `benches`), else the first root of the
//! package (`src/lib.rs`, `src/main.rs`, then the other targets) whose module tree contains the
//! file. When none does (a file generated elsewhere, a source given only as text), the file alone
//! is the tree, with the modules it declares itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use syn::{Item, ItemMod};

/// One parsed source file of a crate.
#[derive(Clone)]
pub struct SourceFile {
    /// Its canonical path.
    pub path: PathBuf,
    /// Its items.
    pub parsed: Rc<syn::File>,
    /// Whether it owns a directory for its child modules: the crate root, a `mod.rs`, or a file
    /// named by `#[path]` (then `mod x;` is `<dir>/x.rs`, else `<dir>/<stem>/x.rs`).
    pub mod_rs: bool,
}

/// The parsed files of one crate, root first.
pub struct CrateFiles {
    /// The files, the root first.
    pub files: Vec<SourceFile>,
    /// Whether `files[0]` is the crate root (so `crate::` paths start there), rather than the
    /// macro's file standing alone.
    pub root_known: bool,
    /// The canonical path of the macro's own file.
    pub home: PathBuf,
    /// The package's library crate when the crate is another target of the package (a binary,
    /// example, test or bench names it by its crate name: `my_model::physics::rate()`): that
    /// name and its files, the root first.
    pub lib: Option<(String, Vec<SourceFile>)>,
}

/// Parse one file, with the modules its item-level macro calls declare as declarations
/// ([`super::macro_mods`]). Not cached across macro calls: the tokens of a parse are handles
/// into the compiler that are only valid during the call that made them.
fn parse(path: &Path, text: String) -> Result<Rc<syn::File>, String> {
    let mut file = syn::parse_file(&text).map_err(|e| format!("{} does not parse ({e})", path.display()))?;
    super::macro_mods::add_declared_in_macros(&mut file, path);
    Ok(Rc::new(file))
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

impl CrateFiles {
    /// The crate around the file at `path`, whose text is `source`. An error only when `source`
    /// itself does not parse; other files that cannot be read or parsed are left out (paths into
    /// them are reported as not followed).
    pub fn around(path: &Path, source: &str) -> Result<CrateFiles, String> {
        let home = canonical(path);
        let own = parse(&home, source.to_owned())?;
        let exists = path.is_file();
        if is_crate_root(&home) {
            let lib = package_lib(&home);
            return Ok(CrateFiles { files: load(&home, own, true), root_known: true, home, lib });
        }
        if exists {
            for root in candidate_roots(&home) {
                let Ok(text) = std::fs::read_to_string(&root) else { continue };
                let Ok(parsed) = parse(&root, text) else { continue };
                let files = load(&root, parsed, true);
                if files.iter().any(|f| f.path == home) {
                    // The macro's file as the compiler gave it, not as read from disk.
                    let files = files
                        .into_iter()
                        .map(|f| if f.path == home { SourceFile { parsed: own.clone(), ..f } } else { f });
                    let lib = package_lib(&canonical(&root));
                    return Ok(CrateFiles { files: files.collect(), root_known: true, home, lib });
                }
            }
        }
        let mod_rs = home.file_name().is_some_and(|n| n == "mod.rs");
        Ok(CrateFiles { files: load(&home, own, mod_rs), root_known: false, home, lib: None })
    }

    /// Every file: the crate's, then its package library's.
    pub fn all(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter().chain(self.lib.iter().flat_map(|(_, files)| files))
    }
}

/// The library of the package whose crate root is `root`, when `root` is another of its targets:
/// the name the other targets call it by (`[lib] name`, else the package name with `-` as `_`)
/// and its files (`[lib] path`, else `src/lib.rs`).
fn package_lib(root: &Path) -> Option<(String, Vec<SourceFile>)> {
    let package = root.ancestors().skip(1).find(|dir| dir.join("Cargo.toml").is_file())?;
    let manifest: toml::Table = std::fs::read_to_string(package.join("Cargo.toml")).ok()?.parse().ok()?;
    let lib = manifest.get("lib");
    let lib_path = lib.and_then(|l| l.get("path")).and_then(|p| p.as_str()).unwrap_or("src/lib.rs");
    let lib_root = canonical(&package.join(lib_path));
    if lib_root == root || !lib_root.is_file() {
        return None;
    }
    let name = lib.and_then(|l| l.get("name")).or_else(|| manifest.get("package")?.get("name"))?.as_str()?;
    let parsed = parse(&lib_root, std::fs::read_to_string(&lib_root).ok()?).ok()?;
    Some((name.replace('-', "_"), load(&lib_root, parsed, true)))
}

/// The crate roots of the package that contains `file`, most likely first: `src/lib.rs`,
/// `src/main.rs`, then `src/bin`, `examples`, `tests`, `benches` targets (a file `x.rs` or a
/// folder `x/main.rs`), keeping only those whose folder contains `file`.
fn candidate_roots(file: &Path) -> Vec<PathBuf> {
    let Some(package) = file.ancestors().skip(1).find(|dir| dir.join("Cargo.toml").is_file()) else {
        return Vec::new();
    };
    let mut roots = vec![package.join("src/lib.rs"), package.join("src/main.rs")];
    for folder in ["src/bin", "examples", "tests", "benches"] {
        let Ok(entries) = std::fs::read_dir(package.join(folder)) else { continue };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .map(|p| if p.is_dir() { p.join("main.rs") } else { p })
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        found.sort();
        roots.extend(found);
    }
    roots.retain(|root| root.is_file() && root.parent().is_some_and(|dir| file.starts_with(dir)));
    // The target being compiled first: cargo names it to the compiler (`CARGO_BIN_NAME` for a
    // binary, `CARGO_CRATE_NAME` for every target), so a module that both `lib.rs` and `main.rs`
    // declare is read as part of the crate actually built.
    let bin = std::env::var("CARGO_BIN_NAME").ok();
    let krate = std::env::var("CARGO_CRATE_NAME").ok();
    let target_name = |root: &Path| {
        let stem = root.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let name = if stem == "main" {
            root.parent().and_then(|d| d.file_name()).and_then(|d| d.to_str()).unwrap_or_default()
        } else {
            stem
        };
        name.replace('-', "_")
    };
    let is_built = |root: &Path| {
        let name = target_name(root);
        let is_main = root.ends_with("src/main.rs");
        (bin.is_some() && is_main)
            || bin.as_deref().is_some_and(|b| b.replace('-', "_") == name)
            || (!is_main && !root.ends_with("src/lib.rs") && krate.as_deref() == Some(name.as_str()))
    };
    roots.sort_by_key(|root| !is_built(root));
    roots
}

/// The `#[path = ".."]` of a module declaration, and every `#[cfg_attr(.., path = "..")]`.
fn path_attributes(declared: &ItemMod) -> (Option<String>, Vec<String>) {
    let literal = |value: &syn::Expr| match value {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
        _ => None,
    };
    let mut plain = None;
    let mut conditional = Vec::new();
    for attr in &declared.attrs {
        match &attr.meta {
            syn::Meta::NameValue(nv) if nv.path.is_ident("path") => plain = literal(&nv.value),
            syn::Meta::List(list) if list.path.is_ident("cfg_attr") => {
                let parsed =
                    list.parse_args_with(syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated);
                for meta in parsed.into_iter().flatten().skip(1) {
                    if let syn::Meta::NameValue(nv) = meta
                        && nv.path.is_ident("path")
                    {
                        conditional.extend(literal(&nv.value));
                    }
                }
            }
            _ => {}
        }
    }
    (plain, conditional)
}

/// The files that `mod name;`, declared in `file` inside the inline modules `inline`, may be,
/// canonical, existing ones only, each with whether it owns a directory for its child modules
/// (see [`SourceFile::mod_rs`]): the file of its `#[path]` or of the default names (`name.rs`,
/// else `name/mod.rs`), and the file of each `#[cfg_attr(.., path = "..")]`, since which one
/// compiles depends on the build.
pub fn module_files(file: &Path, mod_rs: bool, inline: &[String], declared: &ItemMod) -> Vec<(PathBuf, bool)> {
    let dir = file.parent().unwrap_or_else(|| Path::new(""));
    let base = if mod_rs { dir.to_owned() } else { dir.join(file.file_stem().unwrap_or_default()) };
    let base = inline.iter().fold(base, |b, m| b.join(m));
    // A `#[path]` is relative to the file's folder at the top level, to the inline modules' folder
    // inside them.
    let explicit_from = if inline.is_empty() { dir.to_owned() } else { base.clone() };
    let (plain, conditional) = path_attributes(declared);
    let name = declared.ident.to_string();
    let defaults = match plain {
        Some(explicit) => vec![(explicit_from.join(explicit), true)],
        None => vec![(base.join(format!("{name}.rs")), false), (base.join(name).join("mod.rs"), true)],
    };
    let mut found: Vec<(PathBuf, bool)> = defaults.into_iter().find(|(c, _)| c.is_file()).into_iter().collect();
    found.extend(conditional.into_iter().map(|c| (explicit_from.join(c), true)).filter(|(c, _)| c.is_file()));
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    for (path, owns) in found {
        let path = canonical(&path);
        if !files.iter().any(|(p, _)| *p == path) {
            files.push((path, owns));
        }
    }
    files
}

/// Every out-of-line `mod name;` of `items` (recursing into inline modules), with the inline
/// modules around it.
pub fn declared_modules<'f>(items: &'f [Item], inline: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'f ItemMod)>) {
    for item in items {
        if let Item::Mod(m) = item {
            match &m.content {
                Some((_, inner)) => {
                    inline.push(m.ident.to_string());
                    declared_modules(inner, inline, out);
                    inline.pop();
                }
                None => out.push((inline.clone(), m)),
            }
        }
    }
}

/// The root file and every file reachable from it, each once.
fn load(root: &Path, parsed: Rc<syn::File>, mod_rs: bool) -> Vec<SourceFile> {
    let mut files = vec![SourceFile { path: root.to_owned(), parsed, mod_rs }];
    let mut index: BTreeMap<PathBuf, usize> = BTreeMap::from([(root.to_owned(), 0)]);
    let mut next = 0;
    while next < files.len() {
        let SourceFile { path, parsed: file, mod_rs } = files[next].clone();
        let mut declared = Vec::new();
        declared_modules(&file.items, &mut Vec::new(), &mut declared);
        for (inline, m) in declared {
            for (found, mod_rs) in module_files(&path, mod_rs, &inline, m) {
                if index.contains_key(&found) {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&found) else { continue };
                let Ok(parsed) = parse(&found, text) else { continue };
                index.insert(found.clone(), files.len());
                files.push(SourceFile { path: found, parsed, mod_rs });
            }
        }
        next += 1;
    }
    files
}

/// Whether the file at `path` is a crate root (`main.rs`, `lib.rs`, or a file directly under
/// `src/bin`, `examples`, `tests` or `benches`), so that `crate::` paths start at its top level.
pub fn is_crate_root(path: &std::path::Path) -> bool {
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
    let dir = path.parent().and_then(|d| d.file_name()).and_then(|d| d.to_str()).unwrap_or_default();
    matches!(file, "main.rs" | "lib.rs") || matches!(dir, "bin" | "examples" | "tests" | "benches")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_roots_are_recognised_by_file_name_and_folder() {
        for (path, root) in [
            ("src/main.rs", true),
            ("src/lib.rs", true),
            ("src/bin/tool.rs", true),
            ("examples/sir.rs", true),
            ("tests/it/main.rs", true),
            ("src/physics.rs", false),
            ("tests/it/cache.rs", false),
        ] {
            assert_eq!(is_crate_root(std::path::Path::new(path)), root, "{path}");
        }
    }
}
