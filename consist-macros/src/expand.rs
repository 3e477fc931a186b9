//! Code generation for `#[step]` and `#[helper]`.
//!
//! `#[step] fn f(..)` keeps `f` exactly as written (minus our parameter attributes) and adds a
//! module `f` beside it (modules live in the type namespace, functions in the value namespace):
//! `f::step(args..)` prepares a tracked call, `f::code_hash()` is its identity, and the step
//! registers itself with `inventory`. Generated code only names `::consist::__private` items and
//! `__consist_`-prefixed locals, so user names (`Result`, `Path`, `ctx`...) cannot shadow them.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericArgument, Item, ItemFn, Lifetime, LitStr, PathArguments, ReturnType, Type};

use crate::args::StepArgs;
use crate::identity::hash::hash_tokens;
use crate::identity::scope::{self, Scope, Source, Target};
use crate::params::{InputKind, Param, Role, Shape, classify};

/// What the source says about an annotated item: the items of its crate that it uses (see
/// `scope.rs`) or why none could be followed (then the code identity is the item's own tokens
/// and its declared `uses`, as documented), and the function, impl block or trait it is written
/// in, if any (`fn main`).
struct Found {
    scope: Scope,
    note: String,
    enclosing: Option<String>,
}

fn code_scope(source: Option<&Source>, item: &Item, kind: &'static str, name: &str, own: TokenStream) -> Found {
    let unfollowed = |note: String| Found { scope: Scope::default(), note, enclosing: None };
    let Some(source) = source else {
        return unfollowed("the compiler did not report the source file".to_owned());
    };
    let text = match std::fs::read_to_string(&source.path) {
        Ok(text) => text,
        Err(e) => return unfollowed(format!("{} cannot be read ({e})", source.path.display())),
    };
    let module = crate::identity::open_modules::module_path_at(&text, source.line);
    let enclosing = crate::identity::open_modules::enclosing_item_at(&text, source.line);
    let target = Target { name, kind, hash: hash_tokens(crate::identity::item::without_attrs(item)), module };
    match scope::covered(&text, &source.path, &target, own) {
        Ok(scope) => Found { scope, note: String::new(), enclosing },
        Err(reason) => Found { enclosing, ..unfollowed(reason) },
    }
}

/// A step must be a free function at module level: the generated `f::step` calls `super::f`.
fn placement_error(ident: &syn::Ident, enclosing: Option<&str>) -> Option<syn::Error> {
    let outer = enclosing?;
    Some(syn::Error::new_spanned(
        ident,
        format!(
            "#[step] must be defined at module level, not inside `{outer}`: the generated `{ident}::step` calls \
             `super::{ident}`, which `{outer}` hides; move `fn {ident}` out of it (to cache a method, write a free \
             function that calls it)"
        ),
    ))
}

/// A returned type that is an alias of `DataFrame` or `PathBuf`: outputs are mapped by the type's
/// name, so the alias would be stored as a typed value.
fn aliased_output_error(ty: &Type, aliases: &std::collections::BTreeMap<String, Vec<String>>) -> Option<syn::Error> {
    let name = last_ident(ty)?;
    let target = aliases.get(&name)?.iter().find(|t| *t == "DataFrame" || *t == "PathBuf")?;
    Some(syn::Error::new_spanned(
        ty,
        format!(
            "`{name}` is a type alias of `{target}`: write `{target}` here. #[step] maps outputs by the type's \
             name, so an alias would be stored as a typed value (which needs `Serialize`)"
        ),
    ))
}

/// `item` -> `item__mark_it_with_consist_helper`: the hidden module `#[helper]` and `#[step]`
/// generate beside every item they annotate. Its name is what the compiler shows when `uses`
/// names an item that is not marked (`cannot find `X__mark_it_with_consist_helper` in `physics``),
/// so it says what to do.
fn helper_ident(item: &syn::Ident) -> syn::Ident {
    format_ident!("{}__mark_it_with_consist_helper", item)
}

/// `a::b::item` -> `a::b::item__mark_it_with_consist_helper` (see [`helper_ident`]).
fn helper_module(path: &syn::Path) -> syn::Path {
    let mut path = relative_to_generated(path);
    if let Some(last) = path.segments.last_mut() {
        last.ident = helper_ident(&last.ident);
        last.arguments = PathArguments::None;
    }
    path
}

/// A path written in the user's module, as seen from a module generated inside it: `self::x`
/// becomes `super::x` and `super::x` becomes `super::super::x`.
fn relative_to_generated(path: &syn::Path) -> syn::Path {
    let mut path = path.clone();
    match path.segments.first().map(|s| s.ident.to_string()).as_deref() {
        Some("self") => path.segments[0].ident = format_ident!("super"),
        Some("super") => path.segments.insert(0, syn::PathSegment::from(format_ident!("super"))),
        _ => {}
    }
    path
}

/// The prefix under which a used helper's items are reported: its path without the last segment.
fn helper_prefix(path: &syn::Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments[..segments.len().saturating_sub(1)].join("::")
}

/// The identity items of a generated module: `TOKEN_HASH`, `CODE_ITEMS`, `SCOPE_NOTE`,
/// `BUILD_FACTS`, `code_hash()` and `code_items()`, combining the item's own tokens, the items
/// of its crate it covers, the build settings they depend on, and the helpers it declares with
/// `uses`.
fn identity_items(own_label: &str, token_hash: &str, scope: &Scope, note: &str, uses: &[syn::Path]) -> TokenStream {
    let covered = &scope.covered;
    let scope_hash = scope::combined_hash(token_hash, covered);
    let labels = covered.iter().map(|c| &c.label);
    let hashes = covered.iter().map(|c| &c.hash);
    let declared: Vec<String> = uses.iter().map(|p| quote!(#p).to_string().replace(' ', "")).collect();
    let unfollowed = scope.not_followed.iter().filter(|p| !declared.contains(p));
    let modules: Vec<syn::Path> = uses.iter().map(helper_module).collect();
    let prefixes: Vec<String> = uses.iter().map(helper_prefix).collect();
    let (run_env, compiled): (Vec<&scope::BuildFact>, Vec<&scope::BuildFact>) =
        scope.build.iter().partition(|fact| matches!(fact, scope::BuildFact::RunEnv(_)));
    let fact_labels = compiled.iter().map(|fact| fact.label());
    let fact_values = compiled.iter().map(|fact| match fact {
        scope::BuildFact::Cfg(predicate) => quote!(if ::core::cfg!(#predicate) { "true" } else { "false" }),
        scope::BuildFact::Env(var) | scope::BuildFact::RunEnv(var) => quote!(match ::core::option_env!(#var) {
            ::core::option::Option::Some(__consist_v) => __consist_v,
            ::core::option::Option::None => "(unset)",
        }),
    });
    let run_env = run_env.iter().filter_map(|fact| match fact {
        scope::BuildFact::RunEnv(var) => Some(var),
        _ => None,
    });
    quote! {
        /// blake3 of this item's own tokens (comments and formatting excluded).
        pub const TOKEN_HASH: &str = #token_hash;

        /// What the code identity covers: this item first, then the items of its crate that it
        /// uses, transitively, and the files they include (label, token or file hash).
        pub const CODE_ITEMS: &[(&str, &str)] = &[(#own_label, TOKEN_HASH), #((#labels, #hashes)),*];

        /// Why the items of its crate could not be followed (empty when they were).
        pub const SCOPE_NOTE: &str = #note;

        /// Code it uses that its identity cannot follow and `uses` does not declare: paths into
        /// modules whose file cannot be read, include paths it cannot work out.
        pub const NOT_FOLLOWED: &[&str] = &[#(#unfollowed),*];

        /// Build settings the covered code depends on, as this crate was compiled: `cfg`
        /// predicates (`"true"`/`"false"`) and compile-time environment variables.
        pub const BUILD_FACTS: &[(&str, &str)] = &[#((#fact_labels, #fact_values)),*];

        /// Environment variables the covered code reads while it runs (`env::var("NAME")`): their
        /// values when the step is called count in the code identity.
        pub const RUN_ENV: &[&str] = &[#(#run_env),*];

        /// Code identity: the tokens of this item and of the items of its crate it uses and the
        /// build settings they depend on, combined with the identities of the helpers it declares
        /// (`uses = [...]`).
        pub fn code_hash() -> ::std::string::String {
            let mut __consist_parts: ::std::vec::Vec<::std::string::String> = ::std::vec![#(#modules::code_hash()),*];
            __consist_parts.extend(::consist::__private::build_facts(BUILD_FACTS));
            __consist_parts.extend(::consist::__private::run_env(RUN_ENV).into_iter().map(|(l, h)| ::std::format!("{l}={h}")));
            ::consist::__private::combine_code_hash(#scope_hash, &__consist_parts)
        }

        /// Every item the code identity covers, with the declared helpers' items named by path.
        pub fn code_items() -> ::std::vec::Vec<(::std::string::String, ::std::string::String)> {
            let mut __consist_items = ::consist::__private::own_items(CODE_ITEMS);
            __consist_items.extend(::consist::__private::own_items(BUILD_FACTS));
            __consist_items.extend(::consist::__private::run_env(RUN_ENV));
            #( __consist_items.extend(::consist::__private::prefixed_items(#prefixes, #modules::code_items())); )*
            __consist_items
        }
    }
}

/// The hidden `<name>__mark_it_with_consist_helper` module through which `uses = [path::name]` reaches an
/// item's identity, whatever its kind. It repeats the identity items rather than re-exporting
/// them, so it also works for items declared inside a function body.
fn helper_alias(vis: &syn::Visibility, ident: &syn::Ident, identity: &TokenStream) -> TokenStream {
    let alias = helper_ident(ident);
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case, unused_imports)]
        #vis mod #alias {
            use super::*;
            #identity
        }
    }
}

/// On error: the user's item (so IDEs keep working) plus every error at once.
fn with_errors(item: TokenStream, error: syn::Error) -> TokenStream {
    let errors = error.to_compile_error();
    quote! { #item #errors }
}

fn combine(errors: Vec<syn::Error>) -> Option<syn::Error> {
    errors.into_iter().reduce(|mut all, e| {
        all.combine(e);
        all
    })
}

/// Entry point of `#[step]`.
pub fn step(attr: TokenStream, item: TokenStream, source: Option<Source>) -> TokenStream {
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => return with_errors(item, e),
    };
    let original = func.clone();
    let args = syn::parse2::<StepArgs>(attr);
    let params: Vec<syn::Result<Param>> = func.sig.inputs.iter_mut().map(classify).collect();
    let mut errors: Vec<syn::Error> = Vec::new();
    let args = args.map_err(|e| errors.push(e)).ok();
    let params: Vec<Param> = params.into_iter().filter_map(|p| p.map_err(|e| errors.push(e)).ok()).collect();
    errors.extend(check_signature(&func));
    match (args, combine(errors)) {
        (Some(args), None) => match expand_step(&args, &original, &func, &params, source.as_ref()) {
            Ok(tokens) => tokens,
            Err(e) => with_errors(func.into_token_stream(), e),
        },
        (_, Some(e)) => with_errors(func.into_token_stream(), e),
        (None, None) => unreachable!("a parse failure is recorded as an error"),
    }
}

fn check_signature(func: &ItemFn) -> Vec<syn::Error> {
    let sig = &func.sig;
    let mut errors = Vec::new();
    if let Some(a) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(
            a,
            "async steps are not supported: call the async code from a synchronous step (e.g. block_on)",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "generic steps are not supported: a step's code hash must name one concrete function",
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new_spanned(v, "variadic steps are not supported"));
    }
    errors
}

/// How the returned value is stored: the stored type, and how to wrap/unwrap the user's value.
struct OutputPlan {
    user: Type,
    stored: TokenStream,
    wrap: TokenStream,
    unwrap: TokenStream,
    arity: usize,
}

fn last_ident(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// `Result<T, E>`, `consist::Result<T>`, `StepResult<T>`, `PolarsResult<T>`, `io::Result<T>`...
/// (any type named `*Result` with a first type argument) -> `Some(T)`.
fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if !seg.ident.to_string().ends_with("Result") {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else { return None };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// (stored type, wrap fn, unwrap fn) of one artifact-sized part of the output.
fn part_plan(ty: &Type) -> (TokenStream, TokenStream, TokenStream) {
    match last_ident(ty).as_deref() {
        Some("DataFrame" | "PathBuf" | "Dir" | "FrameSet") => {
            (quote!(#ty), quote!(|__consist_v| __consist_v), quote!(|__consist_v| __consist_v))
        }
        _ => (
            quote!(::consist::Value<#ty>),
            quote!(::consist::Value),
            quote!(|__consist_v: ::consist::Value<#ty>| __consist_v.0),
        ),
    }
}

/// Types that are one output whatever their contents (never a `#[derive(Outputs)]` struct): a
/// step returning one of them with several `outputs` keys is told the arity, not a trait error.
const ONE_VALUE: &[&str] = &[
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "f32",
    "f64",
    "bool",
    "char",
    "String",
    "Vec",
    "Option",
    "HashMap",
    "BTreeMap",
    "HashSet",
    "BTreeSet",
    "DataFrame",
    "PathBuf",
    "Dir",
    "FrameSet",
    "Value",
];

/// How the returned value is stored; `declared` is the number of output keys.
fn output_plan(user: &Type, declared: usize) -> syn::Result<OutputPlan> {
    if let Type::ImplTrait(_) = user {
        return Err(syn::Error::new_spanned(
            user,
            "steps cannot return `impl Trait`: name the type so it can be stored",
        ));
    }
    if let Type::Tuple(tuple) = user {
        if tuple.elems.is_empty() {
            let unit = quote!(());
            return Ok(OutputPlan {
                user: user.clone(),
                stored: unit,
                wrap: quote!(|()| ()),
                unwrap: quote!(|()| ()),
                arity: 0,
            });
        }
        let parts: Vec<_> = tuple.elems.iter().map(part_plan).collect();
        let names: Vec<_> = (0..parts.len()).map(|i| format_ident!("__consist_{}", i)).collect();
        let stored = parts.iter().map(|p| &p.0);
        let wraps = parts.iter().map(|p| &p.1);
        let unwraps = parts.iter().map(|p| &p.2);
        return Ok(OutputPlan {
            user: user.clone(),
            stored: quote!((#(#stored,)*)),
            wrap: quote!(|(#(#names,)*)| (#((#wraps)(#names),)*)),
            unwrap: quote!(|(#(#names,)*)| (#((#unwraps)(#names),)*)),
            arity: parts.len(),
        });
    }
    if declared > 1 && !last_ident(user).is_some_and(|name| ONE_VALUE.contains(&name.as_str())) {
        // Several keys, one named type: a struct with #[derive(Outputs)] (checked by the compiler,
        // whose message the `Outputs` trait's `on_unimplemented` words).
        let identity = quote!(|__consist_v| __consist_v);
        return Ok(OutputPlan {
            user: user.clone(),
            stored: quote!(#user),
            wrap: identity.clone(),
            unwrap: identity,
            arity: declared,
        });
    }
    let (stored, wrap, unwrap) = part_plan(user);
    Ok(OutputPlan { user: user.clone(), stored, wrap, unwrap, arity: 1 })
}

/// How the generated body reads an input parameter from the context (a `let` of the local), and
/// the argument it passes to the function.
fn input_load(
    kind: &InputKind,
    shape: &Shape,
    key: &LitStr,
    local: &syn::Ident,
    by_ref: bool,
) -> (TokenStream, TokenStream) {
    // One artifact, given its key (`__consist_ctx.input(key)` and friends).
    let by_key = match kind {
        InputKind::Path => quote!(::std::path::PathBuf::from(__consist_ctx.input_path(#key)?)),
        InputKind::Frame => quote!(__consist_ctx.load::<::consist::__private::DataFrame>(#key)?),
        InputKind::Artifact => quote!(::core::clone::Clone::clone(__consist_ctx.input(#key)?)),
        InputKind::Value(t) => quote!(__consist_ctx.load::<::consist::Value<#t>>(#key)?.0),
    };
    // One artifact of a list, given the artifact `__consist_a`.
    let by_artifact = match kind {
        InputKind::Path => quote!(::core::clone::Clone::clone(&__consist_a.path)),
        InputKind::Frame => quote!(<::consist::__private::DataFrame as ::consist::Output>::load(__consist_a)?),
        _ => quote!(::core::clone::Clone::clone(__consist_a)),
    };
    let borrow = |elem: &Type| quote!(<_ as ::core::borrow::Borrow<#elem>>::borrow);
    match shape {
        Shape::One => {
            let arg = if by_ref { quote!(&#local) } else { quote!(#local) };
            (quote!(let #local = #by_key;), arg)
        }
        Shape::Optional(element) => {
            let load = quote! {
                let #local = if __consist_ctx.has_input(#key) { ::core::option::Option::Some(#by_key) } else { ::core::option::Option::None };
            };
            let arg = if element.by_ref {
                let borrow = borrow(&element.ty);
                quote!(#local.as_ref().map(#borrow))
            } else {
                quote!(#local)
            };
            (load, arg)
        }
        Shape::List(element) => {
            let mut load = quote! {
                let mut #local = ::std::vec::Vec::new();
                for __consist_a in __consist_ctx.input_list(#key) {
                    #local.push(#by_artifact);
                }
            };
            let value = if element.by_ref {
                let (borrow, elem) = (borrow(&element.ty), &element.ty);
                let view = format_ident!("{}_refs", local);
                load.extend(quote! {
                    let #view: ::std::vec::Vec<&#elem> = #local.iter().map(#borrow).collect();
                });
                view
            } else {
                local.clone()
            };
            let arg = if by_ref { quote!(&#value) } else { quote!(#value) };
            (load, arg)
        }
    }
}

/// Give elided reference lifetimes of a runner parameter the call's lifetime.
fn with_call_lifetime(ty: &Type) -> Type {
    let mut ty = ty.clone();
    if let Type::Reference(r) = &mut ty
        && r.lifetime.is_none()
    {
        r.lifetime = Some(Lifetime::new("'__consist_a", Span::call_site()));
    }
    ty
}

/// Why a step's parameters or outputs cannot work: more than one `StepContext`, or declared keys
/// that do not match what the return type carries (`arity` outputs).
fn shape_errors(args: &StepArgs, func: &ItemFn, params: &[Param], arity: usize) -> Vec<syn::Error> {
    let mut errors = Vec::new();
    let contexts = params.iter().filter(|p| matches!(p.role, Role::Context { .. })).count();
    if contexts > 1 {
        errors.push(syn::Error::new_spanned(&func.sig.inputs, "a step takes at most one StepContext parameter"));
    }
    let declared = args.outputs.as_ref().map_or(0, Vec::len);
    match (arity, declared) {
        (0, 0) => {}
        (0, _) if contexts == 0 => errors.push(syn::Error::new_spanned(
            &func.sig,
            "this step declares outputs but returns `()` and has no `&mut StepContext` parameter to log them with",
        )),
        (0, _) => {}
        (n, 0) => errors.push(syn::Error::new_spanned(
            &func.sig.output,
            format!("this step returns {n} output(s): name them, e.g. #[step(outputs = [\"result\"])]"),
        )),
        (n, m) if n != m => errors.push(syn::Error::new(
            args.outputs.as_ref().and_then(|o| o.first()).map_or_else(|| func.sig.output.span(), |o| o.span()),
            format!("`outputs` lists {m} key(s) but the return type carries {n} output(s)"),
        )),
        _ => {}
    }
    errors
}

/// The generated code for a step's parameters: the runner's parameters, how they register with
/// the step's spec (inputs and config), how the body's arguments are loaded, and the arguments.
struct CallCode {
    runner_params: Vec<TokenStream>,
    register: Vec<TokenStream>,
    loads: Vec<TokenStream>,
    call_args: Vec<TokenStream>,
}

impl CallCode {
    fn of(params: &[Param]) -> CallCode {
        let mut code =
            CallCode { runner_params: Vec::new(), register: Vec::new(), loads: Vec::new(), call_args: Vec::new() };
        for p in params {
            let name = &p.ident;
            let key = LitStr::new(&name.to_string(), name.span());
            let local = format_ident!("__consist_arg_{}", name);
            match &p.role {
                Role::Input(kind, shape) => {
                    let (runner, add) = match shape {
                        Shape::One => (quote!(impl ::core::convert::Into<::consist::Input>), quote!(add_input)),
                        Shape::Optional(_) => {
                            (quote!(impl ::core::convert::Into<::consist::MaybeInput>), quote!(add_optional_input))
                        }
                        Shape::List(_) => (
                            quote!(
                                impl ::core::iter::IntoIterator<Item = impl ::core::convert::Into<::consist::Input>>
                            ),
                            quote!(add_input_list),
                        ),
                    };
                    code.runner_params.push(quote!(#name: #runner));
                    code.register.push(quote!(__consist_spec.#add(#key, #name);));
                    let (load, arg) = input_load(kind, shape, &key, &local, p.by_ref);
                    code.loads.push(load);
                    code.call_args.push(arg);
                }
                Role::Config | Role::Runtime => {
                    let ty = with_call_lifetime(&p.ty);
                    code.runner_params.push(quote!(#name: #ty));
                    if matches!(p.role, Role::Config) {
                        code.register.push(quote!(__consist_spec.add_config(#key, &#name);));
                    } else {
                        code.register.push(quote!({
                            #[allow(unused_imports)]
                            use ::consist::__private::{RecordOpaque as _, RecordSerialize as _};
                            (&::consist::__private::Runtime(&#name)).record_in(&mut __consist_spec, #key);
                        }));
                    }
                    code.loads.push(quote!(let #local = #name;));
                    code.call_args.push(quote!(#local));
                }
                Role::Context { mutable: true } => code.call_args.push(quote!(&mut *__consist_ctx)),
                Role::Context { mutable: false } => code.call_args.push(quote!(&*__consist_ctx)),
            }
        }
        code
    }
}

fn expand_step(
    args: &StepArgs,
    original: &ItemFn,
    func: &ItemFn,
    params: &[Param],
    source: Option<&Source>,
) -> syn::Result<TokenStream> {
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let model_name = args.name.clone().unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));

    let (fallible, user_ty): (bool, Type) = match &func.sig.output {
        ReturnType::Default => (false, syn::parse_quote!(())),
        ReturnType::Type(_, ty) => match result_ok_type(ty) {
            Some(ok) => (true, ok.clone()),
            None => (false, (**ty).clone()),
        },
    };
    let outputs: Vec<LitStr> = args.outputs.clone().unwrap_or_default();
    let plan = output_plan(&user_ty, outputs.len())?;
    let (sig, block) = (&original.sig, &original.block);
    let found = code_scope(source, &Item::Fn(original.clone()), "fn", &ident.to_string(), quote!(#sig #block));
    let mut errors: Vec<syn::Error> = placement_error(ident, found.enclosing.as_deref()).into_iter().collect();
    let parts: Vec<&Type> = match &user_ty {
        Type::Tuple(t) => t.elems.iter().collect(),
        other => vec![other],
    };
    errors.extend(parts.into_iter().filter_map(|part| aliased_output_error(part, &found.scope.aliases)));
    errors.extend(shape_errors(args, func, params, plan.arity));
    if let Some(e) = combine(errors) {
        return Err(e);
    }

    // Identity: the original tokens (signature with our attributes, body) plus the options that
    // change what the step means.
    let version = args.version.as_ref().map(|v| v.value()).unwrap_or_default();
    let token_hash = hash_tokens(quote! { #sig #block version = #version outputs = [#(#outputs),*] });
    let identity = identity_items(&format!("fn {ident}"), &token_hash, &found.scope, &found.note, &args.uses);
    let alias = helper_alias(vis, ident, &identity);

    let CallCode { runner_params, register, loads, call_args } = CallCode::of(params);

    let into_result = if fallible {
        quote!(__consist_ret.map_err(::consist::__private::box_error))
    } else {
        quote!(::consist::__private::ok(__consist_ret))
    };
    let OutputPlan { user, stored, wrap, unwrap, .. } = plan;
    let body_span = func.block.span();
    let invoke = quote_spanned! {body_span=> super::#ident(#(#call_args),*) };
    let doc = format!("Run [`{ident}`](fn@super::{ident}) as a tracked consist step (generated by `#[step]`).");
    let run_doc = format!(
        "Prepare a tracked call of `{ident}`: inputs are matched to artifacts by parameter name, the other arguments are hashed as config. Run it with `Tracker::run`."
    );
    let toolchain = crate::toolchain::expr();

    Ok(quote! {
        #func

        #[doc = #doc]
        #[allow(non_snake_case, unused_imports, clippy::module_name_repetitions)]
        #vis mod #ident {
            use super::*;

            #identity

            /// Model name recorded for runs of this step.
            pub const NAME: &str = #model_name;

            /// The toolchain this step was compiled with (rustc, target, profile, `Cargo.lock`).
            pub fn toolchain() -> ::consist::Toolchain {
                #toolchain
            }

            #[doc = #run_doc]
            pub fn step<'__consist_a>(#(#runner_params),*) -> ::consist::StepCall<'__consist_a, #user, #stored> {
                let mut __consist_spec =
                    ::consist::__private::StepSpec::for_step(NAME, code_hash(), code_items(), &[#(#outputs),*])
                        .with_toolchain(toolchain());
                #(#register)*
                ::consist::__private::call(
                    __consist_spec,
                    move |__consist_ctx: &mut ::consist::StepContext<'_>| {
                        #(#loads)*
                        let __consist_ret = #invoke;
                        #into_result.map(#wrap)
                    },
                    #unwrap,
                )
            }

            ::consist::__private::inventory::submit! {
                ::consist::__private::StepInfo {
                    name: NAME,
                    module: ::core::module_path!(),
                    file: ::core::file!(),
                    line: ::core::line!(),
                    outputs: &[#(#outputs),*],
                    version: #version,
                    code_hash,
                    code_items,
                    not_followed: NOT_FOLLOWED,
                }
            }
        }

        #alias
    })
}

/// Entry point of `#[helper]`: the item, plus a module with its code identity.
pub fn helper(attr: TokenStream, item: TokenStream, source: Option<Source>) -> TokenStream {
    let parsed: Item = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(e) => return with_errors(item, e),
    };
    let args: StepArgs = match syn::parse2(attr) {
        Ok(a) => a,
        Err(e) => return with_errors(item, e),
    };
    let mut errors = Vec::new();
    if let Some(o) = &args.outputs {
        errors.push(syn::Error::new(
            o.first().map_or_else(Span::call_site, |l| l.span()),
            "`outputs` is a #[step] option; #[helper] takes only `uses`",
        ));
    }
    for (lit, option) in [(&args.name, "name"), (&args.version, "version")] {
        if let Some(l) = lit {
            errors.push(syn::Error::new_spanned(
                l,
                format!("`{option}` is a #[step] option; #[helper] takes only `uses`"),
            ));
        }
    }
    let named = crate::identity::item::kind_and_name(&parsed).filter(|(kind, _)| *kind != "macro_rules!");
    let Some((kind, name)) = named else {
        let hint = if matches!(parsed, Item::Impl(_)) {
            "put #[helper] on the type instead: the impl blocks of its module are followed with it"
        } else {
            "#[helper] goes on a function, const, static, struct, enum, union, type alias or trait"
        };
        errors.push(syn::Error::new_spanned(&item, hint));
        return with_errors(item, combine(errors).expect("an error was just pushed"));
    };
    if let Some(e) = combine(errors) {
        return with_errors(item, e);
    }
    // A function is hashed as its signature and body (as before items were followed); any other
    // item as all of its tokens.
    let own = match &parsed {
        Item::Fn(f) => {
            let (sig, block) = (&f.sig, &f.block);
            quote! { #sig #block }
        }
        other => other.to_token_stream(),
    };
    let token_hash = hash_tokens(own.clone());
    let found = code_scope(source.as_ref(), &parsed, kind, &name, own);
    let identity = identity_items(&format!("{kind} {name}"), &token_hash, &found.scope, &found.note, &args.uses);
    let ident = format_ident!("{}", name);
    let vis = match &parsed {
        Item::Fn(i) => &i.vis,
        Item::Const(i) => &i.vis,
        Item::Static(i) => &i.vis,
        Item::Struct(i) => &i.vis,
        Item::Enum(i) => &i.vis,
        Item::Union(i) => &i.vis,
        Item::Type(i) => &i.vis,
        Item::Trait(i) => &i.vis,
        Item::TraitAlias(i) => &i.vis,
        _ => unreachable!("kind_and_name accepted only named items with a visibility"),
    };
    let alias = helper_alias(vis, &ident, &identity);
    if kind != "fn" {
        return quote! { #parsed #alias };
    }
    let doc = format!("Code identity of the helper [`{name}`](fn@super::{name}) (generated by `#[helper]`).");
    quote! {
        #parsed

        #[doc = #doc]
        #[allow(non_snake_case, unused_imports)]
        #vis mod #ident {
            use super::*;
            #identity
        }

        #alias
    }
}
