//! Code identity that follows what a step uses: the items of its source file that it names.
//!
//! `#[step]` and `#[helper]` read the source file they are expanded in, find the module that
//! defines the annotated item, and fold into its code identity, transitively, every item the item
//! refers to: consts, statics, functions, structs, enums, unions, type aliases, traits,
//! `macro_rules!` macros, and `impl` blocks, found by the name of their type or trait or by the
//! name of a method the code calls (`col.total()` reaches `impl ColExt for Column`). The search
//! widens to every inline module of the same file that followed code reaches by a path or a
//! `use` (globs included, `use super::*;`), and each file an item bakes in with `include_str!`,
//! `include_bytes!` or `include!` counts by its bytes ([`crate::includes`]).
//! Each covered item is hashed with the same token walk as the step itself ([`crate::hash`]), so
//! comments and formatting never count, and it is reported by label (`const CONTACT_SCALE`) so a
//! miss can say which item changed.
//!
//! Names are matched as identifiers, without type resolution: a local variable or a method of a
//! foreign type that shares a name with an item makes that item covered too. That errs towards
//! invalidating (a needless re-run). Modules of other files and other crates are not followed;
//! a step declares them with `uses = [path]` (each marked `#[helper]`, which follows its own
//! module), and what it uses there without declaring it is listed by `consist steps`.
//! Identifiers inside string literals (`format!("{SCALE}")`) count as references.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Item, ItemMod};

use crate::hash::hash_tokens;
use crate::includes::included;
use crate::modules::{FileModules, Imports, Reach, is_crate_root};

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

/// The item kind and name of `item`, if it is a named item that can be referenced.
pub fn kind_and_name(item: &Item) -> Option<(&'static str, String)> {
    let named = |kind: &'static str, ident: &syn::Ident| Some((kind, ident.to_string()));
    match item {
        Item::Fn(i) => named("fn", &i.sig.ident),
        Item::Const(i) => named("const", &i.ident),
        Item::Static(i) => named("static", &i.ident),
        Item::Struct(i) => named("struct", &i.ident),
        Item::Enum(i) => named("enum", &i.ident),
        Item::Union(i) => named("union", &i.ident),
        Item::Type(i) => named("type", &i.ident),
        Item::Trait(i) => named("trait", &i.ident),
        Item::TraitAlias(i) => named("trait", &i.ident),
        Item::Macro(i) => i.ident.as_ref().and_then(|id| named("macro_rules!", id)),
        _ => None,
    }
}

/// Tokens of `item` without its outer attributes (what identifies it among same-named items).
pub fn without_attrs(item: &Item) -> TokenStream {
    let mut item = item.clone();
    if let Some(attrs) = attrs_mut(&mut item) {
        attrs.clear();
    }
    item.into_token_stream()
}

fn attrs_mut(item: &mut Item) -> Option<&mut Vec<syn::Attribute>> {
    Some(match item {
        Item::Fn(i) => &mut i.attrs,
        Item::Const(i) => &mut i.attrs,
        Item::Static(i) => &mut i.attrs,
        Item::Struct(i) => &mut i.attrs,
        Item::Enum(i) => &mut i.attrs,
        Item::Union(i) => &mut i.attrs,
        Item::Type(i) => &mut i.attrs,
        Item::Trait(i) => &mut i.attrs,
        Item::TraitAlias(i) => &mut i.attrs,
        Item::Macro(i) => &mut i.attrs,
        Item::Impl(i) => &mut i.attrs,
        _ => return None,
    })
}

/// The last identifier of a type's path (`Vec<State>` -> `Vec`, `crate::m::State` -> `State`).
fn type_name(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        syn::Type::Reference(r) => type_name(&r.elem),
        syn::Type::Paren(p) => type_name(&p.elem),
        syn::Type::Group(g) => type_name(&g.elem),
        _ => None,
    }
}

/// Label and lookup names of an `impl` block: `impl State` (found by `State`), `impl Display for
/// State` (found by `State` and by `Display`), `impl Stats for [f64]` (found by `Stats`; a type
/// that is not a path is labelled by its tokens and found by no name of its own).
fn impl_label(item: &syn::ItemImpl) -> (String, Vec<String>) {
    let self_name = type_name(&item.self_ty);
    let shown = self_name.clone().unwrap_or_else(|| compact(item.self_ty.to_token_stream()));
    let mut names: Vec<String> = self_name.into_iter().collect();
    match &item.trait_ {
        Some((_, path, _)) => {
            let trait_name = path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
            names.push(trait_name.clone());
            (format!("impl {trait_name} for {shown}"), names)
        }
        None => (format!("impl {shown}"), names),
    }
}

/// Tokens as text without the spaces `to_string` puts between punctuation (`[f64]`, `&'a str`).
fn compact(tokens: TokenStream) -> String {
    let text = tokens.to_string();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' && !(word(out.chars().last()) && word(chars.peek().copied())) {
            continue;
        }
        out.push(c);
    }
    out
}

/// Every identifier in `tokens`, including `{name}` / `{name:..}` placeholders inside string
/// literals (inline format arguments), plus `.name` for each name in method position
/// (`x.total()`), which reaches the `impl` blocks and traits that define a method `total`.
pub fn identifiers(tokens: TokenStream, out: &mut BTreeSet<String>) {
    let is_dot = |tree: Option<&TokenTree>| matches!(tree, Some(TokenTree::Punct(p)) if p.as_char() == '.');
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(ident) => {
                let text = ident.to_string();
                let text = text.strip_prefix("r#").map(str::to_owned).unwrap_or(text);
                let before = |back: usize| i.checked_sub(back).and_then(|k| trees.get(k));
                if is_dot(before(1)) && !is_dot(before(2)) {
                    out.insert(format!(".{text}"));
                }
                out.insert(text);
            }
            TokenTree::Group(g) => identifiers(g.stream(), out),
            TokenTree::Literal(l) => format_placeholders(&l.to_string(), out),
            TokenTree::Punct(_) => {}
        }
    }
}

fn format_placeholders(literal: &str, out: &mut BTreeSet<String>) {
    if !literal.ends_with('"') {
        return;
    }
    let bytes = literal.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            if bytes.get(i + 1) == Some(&b'{') {
                i += 2;
                continue;
            }
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            let starts_like_name = bytes.get(start).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
            if end > start && starts_like_name && matches!(bytes.get(end), Some(b'}' | b':')) {
                out.insert(literal[start..end].to_owned());
            }
            i = end;
        } else {
            i += 1;
        }
    }
}

/// The path (outermost first) of the module that defines `target` (the file's top level or an
/// inline `mod`): the module open at the macro's line when it defines the target, else any module
/// that does, preferring the one whose item has the target's exact tokens.
fn defining_module(files: &FileModules<'_>, target: &Target<'_>) -> Option<Vec<String>> {
    let defines = |items: &[Item]| {
        items.iter().any(|item| kind_and_name(item).is_some_and(|(k, n)| k == target.kind && n == target.name))
    };
    if files.items_at(&target.module).is_some_and(defines) {
        return Some(target.module.clone());
    }
    let mut candidates: Vec<(Vec<String>, &Item)> = Vec::new();
    collect_candidates(files.items, &mut Vec::new(), target, &mut candidates);
    let exact = candidates.iter().position(|(_, item)| hash_tokens(without_attrs(item)) == target.hash);
    let index = exact.or(if candidates.is_empty() { None } else { Some(0) })?;
    Some(candidates.swap_remove(index).0)
}

fn collect_candidates<'f>(
    items: &'f [Item],
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
    /// Items it covers (of its own module, of the inline modules of its file it reaches, and the
    /// files they include), sorted by label.
    pub covered: Vec<Covered>,
    /// Code it uses but cannot follow: paths into modules of other files (`plots::line_chart`,
    /// `crate::physics::SCALE`, or `model::MODES` for a `use`d `MODES`), glob imports of such
    /// modules (`crate::physics::*`), and include paths it cannot work out. Not followed unless
    /// declared with `uses`.
    pub not_followed: Vec<String>,
}

/// The items of `source` (the whole file at `path`) that `target` refers to, transitively, and
/// what it uses but cannot follow. `target_tokens` are the tokens the target itself is hashed
/// from. An error says why nothing could be followed (the file does not parse, or does not define
/// the target).
///
/// The search starts in the module that defines the target and widens to every inline module of
/// the same file that a followed module reaches: through glob imports (`use super::*;`), imports
/// of names (`use super::SCALE;`) and paths (`inner::f()`). Modules of other files are reported.
pub fn covered(source: &str, path: &Path, target: &Target<'_>, target_tokens: TokenStream) -> Result<Scope, String> {
    let file = syn::parse_file(source).map_err(|e| format!("the source file does not parse ({e})"))?;
    let files = FileModules { items: &file.items, crate_root: is_crate_root(path) };
    let home = defining_module(&files, target).ok_or_else(|| {
        format!("`{} {}` is not defined in its source file (generated code?)", target.kind, target.name)
    })?;
    let dir = path.parent().unwrap_or_else(|| Path::new(""));
    let mut pool = vec![home];
    loop {
        let (scope, more) = Walk::new(&files, &pool, target).run(target_tokens.clone(), dir);
        if more.is_empty() {
            return Ok(scope);
        }
        pool.extend(more);
    }
}

/// One pass over a set of modules of the file: what the target covers among their items, and
/// which further inline modules it reaches.
struct Walk<'w, 'f> {
    files: &'w FileModules<'f>,
    pool: &'w [Vec<String>],
    /// Label, item and index into `pool` of every referenceable item of the pool.
    entries: Vec<(String, &'f Item, usize)>,
    /// Lookup name (`State`, `.advance` for a method, `Winter` for a variant) -> entries.
    by_name: BTreeMap<String, Vec<usize>>,
    /// The imports of each pool module.
    imports: Vec<Imports>,
    not_followed: BTreeSet<String>,
    more: Vec<Vec<String>>,
}

impl<'w, 'f> Walk<'w, 'f> {
    fn new(files: &'w FileModules<'f>, pool: &'w [Vec<String>], target: &Target<'_>) -> Self {
        let mut walk = Walk {
            files,
            pool,
            entries: Vec::new(),
            by_name: BTreeMap::new(),
            imports: Vec::new(),
            not_followed: BTreeSet::new(),
            more: Vec::new(),
        };
        for (m, path) in pool.iter().enumerate() {
            let items = files.items_at(path).expect("only modules of the file join the pool");
            let suffix = relative(&pool[0], path).map(|rel| format!(" in {rel}")).unwrap_or_default();
            for item in items {
                let Some((label, names)) = lookup_names(item) else { continue };
                if m == 0 && kind_and_name(item).is_some_and(|(k, n)| k == target.kind && n == target.name) {
                    continue;
                }
                let label = format!("{label}{suffix}");
                let same =
                    walk.entries.iter().filter(|(l, ..)| *l == label || l.starts_with(&format!("{label} #"))).count();
                let label = if same == 0 { label } else { format!("{label} #{}", same + 1) };
                for name in names {
                    walk.by_name.entry(name).or_default().push(walk.entries.len());
                }
                walk.entries.push((label, item, m));
            }
            let imports = Imports::of(items);
            for glob in &imports.globs {
                walk.reach(m, glob, &format!("{}::*", glob.join("::")));
            }
            walk.imports.push(imports);
        }
        walk
    }

    /// Note where `segments`, written in pool module `m`, lead: a new inline module joins the
    /// next pass, a module of another file is reported as `shown`.
    fn reach(&mut self, m: usize, segments: &[String], shown: &str) {
        match self.files.reach(&self.pool[m], segments) {
            Reach::Inline(path) => {
                if !self.pool.contains(&path) && !self.more.contains(&path) {
                    self.more.push(path);
                }
            }
            Reach::Elsewhere => {
                self.not_followed.insert(shown.to_owned());
            }
            Reach::External => {}
        }
    }

    fn reach_paths(&mut self, m: usize, tokens: TokenStream) {
        let mut paths = Vec::new();
        self.imports[m].paths(tokens, &mut paths);
        for path in paths {
            self.reach(m, &path, &path.join("::"));
        }
    }

    fn run(mut self, target_tokens: TokenStream, dir: &Path) -> (Scope, Vec<Vec<String>>) {
        let mut seen = BTreeSet::new();
        identifiers(target_tokens.clone(), &mut seen);
        self.reach_paths(0, target_tokens.clone());
        let mut queue: VecDeque<String> = seen.iter().cloned().collect();
        let mut covered = BTreeSet::new();
        while let Some(name) = queue.pop_front() {
            // An imported name: its module joins (or is reported), and under a rename
            // (`use super::RATE as R;`) the original name is looked up too.
            for m in 0..self.pool.len() {
                if let Some(path) = self.imports[m].names.get(&name).cloned() {
                    self.reach(m, &path, &path.join("::"));
                    queue.extend(path.last().filter(|original| seen.insert((*original).clone())).cloned());
                }
            }
            let found = self.by_name.get(&name).cloned().unwrap_or_default();
            for index in found {
                if !covered.insert(index) {
                    continue;
                }
                let (_, item, m) = self.entries[index];
                let mut names = BTreeSet::new();
                identifiers(item.to_token_stream(), &mut names);
                self.reach_paths(m, item.to_token_stream());
                queue.extend(names.into_iter().filter(|n| seen.insert(n.clone())));
            }
        }
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        let mut files = Vec::new();
        included(target_tokens, dir, &mut files);
        for &index in &covered {
            let (label, item, _) = &self.entries[index];
            out.insert(label.clone(), hash_tokens(item.to_token_stream()));
            included(item.to_token_stream(), dir, &mut files);
        }
        for file in files {
            match file.hash {
                Some(hash) => out.insert(file.label, hash),
                None => self.not_followed.insert(file.label).then_some(String::new()),
            };
        }
        let covered = out.into_iter().map(|(label, hash)| Covered { label, hash }).collect();
        let scope = Scope { covered, not_followed: self.not_followed.into_iter().collect() };
        (scope, self.more)
    }
}

/// `module` as seen from `home` (`super`, `inner`, `super::other`), `None` when it is `home`.
fn relative(home: &[String], module: &[String]) -> Option<String> {
    let common = home.iter().zip(module).take_while(|(a, b)| a == b).count();
    let ups = std::iter::repeat_n("super".to_owned(), home.len() - common);
    let path: Vec<String> = ups.chain(module[common..].iter().cloned()).collect();
    if path.is_empty() { None } else { Some(path.join("::")) }
}

/// The label of an item and the names that reach it: its own name; for an `impl` block its
/// type's and trait's names and `.method` for each of its functions (so `col.total()` reaches
/// `impl ColExt for Column` without naming either); for a trait `.method` for each of its
/// functions; for an enum the names of its variants (reached through `use Season::*;`).
fn lookup_names(item: &Item) -> Option<(String, Vec<String>)> {
    let methods = |names: &mut Vec<String>, fns: &mut dyn Iterator<Item = &syn::Ident>| {
        names.extend(fns.map(|f| format!(".{f}")));
    };
    Some(match item {
        Item::Impl(imp) => {
            let (label, mut names) = impl_label(imp);
            methods(
                &mut names,
                &mut imp.items.iter().filter_map(|i| match i {
                    syn::ImplItem::Fn(f) => Some(&f.sig.ident),
                    _ => None,
                }),
            );
            (label, names)
        }
        other => {
            let (kind, name) = kind_and_name(other)?;
            let mut names = vec![name.clone()];
            match other {
                Item::Trait(t) => methods(
                    &mut names,
                    &mut t.items.iter().filter_map(|i| match i {
                        syn::TraitItem::Fn(f) => Some(&f.sig.ident),
                        _ => None,
                    }),
                ),
                Item::Enum(e) => names.extend(e.variants.iter().map(|v| v.ident.to_string())),
                _ => {}
            }
            (format!("{kind} {name}"), names)
        }
    })
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
mod tests {
    use super::*;

    /// The labels and combined hash of the step `sir` in `source`, a file `src/model.rs`.
    fn identity(source: &str) -> (Vec<String>, String) {
        let (labels, hash, _) = identity_at(source, Path::new("src/model.rs"));
        (labels, hash)
    }

    /// The labels, combined hash and unfollowed code of the step `sir` in `source` at `path`.
    fn identity_at(source: &str, path: &Path) -> (Vec<String>, String, Vec<String>) {
        let file = syn::parse_file(source).unwrap();
        let step = find_fn(&file.items, "sir").expect("the test source defines fn sir");
        let line = source.lines().position(|l| l.contains("fn sir(")).unwrap() + 1;
        let target = Target {
            name: "sir",
            kind: "fn",
            hash: hash_tokens(without_attrs(&Item::Fn(step.clone()))),
            module: crate::open_modules::module_path_at(source, line),
        };
        let (sig, block) = (&step.sig, &step.block);
        let own = hash_tokens(quote::quote!(#sig #block));
        let scope = covered(source, path, &target, quote::quote!(#sig #block)).unwrap();
        let labels = scope.covered.iter().map(|c| c.label.clone()).collect();
        (labels, combined_hash(&own, &scope.covered), scope.not_followed)
    }

    fn find_fn<'a>(items: &'a [Item], name: &str) -> Option<&'a syn::ItemFn> {
        items.iter().find_map(|item| match item {
            Item::Fn(f) if f.sig.ident == name => Some(f),
            Item::Mod(ItemMod { content: Some((_, inner)), .. }) => find_fn(inner, name),
            _ => None,
        })
    }

    const MODEL: &str = r#"
        use consist::step;
        const CONTACT_SCALE: f64 = 1.0;
        const UNRELATED: i32 = 7;
        static NAMES: [&str; 2] = ["s", "i"];
        struct State { s: f64, i: f64 }
        impl State {
            fn advance(&self, beta: f64) -> State { State { s: self.s - infect(beta, self), i: self.i } }
        }
        fn infect(beta: f64, st: &State) -> f64 { beta * st.s * st.i * rate() }
        fn rate() -> f64 { 0.5 }
        fn unused() -> f64 { 1.0 }
        macro_rules! twice { ($e:expr) => { $e * 2.0 } }
        #[step(outputs = ["s"])]
        fn sir(beta: f64) -> f64 {
            let st = State { s: 1.0, i: 0.1 }.advance(beta * CONTACT_SCALE);
            println!("{NAMES:?}");
            twice!(st.s)
        }
    "#;

    #[test]
    fn follows_consts_statics_types_impls_helpers_of_helpers_and_macros() {
        let (labels, _) = identity(MODEL);
        assert_eq!(
            labels,
            [
                "const CONTACT_SCALE",
                "fn infect",
                "fn rate",
                "impl State",
                "macro_rules! twice",
                "static NAMES",
                "struct State"
            ]
        );
    }

    #[test]
    fn every_covered_edit_changes_the_identity_and_nothing_else_does() {
        let (_, base) = identity(MODEL);
        for edit in [
            MODEL.replace("CONTACT_SCALE: f64 = 1.0", "CONTACT_SCALE: f64 = 2.0"),
            MODEL.replace("{ 0.5 }", "{ 0.25 }"),
            MODEL.replace("struct State { s: f64, i: f64 }", "struct State { s: f64, i: f64, r: f64 }"),
            MODEL.replace("self.s - infect", "self.s + infect"),
            MODEL.replace("[\"s\", \"i\"]", "[\"S\", \"I\"]"),
            MODEL.replace("$e * 2.0", "$e * 3.0"),
        ] {
            assert_ne!(identity(&edit).1, base, "{edit}");
        }
        for same in [
            MODEL.replace("UNRELATED: i32 = 7", "UNRELATED: i32 = 8"),
            MODEL.replace("fn unused() -> f64 { 1.0 }", "fn unused() -> f64 { 2.0 }"),
            MODEL.replace("fn rate() -> f64 { 0.5 }", "/// The rate.\nfn rate() -> f64 {\n    // half\n    0.5\n}"),
            MODEL.replace("struct State { s: f64, i: f64 }", "struct State {\n    s: f64,\n    i: f64,\n}"),
        ] {
            assert_eq!(identity(&same).1, base, "{same}");
        }
    }

    #[test]
    fn a_step_that_uses_nothing_keeps_its_token_hash() {
        let source = "const X: i32 = 1;\nfn sir(beta: f64) -> f64 { beta * 2.0 }";
        let (labels, hash) = identity(source);
        assert!(labels.is_empty());
        assert_eq!(
            hash,
            hash_tokens(quote::quote!(
                fn sir(beta: f64) -> f64 {
                    beta * 2.0
                }
            ))
        );
    }

    #[test]
    fn only_the_defining_module_is_searched() {
        let source = r#"
            const SCALE: f64 = 1.0;
            mod inner {
                const SCALE: f64 = 3.0;
                fn sir(x: f64) -> f64 { x * SCALE }
            }
        "#;
        let base = identity(source).1;
        assert_ne!(identity(&source.replace("3.0", "4.0")).1, base, "the module's own const counts");
        assert_eq!(identity(&source.replace("1.0", "5.0")).1, base, "the outer const is another module's");
    }

    #[test]
    fn identical_steps_in_sibling_modules_follow_their_own_module() {
        let source = r#"
            mod a {
                const SCALE: f64 = 1.0;
                fn sir(x: f64) -> f64 { x * SCALE }
            }
            mod b {
                const SCALE: f64 = 2.0;
                fn sir(x: f64) -> f64 { x * SCALE }
            }
        "#;
        let hash_in = |module: &str| {
            let target = Target { name: "sir", kind: "fn", hash: String::new(), module: vec![module.to_owned()] };
            covered(source, Path::new("src/model.rs"), &target, quote::quote!(x * SCALE)).unwrap().covered[0]
                .hash
                .clone()
        };
        assert_ne!(hash_in("a"), hash_in("b"));
    }

    #[test]
    fn format_placeholders_are_references() {
        let mut names = BTreeSet::new();
        format_placeholders(r#""{SCALE} {{literal}} {x:>8} {0} {}""#, &mut names);
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["SCALE", "x"]);
    }

    #[test]
    fn paths_into_other_local_modules_are_reported() {
        let source = r#"
            mod plots;
            use crate::physics::{SCALE, rate as r};
            use polars::prelude::DataFrame;
            fn helper() -> f64 { super::up::x() }
            fn sir(df: &DataFrame) -> f64 { plots::draw(df) * SCALE * r() + helper() + std::f64::consts::PI + other::y() }
        "#;
        let file = syn::parse_file(source).unwrap();
        let step = find_fn(&file.items, "sir").unwrap();
        let target = Target {
            name: "sir",
            kind: "fn",
            hash: hash_tokens(without_attrs(&Item::Fn(step.clone()))),
            module: Vec::new(),
        };
        let (sig, block) = (&step.sig, &step.block);
        let scope = covered(source, Path::new("src/model.rs"), &target, quote::quote!(#sig #block)).unwrap();
        assert_eq!(
            scope.not_followed,
            ["crate::physics::SCALE", "crate::physics::rate", "plots::draw", "super::up::x"]
        );
    }

    #[test]
    fn same_named_impls_get_distinct_labels() {
        let source = "struct S;\nimpl S { fn a() {} }\nimpl S { fn b() {} }\nfn sir() -> S { S }";
        assert_eq!(identity(source).0, ["impl S", "impl S #2", "struct S"]);
    }

    /// Every edit in `edits` (old, new) changes the identity of `sir` in `source`.
    fn assert_each_edit_invalidates(source: &str, edits: &[(&str, &str)]) {
        let base = identity(source).1;
        for (old, new) in edits {
            assert_eq!(source.matches(old).count(), 1, "{old} occurs once");
            assert_ne!(identity(&source.replace(old, new)).1, base, "editing `{old}` to `{new}` keeps the identity");
        }
    }

    #[test]
    fn methods_called_by_name_reach_their_impls_and_traits() {
        // An extension trait on a foreign type and on a slice: the step names neither the trait
        // nor the type, only the methods.
        let source = r#"
            trait ColExt { fn total(&self) -> f64; fn doubled(&self) -> f64 { self.total() * 2.0 } }
            impl ColExt for Column { fn total(&self) -> f64 { self.sum() * 1.0 } }
            trait Stats { fn mean(&self) -> f64; }
            impl Stats for [f64] { fn mean(&self) -> f64 { self.iter().sum::<f64>() / self.len() as f64 } }
            impl Other for Unrelated { fn elsewhere(&self) -> f64 { 0.0 } }
            fn sir(col: &Column, xs: &[f64]) -> f64 { col.doubled() + xs.mean() }
        "#;
        let (labels, _) = identity(source);
        assert_eq!(labels, ["impl ColExt for Column", "impl Stats for [f64]", "trait ColExt", "trait Stats"]);
        assert_each_edit_invalidates(
            source,
            &[("self.sum() * 1.0", "self.sum() * 3.0"), ("/ self.len() as f64", "/ 2.0"), ("* 2.0 }", "* 4.0 }")],
        );
        assert_eq!(identity(&source.replace("{ 0.0 }", "{ 1.0 }")).1, identity(source).1, "uncalled impls stay out");
    }

    #[test]
    fn glob_imported_variants_reach_their_enum_and_its_impl() {
        let source = r#"
            enum Season { Winter, Summer }
            use Season::*;
            impl Season { fn load(&self) -> f64 { match self { Winter => 1.2, Summer => 0.9 } } }
            fn sir() -> f64 { Winter.load() }
        "#;
        assert_eq!(identity(source).0, ["enum Season", "impl Season"]);
        assert_each_edit_invalidates(source, &[("Winter => 1.2", "Winter => 1.5"), ("Summer }", "Summer, Spring }")]);
    }

    #[test]
    fn inline_modules_of_the_file_are_followed_through_globs_imports_and_paths() {
        let source = r#"
            const SCALE: f64 = 1.0;
            const RATE: f64 = 0.5;
            mod inner { pub fn bump(x: f64) -> f64 { x + 1.0 } }
            mod model {
                use super::*;
                use super::RATE as R;
                fn sir(x: f64) -> f64 { super::inner::bump(x * SCALE) * R }
            }
        "#;
        let (labels, _, not_followed) = identity_at(source, Path::new("src/model.rs"));
        assert_eq!(labels, ["const RATE in super", "const SCALE in super", "fn bump in super::inner"]);
        assert!(not_followed.is_empty(), "{not_followed:?}");
        assert_each_edit_invalidates(source, &[("= 1.0;", "= 2.0;"), ("= 0.5;", "= 0.7;"), ("x + 1.0", "x + 2.0")]);
    }

    #[test]
    fn modules_of_other_files_are_reported_glob_or_not() {
        let source = r#"
            mod physics;
            use physics::*;
            use crate::model::MODES;
            mod local { use super::*; }
            fn sir() -> usize { MODES.len() + SCALE as usize }
        "#;
        let (_, _, not_followed) = identity_at(source, Path::new("src/model.rs"));
        assert_eq!(not_followed, ["crate::model::MODES", "physics::*"]);
        let (_, _, in_root) = identity_at(source, Path::new("src/main.rs"));
        assert_eq!(in_root, ["crate::model::MODES", "physics::*"], "`model` is not a module of main.rs either");
    }

    #[test]
    fn included_files_count_by_their_bytes() {
        let dir = std::env::temp_dir().join(format!("consist-scope-include-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("coeffs.txt"), "1.0 2.0").unwrap();
        let source = r#"
            const COEFFS: &str = include_str!("coeffs.txt");
            fn sir() -> usize { COEFFS.len() }
        "#;
        let path = dir.join("model.rs");
        let (labels, base, _) = identity_at(source, &path);
        assert_eq!(labels, ["const COEFFS", "file coeffs.txt"]);
        std::fs::write(dir.join("coeffs.txt"), "1.0 2.5").unwrap();
        assert_ne!(identity_at(source, &path).1, base, "editing the included file changes the identity");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
