//! Modules declared inside item-level macro calls, which syn leaves as unparsed tokens:
//! `cfg_if::cfg_if! { if #[cfg(unix)] { mod imp; } else { #[path = "other.rs"] mod imp; } }` (a
//! `mod name { .. }` written there too, with what it declares), and a call of a `macro_rules!`
//! macro of the same file that writes `mod $name;` (`declare!(kernel);`), for each identifier of
//! the call that names a module file there (`kernel.rs`, `kernel/mod.rs`), so that no other name
//! of the call becomes a module. Each is added to the parsed file where the macro is called,
//! every alternative together (as `#[cfg]`-ed declarations are), so that code identity follows
//! the module: it may cover more than the build compiles, never less. Without this, a step using
//! `crate::imp::rate()` hit after `rate` was edited.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::{Item, ItemMod};

/// Add to `file`, the file at `path`, the modules its item-level macro calls declare.
pub fn add_declared_in_macros(file: &mut syn::File, path: &Path) {
    let mut declaring = BTreeSet::new();
    macros_declaring_modules(&file.items, &mut declaring);
    // Where `mod name;` written at the file's top level finds `name.rs`: beside a crate root or
    // a `mod.rs`, else in the folder named after the file.
    let dir = path.parent().unwrap_or_else(|| Path::new(""));
    let owns_dir = super::crate_tree::is_crate_root(path) || path.file_name().is_some_and(|n| n == "mod.rs");
    let base = if owns_dir { dir.to_owned() } else { dir.join(path.file_stem().unwrap_or_default()) };
    add_to(&mut file.items, &declaring, &base);
}

/// The `macro_rules!` macros of `items` (inline modules included) whose rules write
/// `mod $name;`.
fn macros_declaring_modules(items: &[Item], out: &mut BTreeSet<String>) {
    for item in items {
        match item {
            Item::Macro(m) if m.ident.is_some() && writes_mod_of_a_variable(m.mac.tokens.clone()) => {
                out.extend(m.ident.as_ref().map(ToString::to_string));
            }
            Item::Mod(ItemMod { content: Some((_, inner)), .. }) => macros_declaring_modules(inner, out),
            _ => {}
        }
    }
}

fn writes_mod_of_a_variable(tokens: TokenStream) -> bool {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    tokens.windows(4).any(|w| {
        matches!(
            (&w[0], &w[1], &w[2], &w[3]),
            (TokenTree::Ident(m), TokenTree::Punct(d), TokenTree::Ident(_), TokenTree::Punct(semi))
                if m == "mod" && d.as_char() == '$' && semi.as_char() == ';'
        )
    }) || tokens.iter().any(|t| matches!(t, TokenTree::Group(g) if writes_mod_of_a_variable(g.stream())))
}

/// Add to `items`, a module whose `mod name;` files are under `base`, what its macro calls
/// declare (in inline modules too).
fn add_to(items: &mut Vec<Item>, declaring: &BTreeSet<String>, base: &Path) {
    let mut found: Vec<ItemMod> = Vec::new();
    for item in items.iter_mut() {
        match item {
            Item::Mod(ItemMod { ident, content: Some((_, inner)), .. }) => {
                add_to(inner, declaring, &base.join(ident.to_string()));
            }
            // A call (a `macro_rules!` definition has a name).
            Item::Macro(call) if call.ident.is_none() => {
                written_mods(call.mac.tokens.clone(), &mut found);
                let callee = call.mac.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
                if declaring.contains(&callee) {
                    let has_file = |name: &proc_macro2::Ident| module_file(base, &name.to_string()).is_some();
                    for name in idents(call.mac.tokens.clone()).into_iter().filter(has_file) {
                        found.extend(syn::parse2::<ItemMod>(quote::quote!(mod #name;)).ok());
                    }
                }
            }
            _ => {}
        }
    }
    // What an inline module written in a call declares through its own macro calls.
    for declared in &mut found {
        if let Some((_, inner)) = &mut declared.content {
            add_to(inner, declaring, &base.join(declared.ident.to_string()));
        }
    }
    for declared in found {
        let same = |item: &Item| matches!(item, Item::Mod(m) if m == &declared);
        if !items.iter().any(same) {
            items.push(Item::Mod(declared));
        }
    }
}

/// The file of `mod name;` under `base`: `name.rs` or `name/mod.rs`.
fn module_file(base: &Path, name: &str) -> Option<PathBuf> {
    [base.join(format!("{name}.rs")), base.join(name).join("mod.rs")].into_iter().find(|p| p.is_file())
}

/// Every `#[..]* [pub[(..)]] mod name;` and `mod name { .. }` written in `tokens`, at any depth
/// outside such a module (whose own declarations come with it).
fn written_mods(tokens: TokenStream, out: &mut Vec<ItemMod>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut start = None; // where the attributes and visibility before a `mod` begin
    let mut k = 0;
    while k < tokens.len() {
        match &tokens[k] {
            TokenTree::Punct(p) if p.as_char() == '#' && bracketed(tokens.get(k + 1)) => {
                start.get_or_insert(k);
                k += 2;
                continue;
            }
            TokenTree::Ident(i) if i == "pub" => {
                start.get_or_insert(k);
                k += 1 + usize::from(
                    matches!(tokens.get(k + 1), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis),
                );
                continue;
            }
            TokenTree::Ident(i) if i == "mod" => {
                let ends = match (tokens.get(k + 1), tokens.get(k + 2)) {
                    (Some(TokenTree::Ident(_)), Some(TokenTree::Punct(semi))) => semi.as_char() == ';',
                    (Some(TokenTree::Ident(_)), Some(TokenTree::Group(g))) => g.delimiter() == Delimiter::Brace,
                    _ => false,
                };
                if ends {
                    let written: TokenStream = tokens[start.unwrap_or(k)..k + 3].iter().cloned().collect();
                    out.extend(syn::parse2::<ItemMod>(written).ok());
                    start = None;
                    k += 3;
                    continue;
                }
            }
            TokenTree::Group(g) => written_mods(g.stream(), out),
            _ => {}
        }
        start = None;
        k += 1;
    }
}

fn bracketed(token: Option<&TokenTree>) -> bool {
    matches!(token, Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket)
}

/// Every identifier in `tokens`, at any depth.
fn idents(tokens: TokenStream) -> Vec<proc_macro2::Ident> {
    let mut found = Vec::new();
    for token in tokens {
        match token {
            TokenTree::Ident(i) => found.push(i),
            TokenTree::Group(g) => found.extend(idents(g.stream())),
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The out-of-line modules `source`, the file `src/main.rs` of a package with `files`
    /// beside it, declares (with the inline modules around them).
    fn declared(source: &str, files: &[&str]) -> Vec<String> {
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("consist-macro-mods-decl-{}-{call}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for file in files {
            std::fs::create_dir_all(dir.join(file).parent().unwrap()).unwrap();
            std::fs::write(dir.join(file), "").unwrap();
        }
        let mut file = syn::parse_file(source).unwrap();
        add_declared_in_macros(&mut file, &dir.join("src/main.rs"));
        let _ = std::fs::remove_dir_all(&dir);
        let mut out = Vec::new();
        fn walk(items: &[Item], prefix: &str, out: &mut Vec<String>) {
            for item in items {
                if let Item::Mod(m) = item {
                    let attrs = m.attrs.iter().map(|a| quote::quote!(#a).to_string()).collect::<Vec<_>>().join(" ");
                    match &m.content {
                        Some((_, inner)) => walk(inner, &format!("{prefix}{}::", m.ident), out),
                        None => out.push(format!("{attrs} {prefix}{}", m.ident).trim().to_owned()),
                    }
                }
            }
        }
        walk(&file.items, "", &mut out);
        out
    }

    #[test]
    fn modules_declared_in_cfg_if_and_by_a_local_macro_are_declarations() {
        let source = r#"
            mod plain;
            cfg_if::cfg_if! {
                if #[cfg(target_os = "linux")] { mod kernel; pub(crate) mod shared; mod a { mod b; } }
                else { #[path = "kernel_other.rs"] mod kernel; }
            }
            macro_rules! declare { ($m:ident) => { mod $m; }; }
            declare!(genmod);
            declare!(SirParams); // no file: not a module
            mod inner { other_macro! { mod deep; } }
            not_declaring!(helper);
        "#;
        assert_eq!(
            declared(source, &["src/genmod.rs"]),
            ["plain", "inner::deep", "kernel", "shared", "a::b", "# [path = \"kernel_other.rs\"] kernel", "genmod"]
        );
    }

    /// A macro that writes an inline `mod $n { .. }` declares no file: the names of its calls
    /// stay what they are (a module invented for `SirParams` would have hidden the struct).
    #[test]
    fn a_macro_writing_inline_modules_invents_none() {
        let source = r#"
            pub struct SirParams;
            macro_rules! model { ($n:ident, $c:ident) => { pub mod $n { pub fn f() -> super::$c { super::$c } } }; }
            model!(sir, SirParams);
        "#;
        assert!(declared(source, &["src/sir.rs", "src/SirParams.rs"]).is_empty());
    }

    /// End to end: a step of `src/main.rs` using modules declared in `cfg_if!` and by a local
    /// macro covers their items (it hit after they were edited).
    #[test]
    fn a_step_covers_the_items_of_modules_its_crate_declares_in_macros() {
        use crate::identity::scope::{Target, covered};
        let dir = std::env::temp_dir().join(format!("consist-macro-mods-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"m\"\n").unwrap();
        let main = r#"
            cfg_if::cfg_if! {
                if #[cfg(target_os = "linux")] { mod kernel; } else { #[path = "kernel_other.rs"] mod kernel; }
            }
            macro_rules! declare { ($m:ident) => { mod $m; }; }
            declare!(genmod);
            fn q05() -> f64 { crate::kernel::kernel_weight(2.0) + genmod::G }
        "#;
        let files = [
            ("src/main.rs", main),
            ("src/kernel.rs", "pub const KAPPA: f64 = 0.5;\npub fn kernel_weight(x: f64) -> f64 { x * KAPPA }"),
            ("src/kernel_other.rs", "pub fn kernel_weight(x: f64) -> f64 { x }"),
            ("src/genmod.rs", "pub const G: f64 = 1.0;"),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let target = Target { name: "q05", kind: "fn", hash: String::new(), module: Vec::new() };
        let tokens = quote::quote!(crate::kernel::kernel_weight(2.0) + genmod::G);
        let scope = || covered(main, &dir.join("src/main.rs"), &target, tokens.clone()).unwrap();
        let labels: Vec<String> = scope().covered.iter().map(|c| c.label.clone()).collect();
        let expected = [
            "cfg_if::cfg_if!(..)",
            "const G in genmod",
            "const KAPPA in kernel",
            "declare!(..)",
            "fn kernel_weight in kernel",
            "fn kernel_weight in kernel #2", // kernel_other.rs: either may be built
            "macro_rules! declare",
        ];
        assert_eq!(labels, expected);
        let before: Vec<String> = scope().covered.iter().map(|c| c.hash.clone()).collect();
        std::fs::write(dir.join("src/kernel.rs"), files[1].1.replace("0.5", "0.75")).unwrap();
        let after: Vec<String> = scope().covered.iter().map(|c| c.hash.clone()).collect();
        assert_ne!(before, after, "editing KAPPA changes the identity");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
