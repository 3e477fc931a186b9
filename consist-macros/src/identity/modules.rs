//! Where a path or `use` of a step's crate leads: into a module of the crate (the code identity
//! follows it, whichever file it is in), into a module the crate declares but whose file cannot be
//! read (reported), or out of the crate.

use std::collections::BTreeMap;
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use syn::{Item, ItemMod};

use super::crate_tree::{CrateFiles, declared_modules, module_files};

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

/// One declaration of a module of the crate: its items and the file they are written in.
#[derive(Clone, Copy)]
pub struct ModulePart<'f> {
    /// The items of this declaration.
    pub items: &'f [Item],
    /// The file it is written in (the folder that `include_str!` paths start from).
    pub file: &'f Path,
}

/// One module of the crate: usually one declaration, several when the build picks one of them
/// (`#[cfg(feature = "fast")] mod imp;` beside `#[cfg(not(..))] mod imp;`, or a
/// `#[cfg_attr(.., path = "..")]`). Code that reaches the module reaches every part, and the
/// `cfg` settings of its declarations count as build facts.
#[derive(Clone, Default)]
pub struct ModuleSource<'f> {
    /// Its declarations, in the order they are written.
    pub parts: Vec<ModulePart<'f>>,
    /// The attributes of its declarations (`#[cfg(..)]`, `#[cfg_attr(..)]`), as tokens.
    pub attrs: TokenStream,
}

impl<'f> ModuleSource<'f> {
    /// Every item of every part, with the file it is written in.
    pub fn items(&self) -> impl Iterator<Item = (&'f Item, &'f Path)> + '_ {
        self.parts.iter().flat_map(|part| part.items.iter().map(move |item| (item, part.file)))
    }
}

/// The modules of one crate (or of one file, when its crate root is not known), by path.
pub struct FileModules<'f> {
    /// Module path (outermost first, from the crate root) -> its declarations.
    pub modules: BTreeMap<Vec<String>, ModuleSource<'f>>,
    /// Whether the top level is the crate root, so that `crate::` means it.
    pub crate_root: bool,
    /// The module path of the macro's own file.
    pub home: Vec<String>,
    /// The macro's own file.
    pub home_file: &'f Path,
    /// The name of the package library that the crate may use (see [`CrateFiles::lib`]); its
    /// modules are indexed under [`lib_module`]`(name)`.
    pub lib_name: Option<&'f str>,
    /// Names a crate root gives itself (`extern crate self as me;`), with that root's path (`[]`,
    /// or the package library's `[::my_model]`).
    pub self_names: BTreeMap<String, Vec<String>>,
}

/// The module path segment under which the package library's modules are indexed (`::my_model`,
/// which no module of the crate itself can be named).
pub fn lib_module(name: &str) -> String {
    format!("::{name}")
}

/// Whether the module `path` is in the package library rather than the crate itself.
fn in_lib(path: &[String]) -> bool {
    path.first().is_some_and(|first| first.starts_with("::"))
}

impl<'f> FileModules<'f> {
    /// Index every module of `files`: inline modules and the files `mod name;` names.
    pub fn new(files: &'f CrateFiles) -> Self {
        let mut index = FileModules {
            modules: BTreeMap::new(),
            crate_root: files.root_known,
            home: Vec::new(),
            home_file: &files.home,
            lib_name: files.lib.as_ref().map(|(name, _)| name.as_str()),
            self_names: BTreeMap::new(),
        };
        if let Some(root) = files.files.first() {
            index.add_file(files, root, &mut Vec::new());
        }
        if let Some((name, lib)) = &files.lib
            && let Some(root) = lib.first()
        {
            index.add_file(files, root, &mut vec![lib_module(name)]);
        }
        index
    }

    fn add_file(&mut self, files: &'f CrateFiles, file: &'f super::crate_tree::SourceFile, path: &mut Vec<String>) {
        if file.path == files.home && !in_lib(path) {
            self.home = path.clone();
        }
        if path.len() == usize::from(in_lib(path)) {
            for item in &file.parsed.items {
                if let Item::ExternCrate(syn::ItemExternCrate { ident, rename: Some((_, alias)), .. }) = item
                    && ident == "self"
                {
                    self.self_names.insert(alias.to_string(), path.clone());
                }
            }
        }
        self.add_items(&file.parsed.items, &file.path, path);
        let mut declared = Vec::new();
        declared_modules(&file.parsed.items, &mut Vec::new(), &mut declared);
        for (inline, m) in declared {
            let depth = path.len();
            path.extend(inline);
            path.push(m.ident.to_string());
            for (found, _) in module_files(&file.path, file.mod_rs, &path[depth..path.len() - 1], m) {
                let Some(child) = files.all().find(|f| f.path == found) else { continue };
                let known = self.modules.get(path.as_slice()).is_some_and(|module| {
                    module.parts.iter().any(|part| std::ptr::eq(part.items, child.parsed.items.as_slice()))
                });
                if !known {
                    self.add_file(files, child, path);
                }
            }
            self.add_attrs(path, &m.attrs);
            path.truncate(depth);
        }
    }

    fn add_items(&mut self, items: &'f [Item], file: &'f Path, path: &mut Vec<String>) {
        self.modules.entry(path.clone()).or_default().parts.push(ModulePart { items, file });
        for item in items {
            if let Item::Mod(ItemMod { ident, content: Some((_, inner)), attrs, .. }) = item {
                path.push(ident.to_string());
                self.add_items(inner, file, path);
                self.add_attrs(path, attrs);
                path.pop();
            }
        }
    }

    fn add_attrs(&mut self, path: &[String], attrs: &[syn::Attribute]) {
        if let Some(module) = self.modules.get_mut(path) {
            module.attrs.extend(attrs.iter().map(quote::ToTokens::to_token_stream));
        }
    }

    /// The module at `path` (outermost first), if the crate has it.
    pub fn module(&self, path: &[String]) -> Option<&ModuleSource<'f>> {
        self.modules.get(path)
    }

    /// The items of every part of the module at `path` (none when the crate does not have it).
    pub fn items_at(&self, path: &[String]) -> Vec<&'f Item> {
        self.modules.get(path).map(|m| m.items().map(|(item, _)| item).collect()).unwrap_or_default()
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
                    if path.len() == usize::from(in_lib(from)) {
                        return Reach::Elsewhere;
                    }
                    path.pop();
                }
                "crate" if k == 0 => {
                    if !self.crate_root {
                        return Reach::Elsewhere;
                    }
                    path.truncate(usize::from(in_lib(from)));
                }
                // `my_model::physics::rate()` in a binary of the package: its library.
                name if k == 0
                    && self.lib_name == Some(name)
                    && !self.modules.contains_key([from, &[name.to_owned()]].concat().as_slice()) =>
                {
                    path = vec![lib_module(name)];
                }
                // `me::physics::rate()` after `extern crate self as me;`: the crate itself.
                name if k == 0
                    && self
                        .self_names
                        .get(name)
                        .is_some_and(|root| root.first() == from.first().filter(|_| in_lib(from)))
                    && !self.modules.contains_key([from, &[name.to_owned()]].concat().as_slice()) =>
                {
                    path = self.self_names[name].clone();
                }
                name => {
                    let items = self.items_at(&path);
                    let mut child = path.clone();
                    child.push(name.to_owned());
                    if self.modules.contains_key(&child) {
                        path = child;
                    } else if declares_module(&items, name) {
                        return Reach::Elsewhere;
                    } else if consumed > 0 && !declares(&items, name) {
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

fn declares_module(items: &[&Item], name: &str) -> bool {
    items.iter().any(|item| matches!(item, Item::Mod(m) if m.ident == name))
}

/// Whether `items` define or import `name`, or may: through a glob import (`pub use super::*;`)
/// or an item-level macro call (`def_rate!(0.25);`).
fn declares(items: &[&Item], name: &str) -> bool {
    let imported = Imports::of(items.iter().copied());
    imported.names.contains_key(name)
        || !imported.globs.is_empty()
        || items.iter().any(|item| matches!(item, Item::Macro(m) if m.ident.is_none()))
        || items.iter().any(|item| match item {
            Item::Impl(_) | Item::Use(_) => false,
            Item::Mod(m) => m.ident == name,
            other => super::item::kind_and_name(other).is_some_and(|(_, n)| n == name),
        })
}

/// What one module imports: single names (local name -> paths) and glob imports (`path::*`).
#[derive(Debug, Default)]
pub struct Imports {
    /// `use a::b::c as d;` -> `d` -> `[[a, b, c]]`; a name imported twice under opposite `cfg`s
    /// (`#[cfg(feature = "fast")] use fast::solve;` beside `#[cfg(not(..))] use slow::solve;`)
    /// has both paths.
    pub names: BTreeMap<String, Vec<Vec<String>>>,
    /// `use a::b::*;` -> `[a, b]`.
    pub globs: Vec<Vec<String>>,
    /// The attributes (`#[cfg(..)]`) of the `use` items that import each name, as tokens.
    pub attrs: BTreeMap<String, TokenStream>,
}

impl Imports {
    /// The `use` items among `module`.
    pub fn of<'a>(module: impl IntoIterator<Item = &'a Item>) -> Imports {
        let mut imports = Imports::default();
        for item in module {
            if let Item::Use(u) = item {
                let mut names = Vec::new();
                flatten_use(&u.tree, &mut Vec::new(), &mut names, &mut imports.globs);
                for (name, path) in names {
                    let paths = imports.names.entry(name.clone()).or_default();
                    if !paths.contains(&path) {
                        paths.push(path);
                    }
                    if !u.attrs.is_empty() {
                        let attrs = imports.attrs.entry(name).or_default();
                        attrs.extend(u.attrs.iter().map(quote::ToTokens::to_token_stream));
                    }
                }
            }
        }
        // `use crate::physics; use physics::forces::weight;`: a path that starts with a name this
        // module imports starts where that import leads.
        let imported = imports.names.clone();
        let through = |path: &Vec<String>| -> Vec<Vec<String>> {
            let leads = imported
                .get(&path[0])
                .map(|to| to.iter().filter(|to| to.len() > 1 || to[0] != path[0]).cloned().collect::<Vec<_>>());
            match leads {
                Some(firsts) if !firsts.is_empty() => firsts
                    .into_iter()
                    .map(|first| first.into_iter().chain(path[1..].iter().cloned()).collect())
                    .collect(),
                _ => vec![path.clone()],
            }
        };
        for paths in imports.names.values_mut() {
            *paths = paths.iter().flat_map(|p| if p.len() > 1 { through(p) } else { vec![p.clone()] }).collect();
        }
        imports.globs =
            imports.globs.iter().flat_map(|g| if g.is_empty() { vec![g.clone()] } else { through(g) }).collect();
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
                        match self.names.get(&segments[0]) {
                            Some(imported) => out.extend(
                                imported.iter().map(|first| first.iter().chain(&segments[1..]).cloned().collect()),
                            ),
                            None => out.push(segments),
                        }
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

/// The names a `use` tree imports (local name, path) and its glob paths.
fn flatten_use(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    names: &mut Vec<(String, Vec<String>)>,
    globs: &mut Vec<Vec<String>>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, names, globs);
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
            names.push((name, path));
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            names.push((r.rename.to_string(), path));
        }
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| flatten_use(t, prefix, names, globs)),
        syn::UseTree::Glob(_) => globs.push(prefix.clone()),
    }
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
        let names: Vec<(String, String)> = imports.names.iter().map(|(k, v)| (k.clone(), v[0].join("::"))).collect();
        assert_eq!(
            names,
            [("m", "crate::m"), ("y", "crate::m::x"), ("z", "crate::m::z")].map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(imports.globs, [strings("super"), strings("Season")]);
        let mut paths = Vec::new();
        imports.paths(quote::quote!(m::f() + y + std::f64::consts::PI), &mut paths);
        assert_eq!(paths, [strings("crate::m::f"), strings("std::f64::consts::PI")]);
    }
}
