//! Build settings that covered code depends on: `cfg` predicates and compile-time environment
//! variables, evaluated in the user's crate when it compiles (`cfg!(..)`, `option_env!(..)` in the
//! generated code), so a feature flag or a variable read by `env!` counts in the code identity;
//! and environment variables the code reads while it runs (`env::var("NAME")`), read when the
//! step is called, so a changed value re-runs it instead of hitting.

use proc_macro2::{TokenStream, TokenTree};

use super::names::compact;

/// One build setting that covered code depends on (see [`Scope::build`]).
#[derive(Debug, Clone)]
pub enum BuildFact {
    /// A `cfg` predicate, e.g. `feature = "precise"`.
    Cfg(TokenStream),
    /// An environment variable read at compile time.
    Env(String),
    /// An environment variable read at run time (`std::env::var("NAME")`, `env::var_os(..)`).
    RunEnv(String),
}

impl BuildFact {
    /// How the fact is listed among the code items: `cfg(feature = "precise")`, `env HUNT_SCALE`.
    pub fn label(&self) -> String {
        match self {
            BuildFact::Cfg(predicate) => format!("cfg({})", compact(predicate.clone())),
            BuildFact::Env(var) => format!("env {var}"),
            BuildFact::RunEnv(var) => format!("env {var} at run time"),
        }
    }
}

/// The build settings `tokens` depend on: `cfg(..)` in attributes and `cfg!(..)`, the predicate
/// of `cfg_attr(..)`, and `env!("VAR")` / `option_env!("VAR")`; and the variables read at run
/// time by a literal name as `env::var("VAR")` or `env::var_os("VAR")` (any path ending so).
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
                    "var" | "var_os" if !bang && after_env_path(&trees[..i]) => {
                        if let Ok(var) = syn::parse2::<syn::LitStr>(args.stream()) {
                            out.push(BuildFact::RunEnv(var.value()));
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

/// Whether `before` ends with `env::` (so the next name is `env::var`, `std::env::var`...).
fn after_env_path(before: &[TokenTree]) -> bool {
    match before {
        [.., TokenTree::Ident(env), TokenTree::Punct(a), TokenTree::Punct(b)] => {
            env == "env" && a.as_char() == ':' && b.as_char() == ':'
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_read_while_the_code_runs_are_facts_by_their_literal_names() {
        let tokens = quote::quote! {
            let a = std::env::var("SIR_SEASON");
            let b = env::var_os("OTHER");
            let c = var("NOT_AFTER_ENV");
            let d = std::env::var(name);
            let e = env!("AT_BUILD");
        };
        let mut facts = Vec::new();
        build_facts(tokens, &mut facts);
        let labels: Vec<String> = facts.iter().map(BuildFact::label).collect();
        assert_eq!(labels, ["env SIR_SEASON at run time", "env OTHER at run time", "env AT_BUILD"]);
    }
}
