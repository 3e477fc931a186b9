//! Code identity that follows what a step uses: the items of its crate that it names.
//!
//! `#[step]` and `#[helper]` read the crate their item is expanded in ([`super::crate_tree`]),
//! find the module that defines the annotated item, and fold into its code identity,
//! transitively, every item the item refers to: consts, statics, functions, structs, enums,
//! unions, type aliases, traits, `macro_rules!` macros, item-level macro calls, and `impl` blocks.
//! The search widens from the item's module to every module of the crate that followed code
//! reaches by a path or a `use` (globs included, `use super::*;`). `impl` blocks, traits and
//! macros are found anywhere in the crate, since they apply wherever they are in scope: an impl
//! by the names of its header or of its methods (`col.total()` reaches `impl ColExt for Column`),
//! a trait by its methods, a macro by its name. Each file an item bakes in with `include_str!`,
//! `include_bytes!` or `include!` counts by its bytes ([`super::includes`]), and each `cfg`
//! predicate or `env!` variable by its value at compile time ([`BuildFact`]).
//! Each covered item is hashed with the same token walk as the step itself ([`super::hash`]), so
//! comments and formatting never count, and it is reported by label (`const CONTACT_SCALE`) so a
//! miss can say which item changed.
//!
//! Names are matched as identifiers, without type resolution. A function's parameter or a plain
//! `let` binding shadows the functions of its name where the code uses it bare
//! (`fn report(diagnostics: &DataFrame)` does not cover `fn diagnostics`); other locals (closure
//! parameters, `match` and `if let` bindings) and a method of a foreign type that share a name with
//! an item make that item covered too. That errs towards invalidating (a needless re-run). Other crates are not followed; a step declares their items
//! with `uses = [path]` (each marked `#[helper]`, which follows its own crate), and a path into a
//! module whose file cannot be read is listed by `consist steps`. Identifiers inside string
//! literals (`format!("{SCALE}")`, `{:.PREC$}`) count as references.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Item, ItemMod};

pub use super::build_facts::BuildFact;
use super::build_facts::build_facts;
use super::crate_tree::CrateFiles;
use super::hash::hash_tokens;
use super::includes::included;
use super::item::{kind_and_name, without_attrs};
use super::modules::{FileModules, Imports, Reach};
use super::names::{CrateNames, identifiers_and_locals, lookup_names};

/// One item covered by a code identity: its label (`const CONTACT_SCALE`) and token hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Covered {
    /// Kind and name, e.g. `fn helper`, `impl Display for State`.
    pub label: String,
    /// Hex blake3 of the item's token walk.
    pub hash: String,
}

/// Where a macro is expanded: the source file and the line of its attribute.
pub struct Source {
    /// The file, as the compiler reports it.
    pub path: std::path::PathBuf,
    /// 1-based line of the attribute.
    pub line: usize,
}

/// What the annotated item is, to find it in its file.
pub struct Target<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its item kind, as in labels (`fn`, `const`, `struct`...).
    pub kind: &'static str,
    /// Token hash of the item without outer attributes, to pick among same-named candidates.
    pub hash: String,
    /// Names of the inline modules enclosing it, outermost first (see [`module_path_at`]).
    pub module: Vec<String>,
}

/// The path (outermost first, from the crate root) of the module that defines `target`: the
/// module open at the macro's line when it defines the target, else any module of the macro's
/// file that does, preferring the one whose item has the target's exact tokens, else (an item a
/// `macro_rules!` macro generated, not written in the file) the module open at the line.
fn defining_module(files: &FileModules<'_>, target: &Target<'_>) -> Option<Vec<String>> {
    let defines = |items: Vec<&Item>| {
        items.iter().any(|item| kind_and_name(item).is_some_and(|(k, n)| k == target.kind && n == target.name))
    };
    let at_line: Vec<String> = files.home.iter().chain(&target.module).cloned().collect();
    if defines(files.items_at(&at_line)) {
        return Some(at_line);
    }
    files.module(&files.home)?;
    let mut candidates: Vec<(Vec<String>, &Item)> = Vec::new();
    collect_candidates(files.items_at(&files.home), &mut files.home.clone(), target, &mut candidates);
    let exact = candidates.iter().position(|(_, item)| hash_tokens(without_attrs(item)) == target.hash);
    match exact.or(if candidates.is_empty() { None } else { Some(0) }) {
        Some(index) => Some(candidates.swap_remove(index).0),
        None => files.module(&at_line).map(|_| at_line),
    }
}

fn collect_candidates<'f>(
    items: impl IntoIterator<Item = &'f Item>,
    path: &mut Vec<String>,
    target: &Target<'_>,
    out: &mut Vec<(Vec<String>, &'f Item)>,
) {
    for item in items {
        if let Some((kind, name)) = kind_and_name(item)
            && kind == target.kind
            && name == target.name
        {
            out.push((path.clone(), item));
        }
        if let Item::Mod(ItemMod { ident, content: Some((_, inner)), .. }) = item {
            path.push(ident.to_string());
            collect_candidates(inner, path, target, out);
            path.pop();
        }
    }
}

/// What a code identity follows, and what it sees but cannot follow.
#[derive(Debug, Default)]
pub struct Scope {
    /// Items it covers (anywhere in its crate), the files they include, and the imports from
    /// other crates it names, sorted by label.
    pub covered: Vec<Covered>,
    /// Code it uses but cannot follow: paths into modules whose file cannot be read, paths above
    /// the files known (a file whose crate root was not found), and include paths it cannot work
    /// out. Not followed unless declared with `uses`.
    pub not_followed: Vec<String>,
    /// Build settings the covered code depends on, evaluated when the user's crate compiles:
    /// `cfg` predicates (`#[cfg(feature = "x")]`, `cfg!(..)`) and environment variables read
    /// with `env!` / `option_env!`.
    pub build: Vec<BuildFact>,
    /// Every type alias of the crate: name -> the type names it stands for.
    pub aliases: BTreeMap<String, Vec<String>>,
}

/// The items of `source` (the file at `path`) and of the rest of its crate that `target` refers
/// to, transitively, and what it uses but cannot follow. `target_tokens` are the tokens the
/// target itself is hashed from. An error says why nothing could be followed (the file does not
/// parse, or does not define the target).
///
/// The search starts in the module that defines the target and widens to every module of the
/// crate that a followed module reaches: through glob imports (`use super::*;`), imports of names
/// (`use crate::physics::SCALE;`) and paths (`physics::rate()`). `impl` blocks, traits and
/// `macro_rules!` macros are found anywhere in the crate, since they apply wherever they are
/// written: by the names in an impl's header (`impl Mul<Cell> for i32` by `Cell`, an impl on a
/// type alias by the aliased type), by method names (`x.damp()`), and by macro name.
pub fn covered(source: &str, path: &Path, target: &Target<'_>, target_tokens: TokenStream) -> Result<Scope, String> {
    let crate_files = CrateFiles::around(path, source)?;
    let files = FileModules::new(&crate_files);
    let home = defining_module(&files, target).ok_or_else(|| {
        format!("`{} {}` is not defined in its source file (generated code?)", target.kind, target.name)
    })?;
    let names = CrateNames::of(&files);
    let mut pool = vec![home];
    loop {
        let (scope, more) = Walk::new(&files, &pool, target, &names).run(target_tokens.clone());
        if more.is_empty() {
            return Ok(Scope { aliases: names.aliases, ..scope });
        }
        pool.extend(more);
    }
}

/// Items declared anywhere inside `item`: in a function body, a `const _: () = { .. };` block, a
/// method's body, a nested block. `impl` blocks there apply to the whole crate.
fn nested_items(item: &Item) -> Vec<&Item> {
    struct Collect<'a>(Vec<&'a Item>);
    impl<'a> syn::visit::Visit<'a> for Collect<'a> {
        fn visit_item(&mut self, inner: &'a Item) {
            self.0.push(inner);
            syn::visit::visit_item(self, inner);
        }
        // Inline modules are indexed as modules of their own.
        fn visit_item_mod(&mut self, _: &'a ItemMod) {}
    }
    let mut found = Collect(Vec::new());
    syn::visit::visit_item(&mut found, item);
    found.0
}

/// Whether `item`, in a module with `items` that the walk has not reached, may still apply to the
/// code it follows: a trait (its methods are called by name), a `macro_rules!` macro (in scope
/// further down the crate), a function exported by symbol (`#[unsafe(no_mangle)]`), or an `impl` block for a type that module does not define itself
/// (`impl Fric for f64`, `impl super::Pt`, `impl Add for Flow` with `Flow` imported). An impl for
/// the module's own type is reached with the module, when followed code names the type.
fn applies_everywhere(item: &Item, items: &[&Item]) -> bool {
    match item {
        // A macro definition, or a call that may define an impl (`impl_area!(Meters, 3.0);`).
        Item::Trait(_) | Item::Macro(_) => true,
        // Called through an `extern "C"` declaration, from any module.
        Item::Fn(f) => super::names::exported_symbol(f).is_some(),
        Item::Impl(imp) => {
            let own_type = match &*imp.self_ty {
                syn::Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
                    Some(&p.path.segments[0].ident)
                }
                _ => None,
            };
            !own_type.is_some_and(|ty| {
                // A type alias's impl is an impl of the aliased type, wherever that is.
                items.iter().any(|other| {
                    kind_and_name(other).is_some_and(|(kind, name)| kind != "fn" && kind != "type" && *ty == name)
                })
            })
        }
        _ => false,
    }
}

/// An item a walk can cover: its label (without the `#2` of same-named items), the item, the
/// module it is in, the file it is written in, and its index in the pool when that module is in
/// it.
struct Entry<'f> {
    label: String,
    item: &'f Item,
    module: Vec<String>,
    file: &'f Path,
    pooled: Option<usize>,
}

/// One pass over a set of modules of the crate: what the target covers among their items (and
/// among the impls, traits and macros of every other module), and which further modules it
/// reaches.
struct Walk<'w, 'f> {
    files: &'w FileModules<'f>,
    pool: &'w [Vec<String>],
    names: &'w CrateNames,
    entries: Vec<Entry<'f>>,
    /// Lookup name (`State`, `.advance` for a method, `Winter` for a variant) -> entries.
    by_name: BTreeMap<String, Vec<usize>>,
    /// The imports of each pool module.
    imports: Vec<Imports>,
    /// Imports from outside the crate that the code names: label -> path.
    external: BTreeMap<String, String>,
    not_followed: BTreeSet<String>,
    /// Attributes of the imports the code goes through (their `cfg`s are build facts).
    import_attrs: Vec<TokenStream>,
    more: Vec<Vec<String>>,
}

impl<'w, 'f> Walk<'w, 'f> {
    fn new(files: &'w FileModules<'f>, pool: &'w [Vec<String>], target: &Target<'_>, names: &'w CrateNames) -> Self {
        let mut walk = Walk {
            files,
            pool,
            names,
            entries: Vec::new(),
            by_name: BTreeMap::new(),
            imports: Vec::new(),
            external: BTreeMap::new(),
            not_followed: BTreeSet::new(),
            import_attrs: Vec::new(),
            more: Vec::new(),
        };
        for (m, path) in pool.iter().enumerate() {
            let module = files.module(path).expect("only modules of the crate join the pool");
            for (item, file) in module.items() {
                if m == 0 && kind_and_name(item).is_some_and(|(k, n)| k == target.kind && n == target.name) {
                    continue;
                }
                walk.add(item, path, file, Some(m));
                for inner in nested_items(item) {
                    if matches!(inner, Item::Impl(_)) {
                        walk.add(inner, path, file, Some(m));
                    }
                }
            }
            let imports = Imports::of(module.items().map(|(item, _)| item));
            for glob in &imports.globs {
                walk.reach(m, glob, &format!("{}::*", glob.join("::")));
            }
            walk.imports.push(imports);
        }
        for (path, module) in &files.modules {
            if pool.contains(path) {
                continue;
            }
            let items = files.items_at(path);
            for (item, file) in module.items() {
                if applies_everywhere(item, &items) {
                    walk.add(item, path, file, None);
                }
                for inner in nested_items(item) {
                    if applies_everywhere(inner, &items) {
                        walk.add(inner, path, file, None);
                    }
                }
            }
        }
        walk
    }

    fn add(&mut self, item: &'f Item, module: &[String], file: &'f Path, pooled: Option<usize>) {
        let dir = file.parent().unwrap_or_else(|| Path::new(""));
        let Some((label, names)) = lookup_names(item, self.names, dir) else { return };
        let suffix = relative(&self.pool[0], module).map(|rel| format!(" in {rel}")).unwrap_or_default();
        for name in names {
            self.by_name.entry(name).or_default().push(self.entries.len());
        }
        self.entries.push(Entry { label: format!("{label}{suffix}"), item, module: module.to_vec(), file, pooled });
    }

    /// Note where `segments`, written in pool module `m`, lead: a new module joins the next
    /// pass, a module whose file cannot be read is reported as `shown`. Returns whether the path
    /// leads out of the crate.
    fn reach(&mut self, m: usize, segments: &[String], shown: &str) -> bool {
        let mut reached = self.files.reach(&self.pool[m], segments);
        if reached == Reach::External && segments.len() > 1 {
            // `use crate::physics::*;` then `forces::friction()`: a module a glob brings in.
            for glob in &self.imports.get(m).map(|i| i.globs.clone()).unwrap_or_default() {
                let through: Vec<String> = glob.iter().chain(segments).cloned().collect();
                if let found @ Reach::Module(_) = self.files.reach(&self.pool[m], &through) {
                    reached = found;
                    break;
                }
            }
        }
        match reached {
            Reach::Module(path) => {
                self.join(path);
                false
            }
            Reach::Elsewhere => {
                self.not_followed.insert(shown.to_owned());
                false
            }
            Reach::External => true,
        }
    }

    fn join(&mut self, path: Vec<String>) {
        if !self.pool.contains(&path) && !self.more.contains(&path) {
            self.more.push(path);
        }
    }

    fn reach_paths(&mut self, m: usize, tokens: TokenStream) {
        let mut paths = Vec::new();
        self.imports[m].paths(tokens, &mut paths);
        for path in paths {
            self.reach(m, &path, &path.join("::"));
        }
    }

    /// A `macro_rules!` body's paths (`util::halve($x)`) resolve where the macro is called: from
    /// every pool module, joining the modules they reach there (other outcomes are not reports:
    /// the path may be meant for another call site).
    fn reach_call_site_paths(&mut self, tokens: TokenStream) {
        for m in 0..self.pool.len() {
            let mut paths = Vec::new();
            self.imports[m].paths(tokens.clone(), &mut paths);
            for path in paths {
                if let Reach::Module(module) = self.files.reach(&self.pool[m], &path) {
                    self.join(module);
                }
            }
        }
    }

    fn run(mut self, target_tokens: TokenStream) -> (Scope, Vec<Vec<String>>) {
        let (mut seen, mut locals) = (BTreeSet::new(), BTreeSet::new());
        identifiers_and_locals(target_tokens.clone(), &mut seen, &mut locals);
        self.reach_paths(0, target_tokens.clone());
        let mut queue: VecDeque<String> = seen.iter().cloned().collect();
        // Names used only as locals that shadow them: looked up last, and they reach every item
        // of their name but a function (imports included, which errs towards covering).
        let mut local_queue: VecDeque<String> = locals.difference(&seen).cloned().collect();
        let mut covered = BTreeSet::new();
        loop {
            let (name, as_local) = match queue.pop_front() {
                Some(name) => (name, false),
                None => match local_queue.pop_front() {
                    Some(name) if !seen.contains(&name) => (name, true),
                    Some(_) => continue,
                    None => break,
                },
            };
            // An imported name: its module joins (or is reported; an import from another crate
            // is covered by its path), and under a rename (`use super::RATE as R;`) the
            // original name is looked up too.
            for m in 0..self.pool.len() {
                for path in self.imports[m].names.get(&name).cloned().unwrap_or_default() {
                    if self.reach(m, &path, &path.join("::")) && switch_matters(&name, &path) {
                        let suffix =
                            relative(&self.pool[0], &self.pool[m]).map(|r| format!(" in {r}")).unwrap_or_default();
                        // Two imports of one name under opposite `cfg`s: both paths count.
                        let shown = self.external.entry(format!("use {name}{suffix}")).or_default();
                        *shown =
                            if shown.is_empty() { path.join("::") } else { format!("{shown} | {}", path.join("::")) };
                    }
                    queue.extend(path.last().filter(|original| seen.insert((*original).clone())).cloned());
                }
                self.import_attrs.extend(self.imports[m].attrs.get(&name).cloned());
            }
            let found = self.by_name.get(&name).cloned().unwrap_or_default();
            for index in found {
                // A name used only where a parameter or `let` of it is in scope reaches every item
                // but a function: that is what the local shadows (a const or static of the name
                // cannot be shadowed by one: the pattern would not compile).
                let shadowed = as_local && matches!(self.entries[index].item, Item::Fn(_));
                if !shadowed && !covered.contains(&index) {
                    self.cover(index, &mut covered, &mut seen, &mut queue, &mut locals, &mut local_queue);
                }
            }
        }
        let scope = self.scope(&covered, target_tokens);
        (scope, self.more)
    }

    /// Cover entry `index`: its module joins, and the names it uses are queued.
    fn cover(
        &mut self,
        index: usize,
        covered: &mut BTreeSet<usize>,
        seen: &mut BTreeSet<String>,
        queue: &mut VecDeque<String>,
        locals: &mut BTreeSet<String>,
        local_queue: &mut VecDeque<String>,
    ) {
        covered.insert(index);
        let item = self.entries[index].item;
        match self.entries[index].pooled {
            Some(m) => self.reach_paths(m, item.to_token_stream()),
            None => self.join(self.entries[index].module.clone()),
        }
        if let Item::Macro(rules) = item
            && rules.ident.is_some()
        {
            self.reach_call_site_paths(rules.mac.tokens.clone());
        }
        let (mut names, mut item_locals) = (BTreeSet::new(), BTreeSet::new());
        identifiers_and_locals(item.to_token_stream(), &mut names, &mut item_locals);
        queue.extend(names.into_iter().filter(|n| seen.insert(n.clone())));
        local_queue.extend(item_locals.into_iter().filter(|n| locals.insert(n.clone())));
    }

    /// The covered items, their included files and build settings, and the imports from other
    /// crates, labelled. Same-labelled items (several `impl State` blocks) are numbered in the
    /// order of their hashes, so moving them around the file changes nothing.
    fn scope(&mut self, covered: &BTreeSet<usize>, target_tokens: TokenStream) -> Scope {
        let dir_of = |file: &Path| file.parent().unwrap_or_else(|| Path::new("")).to_owned();
        let mut by_label: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut files = Vec::new();
        let mut build = Vec::new();
        // The target is in the macro's own file.
        included(target_tokens.clone(), &dir_of(self.files.home_file), &mut files);
        build_facts(target_tokens, &mut build);
        let mut modules: BTreeSet<&[String]> = self.pool.iter().map(Vec::as_slice).collect();
        for &index in covered {
            let Entry { label, item, module, file, .. } = &self.entries[index];
            by_label.entry(label).or_default().push(hash_tokens(item.to_token_stream()));
            included(item.to_token_stream(), &dir_of(file), &mut files);
            build_facts(item.to_token_stream(), &mut build);
            modules.insert(module);
        }
        // Which declaration of a module (`#[cfg(feature = "fast")] mod imp;`) or import the build
        // picks is a build fact, for the modules the code is in and every module around them.
        for module in modules {
            for depth in 1..=module.len() {
                build_facts(
                    self.files.module(&module[..depth]).map(|m| m.attrs.clone()).unwrap_or_default(),
                    &mut build,
                );
            }
        }
        for attrs in &self.import_attrs {
            build_facts(attrs.clone(), &mut build);
        }
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for (label, mut hashes) in by_label {
            hashes.sort();
            for (k, hash) in hashes.into_iter().enumerate() {
                out.insert(if k == 0 { label.to_owned() } else { format!("{label} #{}", k + 1) }, hash);
            }
        }
        for (label, path) in &self.external {
            out.insert(format!("{label} = {path}"), hash_tokens(path.parse().unwrap_or_default()));
        }
        for file in files {
            match file.hash {
                Some(hash) => out.insert(file.label, hash),
                None => self.not_followed.insert(file.label).then_some(String::new()),
            };
        }
        let mut seen = BTreeSet::new();
        build.retain(|fact| seen.insert(fact.label()));
        build.sort_by_key(BuildFact::label);
        Scope {
            covered: out.into_iter().map(|(label, hash)| Covered { label, hash }).collect(),
            not_followed: std::mem::take(&mut self.not_followed).into_iter().collect(),
            build,
            aliases: BTreeMap::new(),
        }
    }
}

/// Whether an import from another crate is part of the identity: when it renames (`use
/// std::f64::consts::PI as ANGLE;`) or imports a constant (`use std::f64::consts::PI;`), where
/// switching the path silently changes a value. Other imports of other crates are not listed.
fn switch_matters(name: &str, path: &[String]) -> bool {
    let constant = name.chars().any(|c| c.is_ascii_uppercase()) && !name.chars().any(|c| c.is_ascii_lowercase());
    constant || path.last().is_some_and(|original| original != name)
}

/// `module` as seen from `home` (`super`, `inner`, `super::other`), `None` when it is `home`.
fn relative(home: &[String], module: &[String]) -> Option<String> {
    // A module of the package library, by the library's name (`my_model::physics`).
    if let Some(lib) = module.first().and_then(|first| first.strip_prefix("::"))
        && home.first() != module.first()
    {
        return Some(std::iter::once(lib).chain(module[1..].iter().map(String::as_str)).collect::<Vec<_>>().join("::"));
    }
    let common = home.iter().zip(module).take_while(|(a, b)| a == b).count();
    let ups = std::iter::repeat_n("super".to_owned(), home.len() - common);
    let path: Vec<String> = ups.chain(module[common..].iter().cloned()).collect();
    if path.is_empty() { None } else { Some(path.join("::")) }
}

/// The code identity of an item and the items it covers: its own token hash when it covers
/// nothing (so steps that use nothing keep their identity), else blake3 over both.
pub fn combined_hash(own: &str, covered: &[Covered]) -> String {
    if covered.is_empty() {
        return own.to_owned();
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"consist-code-scope-v1");
    let mut put = |text: &str| {
        hasher.update(&(text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    };
    put(own);
    for c in covered {
        put(&c.label);
        put(&c.hash);
    }
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests;
