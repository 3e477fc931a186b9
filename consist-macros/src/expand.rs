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
use syn::{GenericArgument, ItemFn, Lifetime, LitStr, PathArguments, ReturnType, Type};

use crate::args::StepArgs;
use crate::hash::hash_tokens;
use crate::params::{InputKind, Param, Role, classify};

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
pub fn step(attr: TokenStream, item: TokenStream) -> TokenStream {
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
        (Some(args), None) => match expand_step(&args, &original, &func, &params) {
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
        Some("DataFrame" | "PathBuf") => {
            (quote!(#ty), quote!(|__consist_v| __consist_v), quote!(|__consist_v| __consist_v))
        }
        _ => (
            quote!(::consist::Value<#ty>),
            quote!(::consist::Value),
            quote!(|__consist_v: ::consist::Value<#ty>| __consist_v.0),
        ),
    }
}

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
    if declared > 1 {
        // Several keys, one named type: a struct with #[derive(Outputs)] (checked by the compiler).
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

fn expand_step(args: &StepArgs, original: &ItemFn, func: &ItemFn, params: &[Param]) -> syn::Result<TokenStream> {
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
    let has_context = params.iter().any(|p| matches!(p.role, Role::Context { .. }));
    let mut errors = Vec::new();
    if params.iter().filter(|p| matches!(p.role, Role::Context { .. })).count() > 1 {
        errors.push(syn::Error::new_spanned(&func.sig.inputs, "a step takes at most one StepContext parameter"));
    }
    match (plan.arity, outputs.len()) {
        (0, 0) => {}
        (0, _) if !has_context => errors.push(syn::Error::new_spanned(
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
    if let Some(e) = combine(errors) {
        return Err(e);
    }

    // Identity: the original tokens (signature with our attributes, body) plus the options that
    // change what the step means.
    let (sig, block) = (&original.sig, &original.block);
    let version = args.version.as_ref().map(|v| v.value()).unwrap_or_default();
    let token_hash = hash_tokens(quote! { #sig #block version = #version outputs = [#(#outputs),*] });
    let uses = &args.uses;

    let mut runner_params = Vec::new();
    let mut register = Vec::new();
    let mut loads = Vec::new();
    let mut call_args = Vec::new();
    for p in params {
        let name = &p.ident;
        let key = LitStr::new(&name.to_string(), name.span());
        let local = format_ident!("__consist_arg_{}", name);
        let pass = if p.by_ref { quote!(&#local) } else { quote!(#local) };
        match &p.role {
            Role::Input(kind) => {
                runner_params.push(quote!(#name: impl ::core::convert::Into<::consist::Input>));
                register.push(quote!(__consist_spec.add_input(#key, #name);));
                let load = match kind {
                    InputKind::Path => quote!(::std::path::PathBuf::from(__consist_ctx.input_path(#key)?)),
                    InputKind::Frame => quote!(__consist_ctx.load::<::consist::__private::DataFrame>(#key)?),
                    InputKind::Artifact => quote!(::core::clone::Clone::clone(__consist_ctx.input(#key)?)),
                    InputKind::Value(t) => quote!(__consist_ctx.load::<::consist::Value<#t>>(#key)?.0),
                };
                loads.push(quote!(let #local = #load;));
                call_args.push(pass);
            }
            Role::Config | Role::Runtime => {
                let ty = with_call_lifetime(&p.ty);
                runner_params.push(quote!(#name: #ty));
                if matches!(p.role, Role::Config) {
                    register.push(quote!(__consist_spec.add_config(#key, &#name);));
                }
                loads.push(quote!(let #local = #name;));
                call_args.push(quote!(#local));
            }
            Role::Context { mutable: true } => call_args.push(quote!(&mut *__consist_ctx)),
            Role::Context { mutable: false } => call_args.push(quote!(&*__consist_ctx)),
        }
    }

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

    Ok(quote! {
        #func

        #[doc = #doc]
        #[allow(non_snake_case, unused_imports, clippy::module_name_repetitions)]
        #vis mod #ident {
            use super::*;

            /// blake3 of this step's tokens (signature and body) and options.
            pub const TOKEN_HASH: &str = #token_hash;

            /// Model name recorded for runs of this step.
            pub const NAME: &str = #model_name;

            /// Code identity: the token hash combined with the declared helpers' identities.
            pub fn code_hash() -> ::std::string::String {
                ::consist::__private::combine_code_hash(TOKEN_HASH, &[#(#uses::code_hash()),*])
            }

            #[doc = #run_doc]
            pub fn step<'__consist_a>(#(#runner_params),*) -> ::consist::StepCall<'__consist_a, #user, #stored> {
                let mut __consist_spec = ::consist::__private::StepSpec::for_step(NAME, code_hash(), &[#(#outputs),*]);
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
                    code_hash,
                }
            }
        }
    })
}

/// Entry point of `#[helper]`: the function, plus a module with its code hash.
pub fn helper(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
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
    if let Some(e) = combine(errors) {
        return with_errors(item, e);
    }
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let (sig, block) = (&func.sig, &func.block);
    let token_hash = hash_tokens(quote! { #sig #block });
    let uses = &args.uses;
    let doc = format!("Code identity of the helper [`{ident}`](fn@super::{ident}) (generated by `#[helper]`).");
    quote! {
        #func

        #[doc = #doc]
        #[allow(non_snake_case, unused_imports)]
        #vis mod #ident {
            use super::*;

            /// blake3 of this helper's tokens.
            pub const TOKEN_HASH: &str = #token_hash;

            /// Code identity: the token hash combined with the helpers it declares.
            pub fn code_hash() -> ::std::string::String {
                ::consist::__private::combine_code_hash(TOKEN_HASH, &[#(#uses::code_hash()),*])
            }
        }
    }
}
