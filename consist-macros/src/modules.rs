//! Where a path or `use` of a step's crate leads: into a module of the crate (the code identity
//! follows it, whichever file it is in), into a module the crate declares but whose file cannot be
//! read (reported), or out of the crate.

use std::collections::BTreeMap;
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use syn::{Item, ItemMod};

use crate::crate_tree::{CrateFiles, declared_modules, module_file_candidates};

/// Where a path leads, seen from a module of the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Into the module at this path (from the crate root): followed.
    Module(Vec<String>),
    /// Into a module whose file could not be read, or above the files known: not followed,
    /// reported.
    Elsewhere,
    /// Not into a module of this crate (another crate, a type's associated item, an enum's
    /// variants): nothing to follow.
    External,
}

/// One module of the crate: its items and the file they are written in.
#[derive(Clone, Copy)]
pub struct ModuleSource<'f> {
    /// The module's items.
    pub items: &'f [Item],
    /// The file it is written in (the folder that `include_str!` paths start from).
    pub file: &'f Path,
}

/// The modules of one crate (or of one file, when its crate root is not known), by path.
pub struct FileModules<'f> {
    /// Module path (outermost first, from the crate root) -> its items and file.
    pub modules: BTreeMap<Vec<String>, ModuleSource<'f>>,
    /// Whether the top level is the crate root, so that `crate::` means it.
    pub crate_root: bool,
    /// The module path of the macro's own file.
    pub home: Vec<String>,
}

impl<'f> FileModules<'f> {
    /// Index every module of `files`: inline modules and the files `mod name;` names.
    pub fn new(files: &'f CrateFiles) -> Self {
        let mut index = FileModules { modules: BTreeMap::new(), crate_root: files.root_known, home: Vec::new() };
        if let Some(root) = files.files.first() {
            index.add_file(files, root, &mut Vec::new());
        }
        index
    }

    fn add_file(&mut self, files: &'f CrateFiles, file: &'f crate::crate_tree::SourceFile, path: &mut Vec<String>) {
        if file.path == files.home {
            self.home = path.clone();
        }
        self.add_items(&file.parsed.items, &file.path, path);
        let mut declared = Vec::new();
        declared_modules(&file.parsed.items, &mut Vec::new(), &mut declared);
        for (inline, m) in declared {
            let candidates = module_file_candidates(&file.path, file.mod_rs, &inline, m);
            let found = candidates.iter().find_map(|c| std::fs::canonicalize(c).ok());
            let Some(child) = files.files.iter().find(|f| Some(&f.path) == found.as_ref()) else { continue };
            let depth = path.len();
            path.extend(inline);
            path.push(m.ident.to_string());
            if !self.modules.contains_key(path.as_slice()) {
                self.add_file(files, child, path);
            }
            path.truncate(depth);
        }
    }

    fn add_items(&mut self, items: &'f [Item], file: &'f Path, path: &mut Vec<String>) {
        self.modules.insert(path.clone(), ModuleSource { items, file });
        for item in items {
            if let Item::Mod(ItemMod { ident, content: Some((_, inner)), .. }) = item {
                path.push(ident.to_string());
                self.add_items(inner, file, path);
                path.pop();
            }
        }
    }

    /// The items of the module at `path` (outermost first), if the crate has it.
    pub fn items_at(&self, path: &[String]) -> Option<&'f [Item]> {
        self.modules.get(path).map(|m| m.items)
    }

    /// Where `segments` (a path as written in the module at `from`) leads. Leading `self`,
    /// `super` and `crate` and then every segment naming a module are followed; the first
    /// segment naming anything else is an item of the module reached so far.
    pub fn reach(&self, from: &[String], segments: &[String]) -> Reach {
        let mut path = from.to_vec();
        let mut consumed = 0;
        for (k, segment) in segments.iter().enumerate() {
            let leading = segments[..k].iter().all(|s| s == "self" || s == "super");
            match segment.as_str() {
                "self" if k == 0 => {}
                "super" if leading => {
                    if path.pop().is_none() {
                        return Reach::Elsewhere;
                    }
                }
                "crate" if k == 0 => {
                    if !self.crate_root {
                        return Reach::Elsewhere;
                    }
                    path.clear();
                }
                name => {
                    let items = self.items_at(&path).unwrap_or_default();
                    let mut child = path.clone();
                    child.push(name.to_owned());
                    if self.modules.contains_key(&child) {
                        path = child;
                    } else if declares_module(items, name) {
                        return Reach::Elsewhere;
                    } else if consumed > 0 && !declares(items, name) {
                        // An item of the module reached (or a name it imports, followed with its
                        // imports); a name it does not have is something these files cannot show
                        // (`crate::model::X` in a root that declares no `model`).
                        return Reach::Elsewhere;
                    } else {
                        break;
                    }
                }
            }
            consumed = k + 1;
        }
        if consumed == 0 { Reach::External } else { Reach::Module(path) }
    }
}

fn declares_module(items: &[Item], name: &str) -> bool {
    items.iter().any(|item| matches!(item, Item::Mod(m) if m.ident == name))
}

/// Whether `items` define or import `name`, or may: through a glob import (`pub use super::*;`)
/// or an item-level macro call (`def_rate!(0.25);`).
fn declares(items: &[Item], name: &str) -> bool {
    let imported = Imports::of(items);
    imported.names.contains_key(name)
        || !imported.globs.is_empty()
        || items.iter().any(|item| matches!(item, Item::Macro(m) if m.ident.is_none()))
        || items.iter().any(|item| match item {
            Item::Impl(_) | Item::Use(_) => false,
            Item::Mod(m) => m.ident == name,
            other => crate::scope::kind_and_name(other).is_some_and(|(_, n)| n == name),
        })
}

/// What one module imports: single names (local name -> path) and glob imports (`path::*`).
#[derive(Debug, Default)]
pub struct Imports {
    /// `use a::b::c as d;` -> `d` -> `[a, b, c]`.
    pub names: BTreeMap<String, Vec<String>>,
    /// `use a::b::*;` -> `[a, b]`.
    pub globs: Vec<Vec<String>>,
}

impl Imports {
    /// The `use` items of `module`.
    pub fn of(module: &[Item]) -> Imports {
        let mut imports = Imports::default();
        for item in module {
            if let Item::Use(u) = item {
                flatten_use(&u.tree, &mut Vec::new(), &mut imports);
            }
        }
        // `use crate::physics; use physics::forces::weight;`: a path that starts with a name this
        // module imports starts where that import leads.
        let imported = imports.names.clone();
        let through = |path: &mut Vec<String>| {
            if let Some(first) = imported.get(&path[0]).filter(|to| to.len() > 1 || to[0] != path[0]) {
                path.splice(0..1, first.iter().cloned());
            }
        };
        for path in imports.names.values_mut().filter(|p| p.len() > 1) {
            through(path);
        }
        for glob in imports.globs.iter_mut().filter(|g| !g.is_empty()) {
            through(glob);
        }
        imports
    }

    /// Every multi-segment path in `tokens` (`plots::draw`, `super::SCALE`), with a leading
    /// imported name replaced by the path it was imported from.
    pub fn paths(&self, tokens: TokenStream, out: &mut Vec<Vec<String>>) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.paths(g.stream(), out),
                TokenTree::Ident(first) => {
                    let after_path_sep = i >= 2 && is_path_sep(&trees[i - 2], &trees[i - 1]);
                    let mut segments = vec![first.to_string()];
                    let mut j = i + 1;
                    while j + 1 < trees.len() && is_path_sep(&trees[j], &trees[j + 1]) {
                        match trees.get(j + 2) {
                            Some(TokenTree::Ident(next)) => segments.push(next.to_string()),
                            _ => break,
                        }
                        j += 3;
                    }
                    if !after_path_sep && segments.len() > 1 {
                        if let Some(imported) = self.names.get(&segments[0]) {
                            segments.splice(0..1, imported.iter().cloned());
                        }
                        out.push(segments);
                    }
                    i = j.max(i + 1);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

fn is_path_sep(a: &TokenTree, b: &TokenTree) -> bool {
    matches!((a, b), (TokenTree::Punct(x), TokenTree::Punct(y)) if x.as_char() == ':' && y.as_char() == ':')
}

fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Imports) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut path = prefix.clone();
            path.push(n.ident.to_string());
            // `use a::b::{self}` imports `b`.
            let name = if n.ident == "self" { prefix.last().cloned().unwrap_or_default() } else { n.ident.to_string() };
            if n.ident == "self" {
                path.pop();
            }
            out.names.insert(name, path);
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.names.insert(r.rename.to_string(), path);
        }
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| flatten_use(t, prefix, out)),
        syn::UseTree::Glob(_) => out.globs.push(prefix.clone()),
    }
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

    fn strings(path: &str) -> Vec<String> {
        if path.is_empty() { Vec::new() } else { path.split("::").map(str::to_owned).collect() }
    }

    #[test]
    fn paths_reach_inline_modules_other_files_or_nothing_local() {
        let source = "mod physics;\nmod a { pub mod b { pub const X: i32 = 1; } mod tests { use super::*; } }\nenum Season { Winter }";
        let in_root = CrateFiles::around(Path::new("src/main.rs"), source).unwrap();
        let in_module = CrateFiles::around(Path::new("src/model.rs"), source).unwrap();
        let reach = |crate_root: bool, from: &str, path: &str| {
            FileModules::new(if crate_root { &in_root } else { &in_module }).reach(&strings(from), &strings(path))
        };
        let inline = |p: &str| Reach::Module(strings(p));
        assert_eq!(reach(false, "a::tests", "super"), inline("a"));
        assert_eq!(reach(false, "a::tests", "super::super::a::b::X"), inline("a::b"));
        assert_eq!(reach(false, "a", "b::X"), inline("a::b"));
        assert_eq!(reach(false, "a", "self::b"), inline("a::b"));
        assert_eq!(reach(false, "", "super::x"), Reach::Elsewhere, "above the file");
        assert_eq!(reach(false, "", "physics::SCALE"), Reach::Elsewhere, "a module of another file");
        assert_eq!(reach(false, "a", "crate::a::b"), Reach::Elsewhere, "not a crate root");
        assert_eq!(reach(true, "a", "crate::a::b"), inline("a::b"));
        assert_eq!(reach(true, "a", "crate::physics::X"), Reach::Elsewhere);
        assert_eq!(reach(false, "", "Season::Winter"), Reach::External);
        assert_eq!(reach(false, "", "std::f64::consts::PI"), Reach::External);
    }

    #[test]
    fn imports_record_names_renames_self_and_globs() {
        let file = syn::parse_file("use crate::m::{self, x as y, z};\nuse super::*;\nuse Season::*;").unwrap();
        let imports = Imports::of(&file.items);
        let names: Vec<(String, String)> = imports.names.iter().map(|(k, v)| (k.clone(), v.join("::"))).collect();
        assert_eq!(
            names,
            [("m", "crate::m"), ("y", "crate::m::x"), ("z", "crate::m::z")].map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(imports.globs, [strings("super"), strings("Season")]);
        let mut paths = Vec::new();
        imports.paths(quote::quote!(m::f() + y + std::f64::consts::PI), &mut paths);
        assert_eq!(paths, [strings("crate::m::f"), strings("std::f64::consts::PI")]);
    }

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
