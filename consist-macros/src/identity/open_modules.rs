//! Which blocks (`mod name { .. }`, `fn name(..) { .. }`, `impl .. { .. }`, `trait name { .. }`)
//! are open at a line of a source file: a small lexer, so that a step's code identity starts from
//! the module that defines it, and a step written inside a function or impl block is refused.

/// The inline modules (`mod name { .. }`) open at `line` of `source`, outermost first.
pub fn module_path_at(source: &str, line: usize) -> Vec<String> {
    open_blocks_at(source, line).into_iter().filter(|(kind, _)| *kind == "mod").map(|(_, name)| name).collect()
}

/// The innermost function, impl block or trait open at `line` of `source`, as written (`fn main`,
/// `impl`, `trait Model`), if any.
pub fn enclosing_item_at(source: &str, line: usize) -> Option<String> {
    let open = open_blocks_at(source, line);
    let (kind, name) = open.into_iter().rev().find(|(kind, _)| *kind != "mod")?;
    Some(if name.is_empty() { kind.to_owned() } else { format!("{kind} {name}") })
}

/// The blocks open at `line` of `source`, outermost first: (kind, name), kind one of `mod`, `fn`,
/// `impl` (no name), `trait`. A small lexer: it skips comments, strings, raw strings and char
/// literals, and counts braces; `;` outside parentheses and brackets ends a declaration without a
/// body (`mod x;`, `fn f();`).
fn open_blocks_at(source: &str, line: usize) -> Vec<(&'static str, String)> {
    let bytes = source.as_bytes();
    let (mut i, mut current_line, mut depth, mut nest) = (0usize, 1usize, 0usize, 0usize);
    // (kind, name, brace depth inside it)
    let mut open: Vec<(&'static str, String, usize)> = Vec::new();
    let mut pending: Option<(&'static str, String)> = None;
    let mut last_word = String::new();
    while i < bytes.len() && current_line < line {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match b {
            b'\n' => {
                current_line += 1;
                i += 1;
            }
            b'/' if next == Some(b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if next == Some(b'*') => {
                let mut nesting = 0;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        nesting += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        nesting -= 1;
                        i += 2;
                        if nesting == 0 {
                            break;
                        }
                    } else {
                        current_line += usize::from(bytes[i] == b'\n');
                        i += 1;
                    }
                }
            }
            b'r' if (next == Some(b'"') || next == Some(b'#')) && !last_word_continues(bytes, i) => {
                let mut j = i + 1;
                let mut hashes = 0;
                while bytes.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if bytes.get(j) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                j += 1;
                let closing: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                while j < bytes.len() && !bytes[j..].starts_with(&closing) {
                    current_line += usize::from(bytes[j] == b'\n');
                    j += 1;
                }
                i = j + closing.len();
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    current_line += usize::from(bytes.get(i) == Some(&b'\n'));
                    i += 1;
                }
                i += 1;
            }
            b'\'' => {
                // A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
                if next == Some(b'\\') {
                    i += 2;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    let width = source[i + 1..].chars().next().map_or(1, char::len_utf8);
                    i += if bytes.get(i + 1 + width) == Some(&b'\'') { 2 + width } else { 1 };
                }
            }
            b'{' => {
                depth += 1;
                if let Some((kind, name)) = pending.take() {
                    open.push((kind, name, depth));
                }
                i += 1;
            }
            b'}' => {
                if open.last().is_some_and(|(_, _, d)| *d == depth) {
                    open.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'(' | b'[' => {
                nest += 1;
                i += 1;
            }
            b')' | b']' => {
                nest = nest.saturating_sub(1);
                i += 1;
            }
            b';' if nest == 0 => {
                pending = None;
                i += 1;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &source[start..i];
                // The first keyword wins until its block opens: `fn f() -> impl Fn() {` is a fn.
                if pending.is_none() {
                    match (last_word.as_str(), word) {
                        ("mod", name) => pending = Some(("mod", name.to_owned())),
                        ("fn", name) => pending = Some(("fn", name.to_owned())),
                        ("trait", name) => pending = Some(("trait", name.to_owned())),
                        (_, "impl") => pending = Some(("impl", String::new())),
                        _ => {}
                    }
                }
                last_word = word.to_owned();
                continue;
            }
            _ => i += 1,
        }
        // Words `continue` above, so anything else but whitespace ends a `mod name` sequence.
        if !b.is_ascii_whitespace() {
            last_word.clear();
        }
    }
    open.into_iter().map(|(kind, name, _)| (kind, name)).collect()
}

/// Whether the byte at `i` continues an identifier (so `r"` there is not a raw string).
fn last_word_continues(bytes: &[u8], i: usize) -> bool {
    i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_path_at_skips_comments_strings_and_chars() {
        let source = "mod a {\n  // mod fake {\n  const S: &str = \"mod x { }\";\n  const C: char = '{';\n  fn f<'a>(x: &'a str) {}\n  mod b {\n    /* } */ const R: &str = r#\"}\"#;\n    fn target() {}\n  }\n  fn after() {}\n}\nfn top() {}\n";
        let line_of = |needle: &str| source.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert_eq!(module_path_at(source, line_of("fn target")), ["a", "b"]);
        assert_eq!(module_path_at(source, line_of("fn after")), ["a"]);
        assert_eq!(module_path_at(source, line_of("fn top")), Vec::<String>::new());
    }

    #[test]
    fn functions_impls_and_traits_open_at_a_line_are_named() {
        let source = "fn main() -> [u8; 2] {\n  #[step]\n  fn inner() {}\n}\nimpl<T> S<T> where T: Fn() -> u8 {\n  fn m(&self) {\n    // here\n  }\n}\ntrait Model { fn f(&self); }\nmod m { fn g(f: fn(u8) -> u8) {}\n  // top of m\n}\n";
        let line_of = |needle: &str| source.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert_eq!(enclosing_item_at(source, line_of("#[step]")).as_deref(), Some("fn main"));
        assert_eq!(enclosing_item_at(source, line_of("// here")).as_deref(), Some("fn m"));
        assert_eq!(
            enclosing_item_at(source, line_of("// top of m")),
            None,
            "`fn g(..) {{}}` closed, `fn(u8)` opens nothing"
        );
        assert_eq!(module_path_at(source, line_of("// top of m")), ["m"]);
        assert_eq!(enclosing_item_at(source, line_of("trait Model")), None);
    }
}
