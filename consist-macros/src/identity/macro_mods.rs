//! Modules declared inside item-level macro calls, which syn leaves as unparsed tokens:
//! `cfg_if::cfg_if! { if #[cfg(unix)] { mod imp; } else { #[path = "other.rs"] mod imp; } }`, and
//! a call of a `macro_rules!` macro of the same file that writes `mod $name;`
//! (`declare!(kernel);`). Each is added to the parsed file as a plain `mod name;` declaration
//! where the macro is called, every alternative together (as `#[cfg]`-ed declarations are), so
//! that code identity follows the module's file: it may cover more than the build compiles, never
//! less. Without this, a step using `crate::imp::rate()` hit after `rate` was edited.

use std::collections::BTreeSet;

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::{Item, ItemMod};

/// Add to `file` the `mod name;` declarations its item-level macro calls make.
pub fn add_declared_in_macros(file: &mut syn::File) {
    let mut declaring = BTreeSet::new();
    macros_declaring_modules(&file.items, &mut declaring);
    add_to(&mut file.items, &declaring);
}

/// The `macro_rules!` macros of `items` (inline modules included) whose rules write
/// `mod $name`.
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
    tokens.windows(2).any(|pair| {
        matches!((&pair[0], &pair[1]), (TokenTree::Ident(m), TokenTree::Punct(p)) if m == "mod" && p.as_char() == '$')
    }) || tokens.iter().any(|t| matches!(t, TokenTree::Group(g) if writes_mod_of_a_variable(g.stream())))
}

fn add_to(items: &mut Vec<Item>, declaring: &BTreeSet<String>) {
    let mut found: Vec<ItemMod> = Vec::new();
    for item in items.iter_mut() {
        match item {
            Item::Mod(ItemMod { content: Some((_, inner)), .. }) => add_to(inner, declaring),
            // A call (a `macro_rules!` definition has a name).
            Item::Macro(call) if call.ident.is_none() => {
                written_mods(call.mac.tokens.clone(), &mut found);
                let callee = call.mac.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
                if declaring.contains(&callee) {
                    for name in idents(call.mac.tokens.clone()) {
                        found.extend(syn::parse2::<ItemMod>(quote::quote!(mod #name;)).ok());
                    }
                }
            }
            _ => {}
        }
    }
    for declared in found {
        let same = |item: &Item| matches!(item, Item::Mod(m) if m == &declared);
        if !items.iter().any(same) {
            items.push(Item::Mod(declared));
        }
    }
}

/// Every `#[..]* [pub[(..)]] mod name;` written in `tokens`, at any depth.
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
                if let (Some(TokenTree::Ident(_)), Some(TokenTree::Punct(semi))) =
                    (tokens.get(k + 1), tokens.get(k + 2))
                    && semi.as_char() == ';'
                {
                    let written: TokenStream = tokens[start.unwrap_or(k)..k + 3].iter().cloned().collect();
                    out.extend(syn::parse2::<ItemMod>(written).ok());
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

    fn declared(source: &str) -> Vec<String> {
        let mut file = syn::parse_file(source).unwrap();
        add_declared_in_macros(&mut file);
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
                if #[cfg(target_os = "linux")] { mod kernel; pub(crate) mod shared; }
                else { #[path = "kernel_other.rs"] mod kernel; }
            }
            macro_rules! declare { ($m:ident) => { mod $m; }; }
            declare!(genmod);
            mod inner { other_macro! { mod deep; } }
            not_declaring!(helper);
        "#;
        assert_eq!(
            declared(source),
            ["plain", "inner::deep", "kernel", "shared", "# [path = \"kernel_other.rs\"] kernel", "genmod"]
        );
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
