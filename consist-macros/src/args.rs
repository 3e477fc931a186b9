//! Parsing of the attribute arguments: `#[step(outputs = [...], uses = [...], name = "...", version = "...")]`.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{LitStr, Path, Token, bracketed};

mod kw {
    syn::custom_keyword!(outputs);
    syn::custom_keyword!(uses);
    syn::custom_keyword!(name);
    syn::custom_keyword!(version);
}

/// Options of `#[step]` (and, with only `uses`, of `#[helper]`).
#[derive(Default)]
pub struct StepArgs {
    /// Output keys, in the order of the returned value's parts.
    pub outputs: Option<Vec<LitStr>>,
    /// Helpers whose code hashes are part of this step's identity.
    pub uses: Vec<Path>,
    /// Model name override.
    pub name: Option<LitStr>,
    /// Manual identity bump.
    pub version: Option<LitStr>,
}

fn duplicate(span: &impl quote::ToTokens, option: &str) -> syn::Error {
    syn::Error::new_spanned(span, format!("`{option}` set multiple times"))
}

impl Parse for StepArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = StepArgs::default();
        let mut errors: Option<syn::Error> = None;
        let mut push = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::outputs) {
                let key: kw::outputs = input.parse()?;
                input.parse::<Token![=]>()?;
                let content;
                bracketed!(content in input);
                let list: Punctuated<LitStr, Token![,]> =
                    content.parse_terminated(|p| p.parse::<LitStr>(), Token![,])?;
                let list: Vec<LitStr> = list.into_iter().collect();
                for (i, lit) in list.iter().enumerate() {
                    if list[..i].iter().any(|earlier| earlier.value() == lit.value()) {
                        push(syn::Error::new_spanned(lit, format!("output key `{}` is listed twice", lit.value())));
                    }
                    if lit.value().is_empty() {
                        push(syn::Error::new_spanned(lit, "output keys must not be empty"));
                    }
                }
                if args.outputs.replace(list).is_some() {
                    push(duplicate(&key, "outputs"));
                }
            } else if lookahead.peek(kw::uses) {
                let key: kw::uses = input.parse()?;
                input.parse::<Token![=]>()?;
                let content;
                bracketed!(content in input);
                let list: Punctuated<Path, Token![,]> = content.parse_terminated(Path::parse, Token![,])?;
                if !args.uses.is_empty() {
                    push(duplicate(&key, "uses"));
                }
                args.uses = list.into_iter().collect();
            } else if lookahead.peek(kw::name) {
                let key: kw::name = input.parse()?;
                input.parse::<Token![=]>()?;
                if args.name.replace(input.parse()?).is_some() {
                    push(duplicate(&key, "name"));
                }
            } else if lookahead.peek(kw::version) {
                let key: kw::version = input.parse()?;
                input.parse::<Token![=]>()?;
                if args.version.replace(input.parse()?).is_some() {
                    push(duplicate(&key, "version"));
                }
            } else {
                let mut err = lookahead.error();
                if let Ok(ident) = input.fork().parse::<syn::Ident>() {
                    err = syn::Error::new_spanned(
                        &ident,
                        format!("unknown option `{ident}`; expected `outputs`, `uses`, `name` or `version`"),
                    );
                }
                return Err(err);
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(args),
        }
    }
}
