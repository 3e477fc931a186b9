//! Which names reach an item: the identifiers a piece of code refers to (`.total` for a method it
//! calls, `PREC` in `{:.PREC$}`), and the names under which each item of the crate is found (its
//! own name, an enum's variants, a trait's methods, an impl's header types and methods, what an
//! item-level macro call may define).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::Item;
use syn::ext::IdentExt;

use super::includes::include_target;
use super::modules::FileModules;

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

/// The label of an `impl` block: `impl State`, `impl Display for State`, `impl Stats for [f64]`
/// (a type that is not a path is shown by its tokens).
fn impl_label(item: &syn::ItemImpl) -> String {
    let shown = type_name(&item.self_ty).unwrap_or_else(|| compact(item.self_ty.to_token_stream()));
    match &item.trait_ {
        Some((_, path, _)) => {
            let trait_name = path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
            format!("impl {trait_name} for {shown}")
        }
        None => format!("impl {shown}"),
    }
}

/// Tokens as text without the spaces `to_string` puts between punctuation (`[f64]`, `&'a str`).
pub fn compact(tokens: TokenStream) -> String {
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
/// literals (inline format arguments), plus `.name` for each method called (`x.total()`), which
/// reaches the `impl` blocks and traits that define a method `total`.
///
/// The arguments of a call of a macro not from std (`call_m!(n, halve3)`) may be method names
/// its rules call (`$x.$m()`), so each identifier there also counts as `.name`.
///
/// A name bound as a function's parameter (`fn report(diagnostics: &DataFrame)`) or by a plain
/// `let name` goes to `locals` instead where the code uses it bare (not `a::name`, `name::x`,
/// `name!`, `.name`), after the binding and in its block: such a use is the local, which shadows
/// a function of that name (not a type, module, const or static). Not where the block's own
/// items or imports may declare the name (they sit above its locals: a glob `use`, a `mod`, a
/// `const` item...), nor a parameter with attributes (`#[cfg]` may remove it).
pub fn identifiers_and_locals(tokens: TokenStream, out: &mut BTreeSet<String>, locals: &mut BTreeSet<String>) {
    Walk { out, locals }.tokens(tokens, false, &BTreeSet::new());
}

/// [`identifiers_and_locals`], a local's uses counted as identifiers too.
pub fn identifiers(tokens: TokenStream, out: &mut BTreeSet<String>) {
    let mut locals = BTreeSet::new();
    identifiers_and_locals(tokens, out, &mut locals);
    out.append(&mut locals);
}

/// Macros of std whose arguments are expressions, formats or paths, never a bare method name.
const STD_MACROS: &[&str] = &[
    "assert",
    "assert_eq",
    "assert_ne",
    "cfg",
    "column",
    "compile_error",
    "concat",
    "dbg",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "env",
    "eprint",
    "eprintln",
    "file",
    "format",
    "format_args",
    "include",
    "include_bytes",
    "include_str",
    "line",
    "matches",
    "module_path",
    "option_env",
    "panic",
    "print",
    "println",
    "stringify",
    "todo",
    "unimplemented",
    "unreachable",
    "vec",
    "write",
    "writeln",
];

/// A lowercase identifier a `let` or a parameter can bind (not `self`, not a const's name).
fn binding_name(tree: &TokenTree) -> Option<String> {
    let TokenTree::Ident(ident) = tree else { return None };
    let text = ident.unraw().to_string();
    let lower = text.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') && text != "_";
    (lower && !matches!(text.as_str(), "self" | "mut" | "ref")).then_some(text)
}

fn punct(tree: Option<&TokenTree>, c: char) -> bool {
    matches!(tree, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

/// The names a parameter list binds as plain identifiers (`x: T`, `mut x: T`), and the tokens of
/// the rest (types, and patterns that destructure, which count as now).
fn parameters(list: TokenStream) -> (BTreeSet<String>, TokenStream) {
    let trees: Vec<TokenTree> = list.into_iter().collect();
    let mut bound = BTreeSet::new();
    let mut rest = Vec::new();
    for param in trees.split(|t| punct(Some(t), ',')) {
        // Skip outer attributes (`#[cfg(..)] x: T`): they are walked with the rest.
        let mut at = 0;
        while punct(param.get(at), '#') && matches!(param.get(at + 1), Some(TokenTree::Group(_))) {
            at += 2;
        }
        let at_name = if matches!(param.get(at), Some(TokenTree::Ident(i)) if i == "mut") { at + 1 } else { at };
        let name = param.get(at_name).and_then(binding_name);
        let typed = punct(param.get(at_name + 1), ':') && !punct(param.get(at_name + 2), ':');
        // A parameter with attributes (`#[cfg(..)] x: T`) may not exist in a build: it binds nothing.
        match name.filter(|_| typed && at == 0) {
            Some(name) => {
                bound.insert(name);
                rest.extend(param[..at].iter().cloned());
                rest.extend(param[at_name + 2..].iter().cloned());
            }
            None => rest.extend(param.iter().cloned()),
        }
        rest.push(TokenTree::Punct(proc_macro2::Punct::new(',', proc_macro2::Spacing::Alone)));
    }
    (bound, rest.into_iter().collect())
}

/// The token walk of [`identifiers_and_locals`].
struct Walk<'a> {
    out: &'a mut BTreeSet<String>,
    locals: &'a mut BTreeSet<String>,
}

/// One token list being walked (a group's contents), and what it has bound so far.
struct Level {
    trees: Vec<TokenTree>,
    /// Inside the arguments of a macro not from std (see [`identifiers`]).
    macro_args: bool,
    /// The locals in scope: the enclosing ones, then this list's `let`s once their statement ends.
    bound: BTreeSet<String>,
    /// After `fn name`: `Some(None)` until its parameters are read, then `Some(params)` until its
    /// body, where they bind (and only there: an inner function does not see outer locals).
    fn_params: Option<Option<BTreeSet<String>>>,
    /// `let name ...`: bound once the statement ends.
    pending_let: Option<String>,
    /// No `let` of this list binds: it declares items or imports that may take any name (a glob
    /// `use`, a `mod`, an `impl`...), or whose names are in `declared`.
    no_lets: bool,
    /// Names this list's items and imports declare: they shadow the enclosing locals of the same
    /// name in the whole list (a block's items sit above its locals), so none binds here.
    declared: BTreeSet<String>,
}

/// Item keywords whose bodies or initializers are not in a function's local scope (a `const`
/// inside a body cannot read its locals): a list that holds one binds nothing, and neither does
/// anything nested in it.
const ITEM_KEYWORDS: &[&str] = &["mod", "impl", "trait", "struct", "enum", "union", "const", "static", "macro_rules"];

/// What the items and imports at the top of `trees` declare: `None` when they may declare any
/// name (a glob `use`, an item keyword of [`ITEM_KEYWORDS`]), else the names (`use a::{b, c as d}`
/// counts every identifier of its tree; `fn name`, `type name`).
fn declarations(trees: &[TokenTree]) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < trees.len() {
        if let TokenTree::Ident(ident) = &trees[i] {
            let word = ident.to_string();
            if ITEM_KEYWORDS.contains(&word.as_str()) {
                return None;
            }
            if word == "use" {
                let end = (i..trees.len()).find(|&k| punct(trees.get(k), ';')).unwrap_or(trees.len());
                let mut tree = BTreeSet::new();
                if any_glob(&trees[i + 1..end], &mut tree) {
                    return None;
                }
                names.extend(tree);
                i = end;
            } else if (word == "fn" || word == "type")
                && let Some(TokenTree::Ident(name)) = trees.get(i + 1)
            {
                names.insert(name.unraw().to_string());
            }
        }
        i += 1;
    }
    Some(names)
}

/// Whether a `use` tree holds a glob (`*`); its identifiers go to `names`.
fn any_glob(trees: &[TokenTree], names: &mut BTreeSet<String>) -> bool {
    trees.iter().any(|tree| match tree {
        TokenTree::Punct(p) => p.as_char() == '*',
        TokenTree::Group(g) => any_glob(&g.stream().into_iter().collect::<Vec<_>>(), names),
        TokenTree::Ident(ident) => {
            names.insert(ident.unraw().to_string());
            false
        }
        TokenTree::Literal(_) => false,
    })
}

impl Level {
    /// The tree `back` places before `i`.
    fn before(&self, i: usize, back: usize) -> Option<&TokenTree> {
        i.checked_sub(back).and_then(|k| self.trees.get(k))
    }

    /// Whether the identifier at `i` is a `let` statement's binding (`let name =`, `let mut name:`),
    /// not an `if let`'s or `while let`'s (whose binding lives in its block): the `let` starts the
    /// list or follows `;` or a block.
    fn let_binding(&self, i: usize) -> bool {
        let after_let = |k: usize| {
            let statement = match i.checked_sub(k + 1).map(|j| &self.trees[j]) {
                None => true,
                Some(TokenTree::Punct(p)) => p.as_char() == ';',
                Some(TokenTree::Group(g)) => g.delimiter() == proc_macro2::Delimiter::Brace,
                _ => false,
            };
            statement && matches!(self.before(i, k), Some(TokenTree::Ident(l)) if l == "let")
        };
        let after_mut = matches!(self.before(i, 1), Some(TokenTree::Ident(m)) if m == "mut");
        let next = |k: usize| self.trees.get(i + k);
        (after_let(1) || (after_mut && after_let(2)))
            && (punct(next(1), '=') || punct(next(1), ';') || (punct(next(1), ':') && !punct(next(2), ':')))
    }
}

impl Walk<'_> {
    /// Walk `tokens`; `bound` holds the locals in scope where they start.
    fn tokens(&mut self, tokens: TokenStream, macro_args: bool, bound: &BTreeSet<String>) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let (bound, no_lets, declared) = match declarations(&trees) {
            Some(declared) => (bound.difference(&declared).cloned().collect(), false, declared),
            None => (BTreeSet::new(), true, BTreeSet::new()),
        };
        let mut level = Level { trees, macro_args, bound, fn_params: None, pending_let: None, no_lets, declared };
        for i in 0..level.trees.len() {
            match level.trees[i].clone() {
                TokenTree::Ident(ident) => self.ident(&mut level, i, &ident),
                TokenTree::Group(group) => self.group(&mut level, i, &group),
                TokenTree::Literal(literal) => self.literal(&level, i, &literal),
                TokenTree::Punct(p) if p.as_char() == ';' => {
                    // A declaration without a body (`fn f(x: u8);`) binds nothing.
                    level.fn_params = None;
                    if let Some(name) = level.pending_let.take() {
                        level.bound.insert(name);
                    }
                }
                TokenTree::Punct(_) => {}
            }
        }
    }

    /// A name a bare use of which is the local `bound` holds goes to `locals`, else to `out`.
    fn used(&mut self, level: &Level, name: String, bare: bool) {
        if bare && !level.macro_args && level.bound.contains(&name) {
            self.locals.insert(name);
        } else {
            self.out.insert(name);
        }
    }

    fn ident(&mut self, level: &mut Level, i: usize, ident: &proc_macro2::Ident) {
        let text = ident.unraw().to_string();
        if text == "_" {
            return;
        }
        let next = |k: usize| level.trees.get(i + k);
        if text == "fn" && matches!(next(1), Some(TokenTree::Ident(_))) {
            level.fn_params = Some(None);
        }
        if level.let_binding(i)
            && let Some(name) = binding_name(&level.trees[i]).filter(|n| !level.no_lets && !level.declared.contains(n))
        {
            // The binding itself is not a use.
            level.pending_let = Some(name);
            return;
        }
        if level.macro_args {
            self.out.insert(format!(".{text}"));
        }
        // `x.total()` or `x.total::<f64>()`, not a field (`self.dist[i]`).
        let called = match next(1) {
            Some(TokenTree::Group(g)) => g.delimiter() == proc_macro2::Delimiter::Parenthesis,
            Some(TokenTree::Punct(p)) => p.as_char() == ':',
            _ => false,
        };
        let after_dot = punct(level.before(i, 1), '.');
        if after_dot && !punct(level.before(i, 2), '.') && called {
            self.out.insert(format!(".{text}"));
        }
        // `f64::halve` as a function value: a method of a trait implemented for `f64`.
        let after_primitive = punct(level.before(i, 1), ':')
            && matches!(level.before(i, 3), Some(TokenTree::Ident(t)) if PRIMITIVES.contains(&t.to_string().as_str()));
        if after_primitive {
            self.out.insert(format!(".{text}"));
        }
        // Not `.name`, `a::name`, `name::b` or `name!`.
        let path_before = punct(level.before(i, 1), ':') && punct(level.before(i, 2), ':');
        let path_after = punct(next(1), ':') && punct(next(2), ':');
        let bare = !(after_dot || path_before || path_after || punct(next(1), '!'));
        self.used(level, text, bare);
    }

    fn group(&mut self, level: &mut Level, i: usize, group: &proc_macro2::Group) {
        // `#[doc = ..]`, `#![allow(..)]`...: names nothing the code uses (a doc comment added to
        // an item must not make its name a candidate for anything).
        let hash = |tree: Option<&TokenTree>| punct(tree, '#');
        let bang = punct(level.before(i, 1), '!');
        let attribute = hash(level.before(i, 1)) || (bang && hash(level.before(i, 2)));
        if attribute && super::hash::is_inert_attribute(group) {
            return;
        }
        // `name!(..)`: a call of a macro (`macro_rules! name { .. }` is not one).
        let called = match level.before(i, 2) {
            Some(TokenTree::Ident(name)) if bang => {
                let name = name.to_string();
                name != "macro_rules" && !STD_MACROS.contains(&name.as_str())
            }
            _ => false,
        };
        match (&level.fn_params, group.delimiter()) {
            (Some(None), proc_macro2::Delimiter::Parenthesis) if !attribute => {
                let (params, rest) = parameters(group.stream());
                self.tokens(rest, level.macro_args, &level.bound);
                level.fn_params = Some(Some(params));
            }
            (Some(Some(params)), proc_macro2::Delimiter::Brace) => {
                let params = params.clone();
                level.fn_params = None;
                self.tokens(group.stream(), level.macro_args, &params);
            }
            _ => self.tokens(group.stream(), level.macro_args || called, &level.bound),
        }
    }

    fn literal(&mut self, level: &Level, i: usize, literal: &proc_macro2::Literal) {
        let text = literal.to_string();
        let mut placeholders = BTreeSet::new();
        format_placeholders(&text, &mut placeholders);
        for name in placeholders {
            self.used(level, name, true);
        }
        // `#[serde(default = "default_gain")]`, `with = "module"`: a path in a string.
        let assigned = punct(level.before(i, 1), '=');
        let key =
            matches!(level.before(i, 2), Some(TokenTree::Ident(k)) if PATH_KEYS.contains(&k.to_string().as_str()));
        if assigned && key {
            let path = text.trim_matches('"');
            self.out.extend(path.split("::").filter(|s| !s.is_empty()).map(str::to_owned));
        }
    }
}

/// Attribute keys whose string value names a function or module (serde's and clap's).
const PATH_KEYS: &[&str] = &[
    "default",
    "with",
    "serialize_with",
    "deserialize_with",
    "skip_serializing_if",
    "getter",
    "value_parser",
    "from",
    "try_from",
    "into",
    "remote",
];

fn format_placeholders(literal: &str, out: &mut BTreeSet<String>) {
    if !literal.ends_with('"') {
        return;
    }
    let name_at = |text: &str| -> Option<usize> {
        let bytes = text.as_bytes();
        let starts = bytes.first().is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
        let len = bytes.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
        starts.then_some(len)
    };
    let mut rest = literal;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(escaped) = rest.strip_prefix('{') {
            rest = escaped;
            continue;
        }
        let Some(close) = rest.find('}') else { return };
        let (argument, spec) = rest[..close].split_once(':').unwrap_or((&rest[..close], ""));
        if let Some(len) = name_at(argument).filter(|len| *len == argument.len()) {
            out.insert(argument[..len].to_owned());
        }
        // Width and precision named by argument: `{:.PREC$}`, `{x:>width$}`.
        for (k, _) in spec.match_indices('$') {
            let start = spec[..k].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
            if name_at(&spec[start..k]) == Some(k - start) {
                out.insert(spec[start..k].to_owned());
            }
        }
        rest = &rest[close + 1..];
    }
}

/// Names defined across the crate that decide which `impl` headers can reach an impl.
#[derive(Default)]
pub struct CrateNames {
    /// `type A = B<..>;` anywhere in the crate: `A` -> the type names in `B<..>` (so an impl
    /// written on the alias is found by the type it names).
    pub aliases: BTreeMap<String, Vec<String>>,
    /// Traits the crate defines: an impl of one is found by the trait's name (`Stats::mean(&xs)`,
    /// `T: Stats`); an impl of a trait of another crate (`Add`, `Default`) is not, since naming
    /// `Default` says nothing about which impl runs.
    traits: BTreeSet<String>,
    /// `macro_rules!` macros of the crate: name -> their rules, so that an item-level call
    /// (`def_rate!(0.25);`) is found by the items its expansion may define.
    macros: BTreeMap<String, TokenStream>,
}

impl CrateNames {
    /// The aliases and traits of every module of `files`.
    pub fn of(files: &FileModules<'_>) -> Self {
        let mut names = CrateNames::default();
        for module in files.modules.values() {
            for (item, _) in module.items() {
                match item {
                    Item::Type(alias) => {
                        // Under opposite `cfg`s one alias may stand for either type.
                        let mut found = BTreeSet::new();
                        type_names(&alias.ty, &mut found);
                        let known = names.aliases.entry(alias.ident.to_string()).or_default();
                        found.extend(known.drain(..));
                        known.extend(found);
                    }
                    Item::Trait(t) => {
                        names.traits.insert(t.ident.to_string());
                    }
                    Item::Macro(m) if m.ident.is_some() => {
                        let name = m.ident.as_ref().map(ToString::to_string).unwrap_or_default();
                        names.macros.entry(name).or_default().extend(m.mac.tokens.clone());
                    }
                    _ => {}
                }
            }
        }
        names
    }

    /// The names that reach an `impl` block through its header: the types it names (`impl
    /// Mul<Cell> for i32`: `Cell`; through a type alias, the aliased types too) and the trait,
    /// when the crate defines it.
    fn of_header(&self, imp: &syn::ItemImpl) -> Vec<String> {
        let mut found = BTreeSet::new();
        type_names(&imp.self_ty, &mut found);
        // `impl<T: HasR> Perim for T`: the impl's own parameters name no type of the crate.
        let own_parameters: Vec<String> = imp.generics.type_params().map(|p| p.ident.to_string()).collect();
        if let Some((_, path, _)) = &imp.trait_ {
            path_names(path, &mut found);
            let trait_name = path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
            if !self.traits.contains(&trait_name) {
                found.remove(&trait_name);
            }
        }
        let aliased: Vec<String> = found.iter().filter_map(|n| self.aliases.get(n)).flatten().cloned().collect();
        found.extend(aliased);
        for parameter in &own_parameters {
            found.remove(parameter);
        }
        found.into_iter().collect()
    }
}

/// Built-in names that reach no item of the crate (`impl Stats for f64` is not reached by every
/// step that mentions `f64`).
const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "f32", "f64", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128",
    "usize", "Self",
];

/// The names of the types in `ty`: the last segment of each path and of its generic arguments
/// (`crate::m::Grid<Cell>` -> `Grid`, `Cell`), built-in names left out.
fn type_names(ty: &syn::Type, out: &mut BTreeSet<String>) {
    match ty {
        syn::Type::Path(p) => {
            if let Some(q) = &p.qself {
                type_names(&q.ty, out);
            }
            path_names(&p.path, out);
        }
        syn::Type::Reference(r) => type_names(&r.elem, out),
        syn::Type::Ptr(r) => type_names(&r.elem, out),
        syn::Type::Slice(s) => type_names(&s.elem, out),
        syn::Type::Array(a) => type_names(&a.elem, out),
        syn::Type::Paren(p) => type_names(&p.elem, out),
        syn::Type::Group(g) => type_names(&g.elem, out),
        syn::Type::Tuple(t) => t.elems.iter().for_each(|e| type_names(e, out)),
        syn::Type::TraitObject(t) => bound_names(t.bounds.iter(), out),
        syn::Type::ImplTrait(t) => bound_names(t.bounds.iter(), out),
        _ => {}
    }
}

fn bound_names<'a>(bounds: impl Iterator<Item = &'a syn::TypeParamBound>, out: &mut BTreeSet<String>) {
    for bound in bounds {
        if let syn::TypeParamBound::Trait(t) = bound {
            path_names(&t.path, out);
        }
    }
}

/// The last segment of `path` and the types of every segment's generic arguments.
fn path_names(path: &syn::Path, out: &mut BTreeSet<String>) {
    if let Some(last) = path.segments.last() {
        let name = last.ident.to_string();
        if !PRIMITIVES.contains(&name.as_str()) {
            out.insert(name);
        }
    }
    for segment in &path.segments {
        if let syn::PathArguments::AngleBracketed(args) = &segment.arguments {
            for arg in &args.args {
                match arg {
                    syn::GenericArgument::Type(t) => type_names(t, out),
                    syn::GenericArgument::AssocType(a) => type_names(&a.ty, out),
                    _ => {}
                }
            }
        }
    }
}

/// The items `tokens` define by a written name (`fn base_rate`, `const K`), at any depth, with
/// their keyword; names made of a macro's metavariables (`fn $name`) come from its call.
fn defined_items(tokens: TokenStream) -> Vec<(String, String)> {
    const ITEM_KEYWORDS: &[&str] = &["fn", "const", "static", "struct", "enum", "union", "type", "trait", "mod"];
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::new();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(word) if ITEM_KEYWORDS.contains(&word.to_string().as_str()) => {
                if let Some(TokenTree::Ident(name)) = trees.get(i + 1) {
                    out.push((word.to_string(), name.to_string()));
                }
            }
            TokenTree::Group(g) => out.extend(defined_items(g.stream())),
            _ => {}
        }
    }
    out
}

/// The linker symbol a function exports (`#[unsafe(no_mangle)]`: its name; `#[export_name =
/// "rate"]`: that name), which an `extern "C" { fn rate(); }` block anywhere may call it by.
pub fn exported_symbol(f: &syn::ItemFn) -> Option<String> {
    f.attrs.iter().find_map(|attr| {
        let meta = match &attr.meta {
            // `#[unsafe(no_mangle)]` (edition 2024): the attribute inside `unsafe(..)`.
            syn::Meta::List(list) if list.path.is_ident("unsafe") => list.parse_args::<syn::Meta>().ok()?,
            meta => meta.clone(),
        };
        match meta {
            syn::Meta::Path(path) if path.is_ident("no_mangle") => Some(f.sig.ident.unraw().to_string()),
            syn::Meta::NameValue(nv) if nv.path.is_ident("export_name") => match nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(symbol), .. }) => Some(symbol.value()),
                _ => None,
            },
            _ => None,
        }
    })
}

/// Whether `name` is a Rust keyword (an identifier token that names no item).
fn is_keyword(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
        "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
        "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while",
    ];
    KEYWORDS.contains(&name)
}

/// The label of an item and the names that reach it: its own name; for an `impl` block the
/// names in its header (`impl Mul<Cell> for i32`: `Mul`, `Cell`; an alias's target too) and
/// `.method` for each of its functions (so `col.total()` reaches `impl ColExt for Column` without
/// naming either); for a trait `.method` for each of its functions; for an enum the names of its
/// variants (reached through `use Season::*;`); for an item-level macro call (`param!(DECAY =
/// 0.5);`, `include!("gen.rs");`) every name in its arguments or included file, since it may
/// define any of them.
pub fn lookup_names(item: &Item, crate_names: &CrateNames, dir: &Path) -> Option<(String, Vec<String>)> {
    let methods = |names: &mut Vec<String>, fns: &mut dyn Iterator<Item = &syn::Ident>| {
        names.extend(fns.map(|f| format!(".{f}")));
    };
    Some(match item {
        Item::Impl(imp) => {
            let label = impl_label(imp);
            let mut names = crate_names.of_header(imp);
            methods(
                &mut names,
                &mut imp.items.iter().filter_map(|i| match i {
                    syn::ImplItem::Fn(f) => Some(&f.sig.ident),
                    _ => None,
                }),
            );
            (label, names)
        }
        Item::Macro(call) if call.ident.is_none() => {
            let mut found = BTreeSet::new();
            if call.mac.path.is_ident("include") {
                // The names the included items define (an unreadable file: the compiler says so).
                let file = include_target(call.mac.tokens.clone(), dir).and_then(|f| std::fs::read_to_string(f).ok());
                let items = file.and_then(|text| syn::parse_file(&text).ok()).map(|f| f.items).unwrap_or_default();
                found.extend(
                    items.iter().filter_map(|i| lookup_names(i, crate_names, dir)).flat_map(|(_, names)| names),
                );
            } else {
                identifiers(call.mac.tokens.clone(), &mut found);
                // What the macro's rules may define: any name they write, and `.f` for each
                // `fn f` (an impl they generate is reached by its methods).
                let rules = call.mac.path.segments.last().and_then(|m| crate_names.macros.get(&m.ident.to_string()));
                if let Some(rules) = rules {
                    for (keyword, name) in defined_items(rules.clone()) {
                        if keyword == "fn" {
                            found.insert(format!(".{name}"));
                        }
                        found.insert(name);
                    }
                }
                found.retain(|n| !is_keyword(n) && !PRIMITIVES.contains(&n.as_str()));
            }
            let name = compact(call.mac.path.to_token_stream());
            (format!("{name}!(..)"), found.into_iter().collect())
        }
        other => {
            let (kind, name) = super::item::kind_and_name(other)?;
            if name == "_" {
                return None;
            }
            let mut names = vec![name.clone()];
            if let Item::Fn(f) = other
                && let Some(symbol) = exported_symbol(f)
            {
                names.push(symbol);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_placeholders_are_references() {
        let mut names = BTreeSet::new();
        format_placeholders(r#""{SCALE} {{literal}} {x:>8} {0} {} {:.PREC$} {y:>w$.p$} {:1$}""#, &mut names);
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["PREC", "SCALE", "p", "w", "x", "y"]);
    }
}
