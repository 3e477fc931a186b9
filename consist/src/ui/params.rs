//! A page's query string: its filters and choices, read as text, with clear errors for bad values.

use super::pages::PageError;

/// The `name=value` pairs of a query string, in order (a name may repeat: `run=a&run=b`).
#[derive(Debug, Default, Clone)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    /// Parse `a=1&b=2` (percent-decoded, `+` as space).
    pub(super) fn parse(query: &str) -> Params {
        Params(url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
    }

    /// From pairs (the static site's pages).
    pub(super) fn of(pairs: &[(&str, &str)]) -> Params {
        Params(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    /// The first non-empty value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim())
    }

    /// Every non-empty value of `name`.
    pub(super) fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim()).collect()
    }

    /// `name` as a number, if given; a value that is not one is a bad request naming it.
    pub(super) fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, PageError> {
        self.get(name)
            .map(|v| v.parse().map_err(|_| PageError::BadRequest(format!("`{name}={v}`: expected a whole number"))))
            .transpose()
    }

    /// Whether a checkbox-like `name` is on (`1`, `true`, `on`, `yes`).
    pub(super) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "true" | "on" | "yes"))
    }

    /// The pairs except `skip`, as a query string (links that change one choice keep the rest).
    pub(super) fn without(&self, skip: &[&str]) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !skip.contains(&k.as_str()) && !v.trim().is_empty() && k != "partial" {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }
}
