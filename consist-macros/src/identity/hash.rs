//! The code hash: a canonical walk of a function's token trees into blake3.
//!
//! Each token contributes its kind and text (`Ident`, `Punct` char, `Literal` source text,
//! `Group` delimiter with its contents), never its span or spacing, so whitespace, line breaks,
//! comments and formatting leave the hash unchanged. Trailing commas that rustfmt adds or removes
//! as it wraps lines are ignored too, except where one is meaningful (`(x,)` is a one-tuple).
//! Doc comments (`///`, `//!`, which reach a macro as `#[doc = "..."]` attributes) and attributes
//! that never change what code computes (`#[inline]`, `#[allow(..)]`, `#[must_use]`,
//! `#[rustfmt::skip]`...) are skipped wherever they appear, so editing documentation or lint
//! settings never invalidates a cache. `TokenStream::to_string()` is not used: its layout is
//! not stable across compiler versions.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// Version tag of the walk; bump it if the encoding below ever changes.
const DOMAIN: &[u8] = b"consist-tokens-v1";

/// Hex blake3 of the canonical token walk of `tokens`.
pub fn hash_tokens(tokens: TokenStream) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(DOMAIN);
    walk(tokens, &mut hasher);
    hasher.finalize().to_hex().to_string()
}

fn put(hasher: &mut blake3::Hasher, tag: u8, text: &str) {
    hasher.update(&[tag]);
    hasher.update(&(text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

/// Attributes that never change what code computes: documentation, lint levels, inlining and
/// other hints, tool attributes of rustfmt and clippy.
const INERT_ATTRIBUTES: &[&str] = &[
    "doc",
    "inline",
    "allow",
    "warn",
    "deny",
    "forbid",
    "expect",
    "must_use",
    "cold",
    "track_caller",
    "rustfmt",
    "clippy",
    "diagnostic",
];

/// Whether the bracketed `group` after a `#` is an attribute that never changes what code
/// computes (see [`INERT_ATTRIBUTES`]).
pub fn is_inert_attribute(group: &proc_macro2::Group) -> bool {
    if group.delimiter() != Delimiter::Bracket {
        return false;
    }
    matches!(group.stream().into_iter().next(), Some(TokenTree::Ident(i)) if INERT_ATTRIBUTES.contains(&i.to_string().as_str()))
}

fn is_comma(tree: &TokenTree) -> bool {
    matches!(tree, TokenTree::Punct(p) if p.as_char() == ',')
}

/// Keywords after which a parenthesized group is an expression or type (where `(x,)` is a tuple),
/// not an argument or parameter list.
const KEYWORDS: &[&str] = &[
    "as", "await", "box", "break", "const", "continue", "dyn", "else", "for", "if", "impl", "in", "let", "loop",
    "match", "move", "mut", "ref", "return", "static", "unsafe", "where", "while", "yield",
];

/// Whether a trailing comma in this group is formatting only (rustfmt adds one when it breaks a
/// list over lines). In `{}` and `[]` it always is; in `()` it is when the list has several items
/// or follows a name (call, parameter list, tuple struct), but `(x,)` alone is a one-tuple.
fn trailing_comma_is_formatting(delimiter: Delimiter, trees: &[TokenTree], after_name: bool) -> bool {
    match delimiter {
        Delimiter::Brace | Delimiter::Bracket => true,
        Delimiter::Parenthesis => after_name || trees.iter().filter(|t| is_comma(t)).count() >= 2,
        Delimiter::None => false,
    }
}

fn walk(tokens: TokenStream, hasher: &mut blake3::Hasher) {
    walk_group(tokens, Delimiter::None, false, hasher);
}

fn walk_group(tokens: TokenStream, delimiter: Delimiter, after_name: bool, hasher: &mut blake3::Hasher) {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    if trees.last().is_some_and(is_comma) && trailing_comma_is_formatting(delimiter, &trees, after_name) {
        trees.pop();
    }
    let mut previous_is_name = false;
    let mut iter = trees.into_iter().peekable();
    while let Some(tree) = iter.next() {
        let is_name = matches!(&tree, TokenTree::Ident(i) if !KEYWORDS.contains(&i.to_string().as_str()));
        match tree {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                // `#[doc = ...]`, `#![allow(..)]`, `#[inline]`...: skip the whole attribute.
                let mut look = iter.clone();
                let bang = matches!(look.peek(), Some(TokenTree::Punct(b)) if b.as_char() == '!');
                if bang {
                    look.next();
                }
                if let Some(TokenTree::Group(g)) = look.next()
                    && is_inert_attribute(&g)
                {
                    if bang {
                        iter.next();
                    }
                    iter.next();
                    continue;
                }
                put(hasher, b'p', "#");
            }
            TokenTree::Punct(p) => put(hasher, b'p', p.as_char().encode_utf8(&mut [0; 4])),
            TokenTree::Ident(i) => put(hasher, b'i', &i.to_string()),
            TokenTree::Literal(l) => put(hasher, b'l', &l.to_string()),
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                put(hasher, b'g', open);
                walk_group(g.stream(), g.delimiter(), previous_is_name, hasher);
                put(hasher, b'g', close);
            }
        }
        previous_is_name = is_name;
    }
}

#[cfg(test)]
mod tests {
    use super::hash_tokens;
    use std::str::FromStr;

    fn h(src: &str) -> String {
        hash_tokens(proc_macro2::TokenStream::from_str(src).expect("valid tokens"))
    }

    const BASE: &str = "fn clean(raw: &Path, threshold: f64) -> Vec<Vec<u8>> { let x = threshold * 2.0; x as u8 }";

    #[test]
    fn formatting_and_comments_do_not_change_the_hash() {
        let reformatted = "fn clean(\n    raw: &Path,\n    threshold: f64,\n) -> Vec<Vec<u8> > {\n    // double it\n    let x = threshold * 2.0; /* block */\n    x as u8\n}";
        assert_eq!(h(BASE), h(reformatted));
    }

    #[test]
    fn doc_comments_do_not_change_the_hash() {
        let documented = "/// Cleans.\nfn clean(raw: &Path, threshold: f64) -> Vec<Vec<u8>> { //! inner\n /// on a statement\n let x = threshold * 2.0; x as u8 }";
        assert_eq!(h(BASE), h(documented));
    }

    #[test]
    fn any_token_edit_changes_the_hash() {
        for edited in [
            BASE.replace("2.0", "3.0"),
            BASE.replace("threshold * 2.0", "threshold / 2.0"),
            BASE.replace("let x", "let y").replace("x as", "y as"),
            BASE.replace("f64", "f32"),
            BASE.replace("{ let", "{ #[cfg(unix)] let"),
        ] {
            assert_ne!(h(BASE), h(&edited), "{edited}");
        }
    }

    #[test]
    fn lint_and_inlining_attributes_do_not_change_the_hash() {
        for hinted in [
            format!("#[inline(always)] {BASE}"),
            format!("#[must_use] #[allow(clippy::cast_possible_truncation)] {BASE}"),
            BASE.replace("{ let", "{ #![allow(unused)] #[rustfmt::skip] let"),
        ] {
            assert_eq!(h(BASE), h(&hinted), "{hinted}");
        }
    }

    #[test]
    fn trailing_commas_of_lists_are_formatting_but_one_tuples_are_not() {
        assert_eq!(h("f(a, b,)"), h("f(a, b)"));
        assert_eq!(h("fn f(a: i64,) -> i64 { g(a,) }"), h("fn f(a: i64) -> i64 { g(a) }"));
        assert_eq!(h("S { a, }"), h("S { a }"));
        assert_eq!(h("match x { A => 1, }"), h("match x { A => 1 }"));
        assert_ne!(h("let t = (x,);"), h("let t = (x);"));
        assert_ne!(h("return (x,);"), h("return (x);"));
        assert_ne!(h("fn f() -> (i64,) { (1,) }"), h("fn f() -> (i64) { (1) }"));
    }

    #[test]
    fn group_boundaries_matter() {
        assert_ne!(h("f(a, b)"), h("f(a), b"));
        assert_ne!(h(r#"x("ab")"#), h(r#"x("a", "b")"#));
    }

    #[test]
    fn fixed_vector() {
        // Cross-checked with Python `blake3` over the documented encoding (tag byte, u64 LE
        // length, text per token). Changing it breaks every user's cache: bump DOMAIN instead.
        let expected = "ef1d0f839a5dc0922ce949f117085dd4f8f6e31494d8efff2f509fae89d45b1a";
        assert_eq!(h("fn f() -> u8 { 1 }"), expected);
        assert_eq!(h("fn f()->u8{1}"), expected);
    }
}
