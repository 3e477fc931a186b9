//! What an item of a crate is called: its kind and name (`fn advance`, `const SCALE`), and its
//! tokens without outer attributes. A leaf of the code-identity analyzer: every other module
//! names items through it.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Item;
use syn::ext::IdentExt;

/// The item kind and name of `item`, if it is a named item that can be referenced.
pub fn kind_and_name(item: &Item) -> Option<(&'static str, String)> {
    // `r#gen` is called as `r#gen(..)`, which identifiers() reads as `gen`.
    let named = |kind: &'static str, ident: &syn::Ident| Some((kind, ident.unraw().to_string()));
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
