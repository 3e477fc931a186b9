//! What each parameter of a step is: an input (matched to an artifact by name), config (hashed),
//! runtime-only (passed, not hashed), or the step context.

use syn::{FnArg, Ident, Pat, Type};

/// How an input parameter receives its artifact.
#[derive(Clone)]
pub enum InputKind {
    /// `&Path` / `&PathBuf` / `PathBuf`: the artifact's path.
    Path,
    /// `&DataFrame` / `DataFrame`: the artifact loaded as a frame (Parquet or CSV).
    Frame,
    /// `&Artifact` / `Artifact`: the artifact record itself.
    Artifact,
    /// `#[consist(input)] &T` / `T`: a value artifact decoded as `T` (`&[T]` as `Vec<T>`,
    /// `&str` as `String`).
    Value(Box<Type>),
}

/// How many artifacts an input parameter takes.
#[derive(Clone)]
pub enum Shape {
    /// Exactly one (`&DataFrame`).
    One,
    /// One that may be absent (`Option<&DataFrame>`); absence is part of the signature.
    Optional(Element),
    /// An ordered list (`&[DataFrame]`, `Vec<&DataFrame>`), one Merkle link per element, declared
    /// under the keys `name[0]`, `name[1]`, ...
    List(Element),
}

/// The element type of an optional or list input as the function takes it.
#[derive(Clone)]
pub struct Element {
    /// The element type without its reference (`Path`, `DataFrame`).
    pub ty: Box<Type>,
    /// Taken by reference (`Option<&Path>`, `Vec<&DataFrame>`).
    pub by_ref: bool,
}

/// The role of a parameter.
#[derive(Clone)]
pub enum Role {
    /// Read from artifacts declared under the parameter's name.
    Input(InputKind, Shape),
    /// Part of the config hash.
    Config,
    /// Passed through, not hashed.
    Runtime,
    /// The step context (`&mut StepContext`).
    Context { mutable: bool },
}

/// One parameter of the step function.
pub struct Param {
    pub ident: Ident,
    pub ty: Type,
    pub role: Role,
    /// Taken by reference (`&T`): the generated call passes `&local`.
    pub by_ref: bool,
}

fn last_segment(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// The input kind of an element type named by its last path segment.
fn artifact_kind(segment: Option<&str>) -> Option<InputKind> {
    match segment? {
        "Path" | "PathBuf" => Some(InputKind::Path),
        "DataFrame" => Some(InputKind::Frame),
        "Artifact" => Some(InputKind::Artifact),
        _ => None,
    }
}

/// `Option<T>` -> `("Option", T)`, `Vec<T>` -> `("Vec", T)`.
fn single_generic(ty: &Type) -> Option<(String, &Type)> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else { return None };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [syn::GenericArgument::Type(t)] => Some((seg.ident.to_string(), t)),
        _ => None,
    }
}

/// An optional or list input: `Option<E>`, `Vec<E>` or `[E]` (behind `&`) whose element `E` (or
/// `&E`) is a path, frame or artifact type.
fn container_input(inner: &Type) -> Option<(InputKind, Shape)> {
    let (container, element) = match inner {
        Type::Slice(s) => ("Vec".to_owned(), &*s.elem),
        other => single_generic(other)?,
    };
    let (elem_ty, elem_ref, elem_mut) = strip_ref(element);
    if elem_mut {
        return None;
    }
    let kind = artifact_kind(last_segment(elem_ty).as_deref())?;
    let element = Element { ty: Box::new(elem_ty.clone()), by_ref: elem_ref };
    match container.as_str() {
        "Option" => Some((kind, Shape::Optional(element))),
        "Vec" => Some((kind, Shape::List(element))),
        _ => None,
    }
}

/// Whether a type mentions a path, frame or artifact type anywhere (so it was meant as an input).
fn mentions_artifact_types(ty: &Type) -> bool {
    fn walk(tokens: proc_macro2::TokenStream) -> bool {
        tokens.into_iter().any(|t| match t {
            proc_macro2::TokenTree::Ident(i) => {
                ["Path", "PathBuf", "DataFrame", "Artifact"].contains(&i.to_string().as_str())
            }
            proc_macro2::TokenTree::Group(g) => walk(g.stream()),
            _ => false,
        })
    }
    walk(quote::ToTokens::to_token_stream(ty))
}

/// The parameter types `#[step]` maps onto inputs, for error messages.
pub const SUPPORTED_INPUTS: &str = "`&Path`/`PathBuf`, `&DataFrame`/`DataFrame`, `&Artifact`/`Artifact` (one input), \
`Option<..>` of one of these, by value or reference (an input that may be absent), `&[..]`/`Vec<..>` of one of these \
(an ordered list of inputs), or `#[consist(input)] T` (a typed value artifact); any other type is config \
(`Serialize`), and `#[consist(config)]` / `#[consist(runtime)]` say so explicitly";

fn strip_ref(ty: &Type) -> (&Type, bool, bool) {
    match ty {
        Type::Reference(r) => (&r.elem, true, r.mutability.is_some()),
        other => (other, false, false),
    }
}

/// The owned type a borrowed value input is decoded into: `[T]` -> `Vec<T>`, `str` -> `String`.
fn owned_form(ty: &Type) -> Type {
    match ty {
        Type::Slice(s) => {
            let elem = &s.elem;
            syn::parse_quote!(::std::vec::Vec<#elem>)
        }
        Type::Path(p) if p.path.is_ident("str") => syn::parse_quote!(::std::string::String),
        other => other.clone(),
    }
}

/// Classify a parameter; removes `#[consist(...)]` attributes from `arg` (they are ours).
pub fn classify(arg: &mut FnArg) -> syn::Result<Param> {
    let typed = match arg {
        FnArg::Typed(t) => t,
        FnArg::Receiver(r) => {
            return Err(syn::Error::new_spanned(
                r,
                "steps must be free functions: `self` parameters are not supported",
            ));
        }
    };
    let mut forced: Option<(String, proc_macro2::Span)> = None;
    let mut errors: Vec<syn::Error> = Vec::new();
    typed.attrs.retain(|attr| {
        if !attr.path().is_ident("consist") {
            return true;
        }
        match attr.parse_args::<Ident>() {
            Ok(word) if ["input", "config", "runtime"].contains(&word.to_string().as_str()) => {
                if forced.is_some() {
                    errors.push(syn::Error::new_spanned(attr, "only one `#[consist(..)]` role per parameter"));
                }
                forced = Some((word.to_string(), word.span()));
            }
            _ => errors.push(syn::Error::new_spanned(
                attr,
                "expected `#[consist(input)]`, `#[consist(config)]` or `#[consist(runtime)]`",
            )),
        }
        false
    });
    if let Some(first) = errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    }) {
        return Err(first);
    }
    let ident = match &*typed.pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "step parameters must be plain names (`threshold: f64`): the name is the input or config key",
            ));
        }
    };
    let ty = (*typed.ty).clone();
    let (inner, by_ref, mutable) = strip_ref(&ty);
    let segment = last_segment(inner);
    let forced = forced.as_ref().map(|(w, _)| w.as_str());
    let role = match (forced, segment.as_deref()) {
        (_, Some("StepContext")) => {
            if !by_ref {
                return Err(syn::Error::new_spanned(&ty, "take the context by reference: `ctx: &mut StepContext`"));
            }
            Role::Context { mutable }
        }
        (Some("runtime"), _) => Role::Runtime,
        (Some("config"), _) => Role::Config,
        (_, seg) if artifact_kind(seg).is_some() => Role::Input(artifact_kind(seg).expect("checked"), Shape::One),
        _ if container_input(inner).is_some() => {
            let (kind, shape) = container_input(inner).expect("checked");
            if by_ref && matches!(shape, Shape::Optional(_)) {
                return Err(syn::Error::new_spanned(
                    &ty,
                    "take an optional input as `Option<&T>` (or `Option<T>`), not `&Option<T>`",
                ));
            }
            Role::Input(kind, shape)
        }
        (Some("input"), _) => Role::Input(InputKind::Value(Box::new(owned_form(inner))), Shape::One),
        _ if mentions_artifact_types(inner) => {
            return Err(syn::Error::new_spanned(
                &ty,
                format!("`#[step]` cannot map this parameter type onto inputs; supported: {SUPPORTED_INPUTS}"),
            ));
        }
        _ => Role::Config,
    };
    if by_ref && mutable && !matches!(role, Role::Context { .. }) {
        return Err(syn::Error::new_spanned(&ty, "`&mut` parameters are only supported for the step context"));
    }
    if matches!(&role, Role::Input(..)) && matches!(inner, Type::ImplTrait(_)) {
        return Err(syn::Error::new_spanned(&ty, "`impl Trait` parameters are not supported in steps"));
    }
    Ok(Param { ident, ty, role, by_ref })
}
