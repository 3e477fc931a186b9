//! `#[derive(Outputs)]`: a struct whose fields are outputs, one key per field in order.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields};

/// Entry point of `#[derive(Outputs)]`.
pub fn outputs(item: TokenStream) -> TokenStream {
    match expand(item) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn expand(item: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(item)?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(&input.ident, "#[derive(Outputs)] works on structs with named fields"));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Outputs)] needs named fields (one output key each)",
        ));
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&input.generics, "#[derive(Outputs)] does not support generic structs"));
    }
    let name = &input.ident;
    let idents: Vec<_> = fields.named.iter().filter_map(|f| f.ident.as_ref()).collect();
    let types: Vec<_> = fields.named.iter().map(|f| &f.ty).collect();
    let index: Vec<usize> = (0..idents.len()).collect();
    let arity = idents.len();
    Ok(quote! {
        impl ::consist::Outputs for #name {
            const ARITY: usize = #arity;
            const DEFERRED: bool = false #( || <#types as ::consist::Output>::DEFERRED )*;

            fn record(
                &mut self,
                __consist_keys: &[::std::string::String],
                __consist_ctx: &mut ::consist::StepContext<'_>,
            ) -> ::consist::Result<()> {
                #( <#types as ::consist::Output>::record(&mut self.#idents, &__consist_keys[#index], __consist_ctx)?; )*
                ::core::result::Result::Ok(())
            }

            fn load(
                __consist_keys: &[::std::string::String],
                __consist_found: &::std::collections::BTreeMap<::std::string::String, ::consist::Artifact>,
            ) -> ::consist::Result<Self> {
                ::core::result::Result::Ok(#name {
                    #( #idents: ::consist::__private::load_output::<#types>(&__consist_keys[#index], __consist_found)?, )*
                })
            }

            fn check(
                __consist_keys: &[::std::string::String],
                __consist_found: &::std::collections::BTreeMap<::std::string::String, ::consist::Artifact>,
            ) -> ::consist::Result<()> {
                #( ::consist::__private::check_output::<#types>(&__consist_keys[#index], __consist_found)?; )*
                ::core::result::Result::Ok(())
            }
        }
    })
}
