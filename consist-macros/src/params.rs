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

/// The role of a parameter.
#[derive(Clone)]
pub enum Role {
    /// Read from an artifact declared under the parameter's name.
    Input(InputKind),
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
    let role = match (forced.as_ref().map(|(w, _)| w.as_str()), segment.as_deref()) {
        (_, Some("StepContext")) => {
            if !by_ref {
                return Err(syn::Error::new_spanned(&ty, "take the context by reference: `ctx: &mut StepContext`"));
            }
            Role::Context { mutable }
        }
        (Some("runtime"), _) => Role::Runtime,
        (Some("config"), _) => Role::Config,
        (forced, Some("Path" | "PathBuf")) if forced != Some("config") => Role::Input(InputKind::Path),
        (_, Some("DataFrame")) => Role::Input(InputKind::Frame),
        (_, Some("Artifact")) => Role::Input(InputKind::Artifact),
        (Some("input"), _) => Role::Input(InputKind::Value(Box::new(owned_form(inner)))),
        _ => Role::Config,
    };
    if by_ref && mutable && !matches!(role, Role::Context { .. }) {
        return Err(syn::Error::new_spanned(&ty, "`&mut` parameters are only supported for the step context"));
    }
    if matches!(&role, Role::Input(_)) && matches!(inner, Type::ImplTrait(_)) {
        return Err(syn::Error::new_spanned(&ty, "`impl Trait` parameters are not supported in steps"));
    }
    Ok(Param { ident, ty, role, by_ref })
}
