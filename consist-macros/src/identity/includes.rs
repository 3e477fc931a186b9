//! Files that code bakes in with `include_str!`, `include_bytes!` or `include!`: their bytes are
//! part of the code identity, so editing `coeffs.txt` invalidates the steps that include it.
//!
//! The compiler rebuilds a crate when an included file changes, so the macro sees the new bytes.
//! A path is written as a string literal (relative to the source file, as the compiler reads it)
//! or as `concat!` of literals and `env!("VAR")` (e.g. `env!("CARGO_MANIFEST_DIR")`); the label
//! keeps the path as written, so an identity does not depend on where the project is checked out.

use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, Token};

const INCLUDE_MACROS: [&str; 3] = ["include_str", "include_bytes", "include"];

/// One included file: its label (`file data/coeffs.txt`) and the hex blake3 of its bytes, or
/// `None` when the macro argument is not a path the macro can work out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Included {
    /// `file <path as written>`, or `include_str!(<tokens>)` when the path is not understood.
    pub label: String,
    /// Hex blake3 of the file's bytes (of the read error's text if it cannot be read, which
    /// the compiler reports too), `None` when the path is not understood.
    pub hash: Option<String>,
}

/// Every file `tokens` include, resolved against `dir` (the directory of the source file).
pub fn included(tokens: TokenStream, dir: &Path, out: &mut Vec<Included>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(name) if INCLUDE_MACROS.contains(&name.to_string().as_str()) => {
                let bang = matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
                if let (true, Some(TokenTree::Group(args))) = (bang, trees.get(i + 2)) {
                    out.push(include_of(name, args.stream(), dir));
                }
            }
            TokenTree::Group(g) => included(g.stream(), dir, out),
            _ => {}
        }
    }
}

fn include_of(name: &proc_macro2::Ident, args: TokenStream, dir: &Path) -> Included {
    let Some((written, path)) = syn::parse2::<Expr>(args.clone()).ok().and_then(|e| path_of(&e)) else {
        return Included { label: format!("{name}!({args})"), hash: None };
    };
    let path = dir.join(path);
    let hash = match std::fs::read(&path) {
        Ok(bytes) => blake3::hash(&bytes).to_hex().to_string(),
        Err(e) => blake3::hash(format!("unreadable: {e}").as_bytes()).to_hex().to_string(),
    };
    Included { label: format!("file {written}"), hash: Some(hash) }
}

/// The file an item-level `include!(..)` with arguments `args` reads, resolved against `dir`,
/// when the path can be worked out.
pub fn include_target(args: TokenStream, dir: &Path) -> Option<std::path::PathBuf> {
    let (_, path) = syn::parse2::<Expr>(args).ok().and_then(|e| path_of(&e))?;
    Some(dir.join(path))
}

/// The path an include argument names: (as written, as resolved).
fn path_of(expr: &Expr) -> Option<(String, String)> {
    match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Some((s.value(), s.value())),
        Expr::Macro(m) if m.mac.path.is_ident("concat") => {
            let parts = m.mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated).ok()?;
            let (mut written, mut resolved) = (String::new(), String::new());
            for part in &parts {
                let (w, r) = match part {
                    Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => (s.value(), s.value()),
                    Expr::Macro(env) if env.mac.path.is_ident("env") => {
                        let var: syn::LitStr = env.mac.parse_body().ok()?;
                        (format!("${}", var.value()), std::env::var(var.value()).ok()?)
                    }
                    _ => return None,
                };
                written.push_str(&w);
                resolved.push_str(&r);
            }
            Some((written, resolved))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_concat_env_paths_hash_the_file_bytes() {
        let dir = std::env::temp_dir().join(format!("consist-includes-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/coeffs.txt"), "0.5\n").unwrap();
        let tokens = quote::quote! {
            const C: &str = include_str!("data/coeffs.txt");
            fn f() -> &'static [u8] { std::include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")) }
            fn g() -> &'static str { include_str!(some_macro!()) }
        };
        let mut out = Vec::new();
        included(tokens.clone(), &dir, &mut out);
        let labels: Vec<&str> = out.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(
            labels,
            ["file data/coeffs.txt", "file $CARGO_MANIFEST_DIR/Cargo.toml", "include_str!(some_macro ! ())"]
        );
        let hash_of = |bytes: &[u8]| Some(blake3::hash(bytes).to_hex().to_string());
        assert_eq!(out[0].hash, hash_of(b"0.5\n"));
        // The variable as the macro reads it, at run time: a test binary built in another
        // checkout that shares the target directory is reused by cargo with its compile-time path.
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
        let manifest = std::fs::read(Path::new(&manifest_dir).join("Cargo.toml")).unwrap();
        assert_eq!(out[1].hash, hash_of(&manifest), "env! is read from the compiler's environment");
        assert!(out[2].hash.is_none(), "an argument the macro cannot work out is reported, not guessed");

        std::fs::write(dir.join("data/coeffs.txt"), "0.6\n").unwrap();
        let mut edited = Vec::new();
        included(tokens, &dir, &mut edited);
        assert_ne!(edited[0].hash, out[0].hash, "editing the file changes the identity");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
