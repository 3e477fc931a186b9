//! Code identity that follows what a step uses: the items of its own module that it names.
//!
//! `#[step]` and `#[helper]` read the source file they are expanded in, find the module that
//! defines the annotated item, and fold into its code identity, transitively, every item of that
//! module the item refers to by name: consts, statics, functions, structs, enums, unions, type
//! aliases, traits, `macro_rules!` macros, and the `impl` blocks of the types and traits it names.
//! Each covered item is hashed with the same token walk as the step itself ([`crate::hash`]), so
//! comments and formatting never count, and it is reported by label (`const CONTACT_SCALE`) so a
//! miss can say which item changed.
//!
//! Names are matched as identifiers, without type resolution: a local variable that shares a
//! name with an item makes that item covered too. That errs towards invalidating (a needless
//! re-run), never towards a stale hit. Items of other modules or crates are not followed; a step
//! declares them with `uses = [path]` (each marked `#[helper]`, which follows its own module).
//! Identifiers inside string literals (`format!("{SCALE}")`) count as references.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Item, ItemMod};

use crate::hash::hash_tokens;

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
/// State` (found by `State` and by `Display`).
fn impl_label(item: &syn::ItemImpl) -> (String, Vec<String>) {
    let self_name = type_name(&item.self_ty).unwrap_or_else(|| "_".to_owned());
    match &item.trait_ {
        Some((_, path, _)) => {
            let trait_name = path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
            (format!("impl {trait_name} for {self_name}"), vec![self_name, trait_name])
        }
        None => (format!("impl {self_name}"), vec![self_name]),
    }
}

/// Every identifier in `tokens`, including `{name}` / `{name:..}` placeholders inside string
/// literals (inline format arguments).
pub fn identifiers(tokens: TokenStream, out: &mut BTreeSet<String>) {
    for tree in tokens {
        match tree {
            TokenTree::Ident(i) => {
                let text = i.to_string();
                out.insert(text.strip_prefix("r#").map(str::to_owned).unwrap_or(text));
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

/// The inline modules (`mod name { .. }`) open at `line` of `source`, outermost first. A small
/// lexer: it skips comments, strings, raw strings and char literals, and counts braces.
pub fn module_path_at(source: &str, line: usize) -> Vec<String> {
    let bytes = source.as_bytes();
    let (mut i, mut current_line, mut depth) = (0usize, 1usize, 0usize);
    // (module name, brace depth inside it)
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut pending_mod: Option<String> = None;
    let mut last_word = String::new();
    while i < bytes.len() && current_line < line {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match b {
            b'\n' => {
                current_line += 1;
                i += 1;
            }
            b'/' if next == Some(b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if next == Some(b'*') => {
                let mut nesting = 0;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        nesting += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        nesting -= 1;
                        i += 2;
                        if nesting == 0 {
                            break;
                        }
                    } else {
                        current_line += usize::from(bytes[i] == b'\n');
                        i += 1;
                    }
                }
            }
            b'r' if (next == Some(b'"') || next == Some(b'#')) && !last_word_continues(bytes, i) => {
                let mut j = i + 1;
                let mut hashes = 0;
                while bytes.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if bytes.get(j) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                j += 1;
                let closing: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                while j < bytes.len() && !bytes[j..].starts_with(&closing) {
                    current_line += usize::from(bytes[j] == b'\n');
                    j += 1;
                }
                i = j + closing.len();
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    current_line += usize::from(bytes.get(i) == Some(&b'\n'));
                    i += 1;
                }
                i += 1;
            }
            b'\'' => {
                // A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
                if next == Some(b'\\') {
                    i += 2;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    let width = source[i + 1..].chars().next().map_or(1, char::len_utf8);
                    i += if bytes.get(i + 1 + width) == Some(&b'\'') { 2 + width } else { 1 };
                }
            }
            b'{' => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    open.push((name, depth));
                }
                i += 1;
            }
            b'}' => {
                if open.last().is_some_and(|(_, d)| *d == depth) {
                    open.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b';' => {
                pending_mod = None;
                i += 1;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &source[start..i];
                if last_word == "mod" {
                    pending_mod = Some(word.to_owned());
                }
                last_word = word.to_owned();
                continue;
            }
            _ => i += 1,
        }
        // Words `continue` above, so anything else but whitespace ends a `mod name` sequence.
        if !b.is_ascii_whitespace() {
            last_word.clear();
        }
    }
    open.into_iter().map(|(name, _)| name).collect()
}

/// Whether the byte at `i` continues an identifier (so `r"` there is not a raw string).
fn last_word_continues(bytes: &[u8], i: usize) -> bool {
    i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
}

/// The items of the inline module at `path` (outermost first) inside `items`.
fn module_at<'f>(items: &'f [Item], path: &[String]) -> Option<&'f [Item]> {
    let Some((first, rest)) = path.split_first() else { return Some(items) };
    items.iter().find_map(|item| match item {
        Item::Mod(ItemMod { ident, content: Some((_, inner)), .. }) if ident == first => module_at(inner, rest),
        _ => None,
    })
}

/// Find the items of the module that defines `target` (the file's top level or an inline `mod`):
/// the module open at the macro's line when it defines the target, else any module that does.
fn defining_module<'f>(items: &'f [Item], target: &Target<'_>) -> Option<&'f [Item]> {
    if let Some(module) = module_at(items, &target.module) {
        let here =
            module.iter().any(|item| kind_and_name(item).is_some_and(|(k, n)| k == target.kind && n == target.name));
        if here {
            return Some(module);
        }
    }
    let mut candidates: Vec<(&'f [Item], &'f Item)> = Vec::new();
    collect_candidates(items, target, &mut candidates);
    let exact = candidates.iter().find(|(_, item)| hash_tokens(without_attrs(item)) == target.hash);
    exact.or(candidates.first()).map(|(module, _)| *module)
}

fn collect_candidates<'f>(items: &'f [Item], target: &Target<'_>, out: &mut Vec<(&'f [Item], &'f Item)>) {
    for item in items {
        if let Some((kind, name)) = kind_and_name(item)
            && kind == target.kind
            && name == target.name
        {
            out.push((items, item));
        }
        if let Item::Mod(ItemMod { content: Some((_, inner)), .. }) = item {
            collect_candidates(inner, target, out);
        }
    }
}

/// What a code identity follows, and what it sees but cannot follow.
#[derive(Debug, Default)]
pub struct Scope {
    /// Items of the defining module it covers, sorted by label.
    pub covered: Vec<Covered>,
    /// Paths into other modules of the crate that the item or its covered items use
    /// (`plots::line_chart`, `crate::physics::SCALE`, or `model::MODES` for a `use`d `MODES`):
    /// not followed unless declared with `uses`.
    pub other_modules: Vec<String>,
}

/// The items of `source` (a whole file) that `target` refers to, transitively, and the paths into
/// other local modules they use. `target_tokens` are the tokens the target itself is hashed from.
/// An error says why nothing could be followed (the file does not parse, or does not define the
/// target).
pub fn covered(source: &str, target: &Target<'_>, target_tokens: TokenStream) -> Result<Scope, String> {
    let file = syn::parse_file(source).map_err(|e| format!("the source file does not parse ({e})"))?;
    let module = defining_module(&file.items, target).ok_or_else(|| {
        format!("`{} {}` is not defined in its source file (generated code?)", target.kind, target.name)
    })?;

    // name -> indices into `entries` (an impl block is found under its type's and trait's names).
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut entries: Vec<(String, &Item)> = Vec::new();
    for item in module {
        let (label, names) = match item {
            Item::Impl(imp) => impl_label(imp),
            other => match kind_and_name(other) {
                Some((kind, name)) if !(kind == target.kind && name == target.name) => {
                    (format!("{kind} {name}"), vec![name])
                }
                _ => continue,
            },
        };
        let same = entries.iter().filter(|(l, _)| *l == label || l.starts_with(&format!("{label} #"))).count();
        let label = if same == 0 { label } else { format!("{label} #{}", same + 1) };
        for name in names {
            by_name.entry(name).or_default().push(entries.len());
        }
        entries.push((label, item));
    }

    let local = LocalModules::of(module);
    let mut other_modules = BTreeSet::new();
    local.paths(target_tokens.clone(), &mut other_modules);
    let mut seen_names = BTreeSet::new();
    identifiers(target_tokens, &mut seen_names);
    let mut queue: VecDeque<String> = seen_names.iter().cloned().collect();
    let mut covered_entries = BTreeSet::new();
    while let Some(name) = queue.pop_front() {
        for &index in by_name.get(&name).map(Vec::as_slice).unwrap_or_default() {
            if !covered_entries.insert(index) {
                continue;
            }
            let mut names = BTreeSet::new();
            identifiers(entries[index].1.to_token_stream(), &mut names);
            local.paths(entries[index].1.to_token_stream(), &mut other_modules);
            for n in names {
                if seen_names.insert(n.clone()) {
                    queue.push_back(n);
                }
            }
        }
    }
    let mut out: Vec<Covered> = covered_entries
        .into_iter()
        .map(|i| Covered { label: entries[i].0.clone(), hash: hash_tokens(entries[i].1.to_token_stream()) })
        .collect();
    out.sort();
    Ok(Scope { covered: out, other_modules: other_modules.into_iter().collect() })
}

/// The other modules of the crate as a module sees them: its own `mod` items, and the names it
/// imports with `use crate::..`, `use super::..`, `use self::..` or `use <its mod>::..`.
struct LocalModules {
    mods: BTreeSet<String>,
    /// Imported name -> the path it was imported from.
    imports: BTreeMap<String, String>,
}

impl LocalModules {
    fn of(module: &[Item]) -> LocalModules {
        let mods: BTreeSet<String> = module
            .iter()
            .filter_map(|i| match i {
                Item::Mod(m) => Some(m.ident.to_string()),
                _ => None,
            })
            .collect();
        let mut imports = BTreeMap::new();
        for item in module {
            if let Item::Use(u) = item {
                flatten_use(&u.tree, &mut Vec::new(), &mut |path, name| {
                    let root = path.first().map(String::as_str).unwrap_or_default();
                    if ["crate", "super", "self"].contains(&root) || mods.contains(root) {
                        imports.insert(name, path.join("::"));
                    }
                });
            }
        }
        LocalModules { mods, imports }
    }

    fn is_local_root(&self, name: &str) -> bool {
        ["crate", "super", "self"].contains(&name) || self.mods.contains(name)
    }

    /// Add to `out` the paths of `tokens` that reach into other local modules.
    fn paths(&self, tokens: TokenStream, out: &mut BTreeSet<String>) {
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
                    if !after_path_sep {
                        if segments.len() > 1 && self.is_local_root(&segments[0]) {
                            out.insert(segments.join("::"));
                        } else if let Some(path) = self.imports.get(&segments[0]) {
                            out.insert(path.clone());
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

/// Call `found(path, local name)` for every name a `use` tree imports (globs are skipped).
fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, found: &mut dyn FnMut(Vec<String>, String)) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, found);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut path = prefix.clone();
            path.push(n.ident.to_string());
            found(path, n.ident.to_string());
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            path.push(r.ident.to_string());
            found(path, r.rename.to_string());
        }
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| flatten_use(t, prefix, found)),
        syn::UseTree::Glob(_) => {}
    }
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

    /// The labels and combined hash of the step `sir` in `source`.
    fn identity(source: &str) -> (Vec<String>, String) {
        let file = syn::parse_file(source).unwrap();
        let step = find_fn(&file.items, "sir").expect("the test source defines fn sir");
        let line = source.lines().position(|l| l.contains("fn sir(")).unwrap() + 1;
        let target = Target {
            name: "sir",
            kind: "fn",
            hash: hash_tokens(without_attrs(&Item::Fn(step.clone()))),
            module: module_path_at(source, line),
        };
        let (sig, block) = (&step.sig, &step.block);
        let own = hash_tokens(quote::quote!(#sig #block));
        let scope = covered(source, &target, quote::quote!(#sig #block)).unwrap();
        let labels = scope.covered.iter().map(|c| c.label.clone()).collect();
        (labels, combined_hash(&own, &scope.covered))
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
            covered(source, &target, quote::quote!(x * SCALE)).unwrap().covered[0].hash.clone()
        };
        assert_ne!(hash_in("a"), hash_in("b"));
    }

    #[test]
    fn module_path_at_skips_comments_strings_and_chars() {
        let source = "mod a {\n  // mod fake {\n  const S: &str = \"mod x { }\";\n  const C: char = '{';\n  fn f<'a>(x: &'a str) {}\n  mod b {\n    /* } */ const R: &str = r#\"}\"#;\n    fn target() {}\n  }\n  fn after() {}\n}\nfn top() {}\n";
        let line_of = |needle: &str| source.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert_eq!(module_path_at(source, line_of("fn target")), ["a", "b"]);
        assert_eq!(module_path_at(source, line_of("fn after")), ["a"]);
        assert_eq!(module_path_at(source, line_of("fn top")), Vec::<String>::new());
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
        let scope = covered(source, &target, quote::quote!(#sig #block)).unwrap();
        assert_eq!(
            scope.other_modules,
            ["crate::physics::SCALE", "crate::physics::rate", "plots::draw", "super::up::x"]
        );
    }

    #[test]
    fn same_named_impls_get_distinct_labels() {
        let source = "struct S;\nimpl S { fn a() {} }\nimpl S { fn b() {} }\nfn sir() -> S { S }";
        assert_eq!(identity(source).0, ["impl S", "impl S #2", "struct S"]);
    }
}
