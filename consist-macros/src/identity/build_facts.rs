//! Build settings that covered code depends on: `cfg` predicates and compile-time environment
//! variables, evaluated in the user's crate when it compiles (`cfg!(..)`, `option_env!(..)` in the
//! generated code), so a feature flag or a variable read by `env!` counts in the code identity.

use proc_macro2::{TokenStream, TokenTree};

use super::names::compact;

/// One build setting that covered code depends on (see [`Scope::build`]).
#[derive(Debug, Clone)]
pub enum BuildFact {
    /// A `cfg` predicate, e.g. `feature = "precise"`.
    Cfg(TokenStream),
    /// An environment variable read at compile time.
    Env(String),
}

impl BuildFact {
    /// How the fact is listed among the code items: `cfg(feature = "precise")`, `env HUNT_SCALE`.
    pub fn label(&self) -> String {
        match self {
            BuildFact::Cfg(predicate) => format!("cfg({})", compact(predicate.clone())),
            BuildFact::Env(var) => format!("env {var}"),
        }
    }
}

/// The build settings `tokens` depend on: `cfg(..)` in attributes and `cfg!(..)`, the predicate
/// of `cfg_attr(..)`, and `env!("VAR")` / `option_env!("VAR")`.
pub fn build_facts(tokens: TokenStream, out: &mut Vec<BuildFact>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    // The arguments of `include!(concat!(env!("OUT_DIR"), ..))`: the file counts by its bytes,
    // so where the variable points (a target directory) does not count.
    let mut include_args = None;
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(name)
                if ["include", "include_str", "include_bytes"].contains(&name.to_string().as_str()) =>
            {
                include_args = Some(i + 2);
            }
            TokenTree::Group(_) if include_args == Some(i) => {}
            TokenTree::Ident(name) => {
                let bang = matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
                let args = trees.get(if bang { i + 2 } else { i + 1 });
                let Some(TokenTree::Group(args)) = args else { continue };
                match name.to_string().as_str() {
                    "cfg" => out.push(BuildFact::Cfg(args.stream())),
                    "cfg_attr" if !bang => {
                        let predicate = args
                            .stream()
                            .into_iter()
                            .take_while(|t| !matches!(t, TokenTree::Punct(p) if p.as_char() == ','));
                        out.push(BuildFact::Cfg(predicate.collect()));
                    }
                    "env" | "option_env" if bang => {
                        if let Ok(var) = syn::parse2::<syn::LitStr>(args.stream()) {
                            out.push(BuildFact::Env(var.value()));
                        }
                    }
                    _ => {}
                }
            }
            TokenTree::Group(g) => build_facts(g.stream(), out),
            _ => {}
        }
    }
}
