//! Tests of code identity: what a step covers, in its file and across its crate.

use super::*;

/// The labels and combined hash of the step `sir` in `source`, a file `src/model.rs`.
fn identity(source: &str) -> (Vec<String>, String) {
    let (labels, hash, _) = identity_at(source, Path::new("src/model.rs"));
    (labels, hash)
}

/// The labels, combined hash and unfollowed code of the step `sir` in `source` at `path`.
fn identity_at(source: &str, path: &Path) -> (Vec<String>, String, Vec<String>) {
    identity_of(source, path, "sir")
}

/// The labels, combined hash and unfollowed code of the step `name` in `source` at `path`.
fn identity_of(source: &str, path: &Path, name: &str) -> (Vec<String>, String, Vec<String>) {
    let (own, scope) = scope_of(source, path, name);
    let labels = scope.covered.iter().map(|c| c.label.clone()).collect();
    (labels, combined_hash(&own, &scope.covered), scope.not_followed)
}

/// The token hash and the scope of the step `name` in `source` at `path`.
fn scope_of(source: &str, path: &Path, name: &str) -> (String, Scope) {
    let file = syn::parse_file(source).unwrap();
    let step = find_fn(&file.items, name).expect("the test source defines the step");
    let line = source.lines().position(|l| l.contains(&format!("fn {name}("))).unwrap() + 1;
    let target = Target {
        name,
        kind: "fn",
        hash: hash_tokens(without_attrs(&Item::Fn(step.clone()))),
        module: crate::identity::open_modules::module_path_at(source, line),
    };
    let (sig, block) = (&step.sig, &step.block);
    let own = hash_tokens(quote::quote!(#sig #block));
    (own, covered(source, path, &target, quote::quote!(#sig #block)).unwrap())
}

fn find_fn<'a>(items: &'a [Item], name: &str) -> Option<&'a syn::ItemFn> {
    items.iter().find_map(|item| match item {
        Item::Fn(f) if f.sig.ident == name => Some(f),
        Item::Mod(ItemMod { content: Some((_, inner)), .. }) => find_fn(inner, name),
        _ => None,
    })
}

const MODEL: &str = r#"
    use consist::step;
    const CONTACT_SCALE: f64 = 1.0;
    const UNRELATED: i32 = 7;
    static NAMES: [&str; 2] = ["s", "i"];
    struct State { s: f64, i: f64 }
    impl State {
        fn advance(&self, beta: f64) -> State { State { s: self.s - infect(beta, self), i: self.i } }
    }
    fn infect(beta: f64, st: &State) -> f64 { beta * st.s * st.i * rate() }
    fn rate() -> f64 { 0.5 }
    fn unused() -> f64 { 1.0 }
    macro_rules! twice { ($e:expr) => { $e * 2.0 } }
    #[step(outputs = ["s"])]
    fn sir(beta: f64) -> f64 {
        let st = State { s: 1.0, i: 0.1 }.advance(beta * CONTACT_SCALE);
        println!("{NAMES:?}");
        twice!(st.s)
    }
"#;

#[test]
fn follows_consts_statics_types_impls_helpers_of_helpers_and_macros() {
    let (labels, _) = identity(MODEL);
    assert_eq!(
        labels,
        [
            "const CONTACT_SCALE",
            "fn infect",
            "fn rate",
            "impl State",
            "macro_rules! twice",
            "static NAMES",
            "struct State"
        ]
    );
}

#[test]
fn every_covered_edit_changes_the_identity_and_nothing_else_does() {
    let (_, base) = identity(MODEL);
    for edit in [
        MODEL.replace("CONTACT_SCALE: f64 = 1.0", "CONTACT_SCALE: f64 = 2.0"),
        MODEL.replace("{ 0.5 }", "{ 0.25 }"),
        MODEL.replace("struct State { s: f64, i: f64 }", "struct State { s: f64, i: f64, r: f64 }"),
        MODEL.replace("self.s - infect", "self.s + infect"),
        MODEL.replace("[\"s\", \"i\"]", "[\"S\", \"I\"]"),
        MODEL.replace("$e * 2.0", "$e * 3.0"),
    ] {
        assert_ne!(identity(&edit).1, base, "{edit}");
    }
    for same in [
        MODEL.replace("UNRELATED: i32 = 7", "UNRELATED: i32 = 8"),
        MODEL.replace("fn unused() -> f64 { 1.0 }", "fn unused() -> f64 { 2.0 }"),
        MODEL.replace("fn rate() -> f64 { 0.5 }", "/// The rate.\nfn rate() -> f64 {\n    // half\n    0.5\n}"),
        MODEL.replace("struct State { s: f64, i: f64 }", "struct State {\n    s: f64,\n    i: f64,\n}"),
    ] {
        assert_eq!(identity(&same).1, base, "{same}");
    }
}

#[test]
fn a_step_that_uses_nothing_keeps_its_token_hash() {
    let source = "const X: i32 = 1;\nfn sir(beta: f64) -> f64 { beta * 2.0 }";
    let (labels, hash) = identity(source);
    assert!(labels.is_empty());
    assert_eq!(
        hash,
        hash_tokens(quote::quote!(
            fn sir(beta: f64) -> f64 {
                beta * 2.0
            }
        ))
    );
}

#[test]
fn only_the_defining_module_is_searched() {
    let source = r#"
        const SCALE: f64 = 1.0;
        mod inner {
            const SCALE: f64 = 3.0;
            fn sir(x: f64) -> f64 { x * SCALE }
        }
    "#;
    let base = identity(source).1;
    assert_ne!(identity(&source.replace("3.0", "4.0")).1, base, "the module's own const counts");
    assert_eq!(identity(&source.replace("1.0", "5.0")).1, base, "the outer const is another module's");
}

#[test]
fn identical_steps_in_sibling_modules_follow_their_own_module() {
    let source = r#"
        mod a {
            const SCALE: f64 = 1.0;
            fn sir(x: f64) -> f64 { x * SCALE }
        }
        mod b {
            const SCALE: f64 = 2.0;
            fn sir(x: f64) -> f64 { x * SCALE }
        }
    "#;
    let hash_in = |module: &str| {
        let target = Target { name: "sir", kind: "fn", hash: String::new(), module: vec![module.to_owned()] };
        covered(source, Path::new("src/model.rs"), &target, quote::quote!(x * SCALE)).unwrap().covered[0].hash.clone()
    };
    assert_ne!(hash_in("a"), hash_in("b"));
}

#[test]
fn paths_into_other_local_modules_are_reported() {
    let source = r#"
        mod plots;
        use crate::physics::{SCALE, rate as r};
        use polars::prelude::DataFrame;
        fn helper() -> f64 { super::up::x() }
        fn sir(df: &DataFrame) -> f64 { plots::draw(df) * SCALE * r() + helper() + std::f64::consts::PI + other::y() }
    "#;
    let file = syn::parse_file(source).unwrap();
    let step = find_fn(&file.items, "sir").unwrap();
    let target = Target {
        name: "sir",
        kind: "fn",
        hash: hash_tokens(without_attrs(&Item::Fn(step.clone()))),
        module: Vec::new(),
    };
    let (sig, block) = (&step.sig, &step.block);
    let scope = covered(source, Path::new("src/model.rs"), &target, quote::quote!(#sig #block)).unwrap();
    assert_eq!(scope.not_followed, ["crate::physics::SCALE", "crate::physics::rate", "plots::draw", "super::up::x"]);
}

#[test]
fn same_named_impls_get_distinct_labels() {
    let source = "struct S;\nimpl S { fn a() {} }\nimpl S { fn b() {} }\nfn sir() -> S { S }";
    assert_eq!(identity(source).0, ["impl S", "impl S #2", "struct S"]);
}

/// Every edit in `edits` (old, new) changes the identity of `sir` in `source`.
fn assert_each_edit_invalidates(source: &str, edits: &[(&str, &str)]) {
    let base = identity(source).1;
    for (old, new) in edits {
        assert_eq!(source.matches(old).count(), 1, "{old} occurs once");
        assert_ne!(identity(&source.replace(old, new)).1, base, "editing `{old}` to `{new}` keeps the identity");
    }
}

#[test]
fn methods_called_by_name_reach_their_impls_and_traits() {
    // An extension trait on a foreign type and on a slice: the step names neither the trait
    // nor the type, only the methods.
    let source = r#"
        trait ColExt { fn total(&self) -> f64; fn doubled(&self) -> f64 { self.total() * 2.0 } }
        impl ColExt for Column { fn total(&self) -> f64 { self.sum() * 1.0 } }
        trait Stats { fn mean(&self) -> f64; }
        impl Stats for [f64] { fn mean(&self) -> f64 { self.iter().sum::<f64>() / self.len() as f64 } }
        impl Other for Unrelated { fn elsewhere(&self) -> f64 { 0.0 } }
        fn sir(col: &Column, xs: &[f64]) -> f64 { col.doubled() + xs.mean() }
    "#;
    let (labels, _) = identity(source);
    assert_eq!(labels, ["impl ColExt for Column", "impl Stats for [f64]", "trait ColExt", "trait Stats"]);
    assert_each_edit_invalidates(
        source,
        &[("self.sum() * 1.0", "self.sum() * 3.0"), ("/ self.len() as f64", "/ 2.0"), ("* 2.0 }", "* 4.0 }")],
    );
    assert_eq!(identity(&source.replace("{ 0.0 }", "{ 1.0 }")).1, identity(source).1, "uncalled impls stay out");
}

#[test]
fn glob_imported_variants_reach_their_enum_and_its_impl() {
    let source = r#"
        enum Season { Winter, Summer }
        use Season::*;
        impl Season { fn load(&self) -> f64 { match self { Winter => 1.2, Summer => 0.9 } } }
        fn sir() -> f64 { Winter.load() }
    "#;
    assert_eq!(identity(source).0, ["enum Season", "impl Season"]);
    assert_each_edit_invalidates(source, &[("Winter => 1.2", "Winter => 1.5"), ("Summer }", "Summer, Spring }")]);
}

#[test]
fn inline_modules_of_the_file_are_followed_through_globs_imports_and_paths() {
    let source = r#"
        const SCALE: f64 = 1.0;
        const RATE: f64 = 0.5;
        mod inner { pub fn bump(x: f64) -> f64 { x + 1.0 } }
        mod model {
            use super::*;
            use super::RATE as R;
            fn sir(x: f64) -> f64 { super::inner::bump(x * SCALE) * R }
        }
    "#;
    let (labels, _, not_followed) = identity_at(source, Path::new("src/model.rs"));
    assert_eq!(labels, ["const RATE in super", "const SCALE in super", "fn bump in super::inner"]);
    assert!(not_followed.is_empty(), "{not_followed:?}");
    assert_each_edit_invalidates(source, &[("= 1.0;", "= 2.0;"), ("= 0.5;", "= 0.7;"), ("x + 1.0", "x + 2.0")]);
}

#[test]
fn modules_of_other_files_are_reported_glob_or_not() {
    let source = r#"
        mod physics;
        use physics::*;
        use crate::model::MODES;
        mod local { use super::*; }
        fn sir() -> usize { MODES.len() + SCALE as usize }
    "#;
    let (_, _, not_followed) = identity_at(source, Path::new("src/model.rs"));
    assert_eq!(not_followed, ["crate::model::MODES", "physics::*"]);
    let (_, _, in_root) = identity_at(source, Path::new("src/main.rs"));
    // In main.rs, `crate::model` might come from the glob of `physics`, which is listed.
    assert_eq!(in_root, ["physics::*"]);
}

#[test]
fn included_files_count_by_their_bytes() {
    let dir = std::env::temp_dir().join(format!("consist-scope-include-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("coeffs.txt"), "1.0 2.0").unwrap();
    let source = r#"
        const COEFFS: &str = include_str!("coeffs.txt");
        fn sir() -> usize { COEFFS.len() }
    "#;
    let path = dir.join("model.rs");
    let (labels, base, _) = identity_at(source, &path);
    assert_eq!(labels, ["const COEFFS", "file coeffs.txt"]);
    std::fs::write(dir.join("coeffs.txt"), "1.0 2.5").unwrap();
    assert_ne!(identity_at(source, &path).1, base, "editing the included file changes the identity");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Steps `g1`.. of one file, each using code that only a whole-file (and whole-crate) search
/// finds: impls in other inline modules, in `const _` blocks and function bodies, on type
/// aliases and on primitives, macros of `#[macro_use]` modules, items made by macro calls,
/// precision named in a format spec, and imports of other crates under another name.
const SAME_FILE: &str = r#"
    use std::ops::{Add, Mul};
    pub struct Flux { v: f64 }
    type FluxAlias = Flux;
    impl Add for FluxAlias { type Output = Flux; fn add(self, o: Flux) -> Flux { Flux { v: self.v + o.v } } }
    fn g1(n: f64) -> f64 { (Flux { v: n } + Flux { v: 1.0 }).v }

    pub struct Cell { v: f64 }
    impl Mul<Cell> for i32 { type Output = Cell; fn mul(self, c: Cell) -> Cell { Cell { v: self as f64 * c.v } } }
    fn g2(n: f64) -> f64 { (2 * Cell { v: n }).v }

    pub struct Flow(f64);
    mod ops { use super::Flow; impl std::ops::AddAssign for Flow { fn add_assign(&mut self, o: Flow) { self.0 += o.0; } } }
    fn g3(n: f64) -> f64 { let mut f = Flow(1.0); f += Flow(n); f.0 }

    pub struct Pt { x: f64 }
    mod geom { impl super::Pt { pub fn dist(&self) -> f64 { self.x.abs() } } }
    fn g4(n: f64) -> f64 { Pt { x: n }.dist() }

    mod ext { pub trait Damp { fn damp(self) -> f64; } impl Damp for f64 { fn damp(self) -> f64 { self * 0.9 } } }
    use ext::Damp;
    fn g5(n: f64) -> f64 { n.damp() }

    #[macro_use]
    mod macros { macro_rules! unit_clamp { ($e:expr) => { if $e > 1.0 { 1.0 } else { $e } }; } }
    fn g6(n: f64) -> f64 { unit_clamp!(n * 0.1) }

    macro_rules! param { ($n:ident = $v:expr) => { const $n: f64 = $v; }; }
    param!(DECAY = 0.5);
    fn g7(n: f64) -> f64 { n * DECAY }

    pub struct Tank(f64);
    const _: () = { impl Tank { pub fn level(&self) -> f64 { self.0 * 2.0 } } };
    fn g8(n: f64) -> f64 { Tank(n).level() }

    pub struct Pump(f64);
    fn register_pump() { impl Pump { pub fn rate(&self) -> f64 { self.0 * 3.0 } } }
    fn g9(n: f64) -> f64 { Pump(n).rate() }

    const PREC: usize = 2;
    fn g11(n: f64) -> f64 { format!("{:.PREC$}", n / 7.0).parse::<f64>().unwrap() }

    pub struct Cfg16 { pub gain: f64 }
    mod defaults { impl Default for super::Cfg16 { fn default() -> Self { super::Cfg16 { gain: 2.0 } } } }
    fn g16(n: f64) -> f64 { let c: Cfg16 = Default::default(); n * c.gain }

    use std::f64::consts::PI as ANGLE;
    fn g18(n: f64) -> f64 { n * ANGLE }
"#;

#[test]
fn code_anywhere_in_the_file_that_a_step_uses_is_followed() {
    let path = Path::new("src/model.rs");
    for (step, old, new) in [
        ("g1", "self.v + o.v", "self.v + o.v * 2.0"),
        ("g2", "self as f64 * c.v", "self as f64 * c.v + 1.0"),
        ("g3", "self.0 += o.0;", "self.0 += o.0 * 2.0;"),
        ("g4", "self.x.abs()", "self.x.abs() * 2.0"),
        ("g5", "self * 0.9", "self * 0.5"),
        ("g6", "{ 1.0 } else { $e }", "{ 1.0 } else { $e * 2.0 }"),
        ("g7", "param!(DECAY = 0.5);", "param!(DECAY = 0.7);"),
        ("g8", "self.0 * 2.0", "self.0 * 2.5"),
        ("g9", "self.0 * 3.0", "self.0 * 3.5"),
        ("g11", "PREC: usize = 2", "PREC: usize = 3"),
        ("g16", "gain: 2.0 }", "gain: 3.0 }"),
        ("g18", "consts::PI as ANGLE", "consts::FRAC_PI_2 as ANGLE"),
    ] {
        assert_eq!(SAME_FILE.matches(old).count(), 1, "{old}");
        let base = identity_of(SAME_FILE, path, step).1;
        let edited = identity_of(&SAME_FILE.replace(old, new), path, step).1;
        assert_ne!(base, edited, "{step}: editing `{old}` kept the identity");
    }
    let labels = |step: &str| identity_of(SAME_FILE, path, step).0;
    assert_eq!(labels("g2"), ["impl Mul for i32", "struct Cell"]);
    assert_eq!(labels("g4"), ["impl Pt in geom", "struct Pt"]);
    assert_eq!(labels("g18"), ["use ANGLE = std::f64::consts::PI"]);
    assert!(labels("g7").contains(&"param!(..)".to_owned()), "{:?}", labels("g7"));
}

#[test]
fn hints_moves_and_built_in_names_do_not_invalidate() {
    let source = r#"
        struct Chain(f64);
        impl Chain { fn a(&self) -> f64 { self.0 } }
        impl Chain { fn b(&self) -> f64 { self.0 * 2.0 } }
        trait Half { fn half(self) -> f64; }
        impl Half for f64 { fn half(self) -> f64 { self / 2.0 } }
        const _: () = ();
        fn clampf(x: f64) -> f64 { x.min(1.0) }
        struct Holder { dist: [f64; 1] }
        struct Other;
        impl std::ops::Add for Other { type Output = f64; fn add(self, _: Other) -> f64 { 0.0 } }
        struct Pt(f64);
        impl Pt { fn dist(&self) -> f64 { self.0 } }
        fn sir(c: Chain, o: &Holder) -> f64 {
            let _ = 1;
            let y: f64 = c.a() + c.b() + <f64 as std::ops::Add>::add(1.0, o.dist[0]);
            clampf(y)
        }
    "#;
    let base = identity(source);
    assert_eq!(
        base.0,
        ["fn clampf", "impl Chain", "impl Chain #2", "struct Chain", "struct Holder"],
        "f64, `_`, another crate's trait (`Add`) and a field named like a method (`o.dist`) reach nothing"
    );
    let swapped = source
        .replace("impl Chain { fn a(&self) -> f64 { self.0 } }", "IMPL_A")
        .replace("impl Chain { fn b(&self) -> f64 { self.0 * 2.0 } }", "impl Chain { fn a(&self) -> f64 { self.0 } }")
        .replace("IMPL_A", "impl Chain { fn b(&self) -> f64 { self.0 * 2.0 } }");
    assert_eq!(identity(&swapped).1, base.1, "the order of same-named impls does not count");
    let hinted = source.replace("fn clampf", "#[inline]\n#[must_use]\nfn clampf");
    assert_eq!(identity(&hinted).1, base.1, "inlining and lint attributes do not count");
}

#[test]
fn build_settings_of_covered_code_are_collected() {
    let source = r#"
        #[cfg(feature = "precise")]
        const DT: f64 = 0.01;
        #[cfg(not(feature = "precise"))]
        const DT: f64 = 0.1;
        const SCALE: Option<&str> = option_env!("HUNT_SCALE");
        #[cfg(test)]
        const UNUSED: f64 = 1.0;
        fn sir(n: f64) -> f64 { n * DT * SCALE.map_or(1.0, |s| s.parse().unwrap()) }
    "#;
    let file = syn::parse_file(source).unwrap();
    let step = find_fn(&file.items, "sir").unwrap();
    let target = Target { name: "sir", kind: "fn", hash: String::new(), module: Vec::new() };
    let block = &step.block;
    let scope = covered(source, Path::new("src/model.rs"), &target, quote::quote!(#block)).unwrap();
    let labels: Vec<String> = scope.build.iter().map(BuildFact::label).collect();
    assert_eq!(labels, ["cfg(feature=\"precise\")", "cfg(not(feature=\"precise\"))", "env HUNT_SCALE"]);
}

#[test]
fn a_step_made_by_a_macro_follows_the_module_it_is_expanded_in() {
    let source = "fn base() -> f64 { 1.25 }\nmacro_rules! make { ($name:ident) => { fn $name(n: f64) -> f64 { n * base() } }; }\nmake!(made);";
    let target = Target { name: "made", kind: "fn", hash: String::new(), module: Vec::new() };
    let scope = covered(source, Path::new("src/model.rs"), &target, quote::quote!(n * base())).unwrap();
    let labels: Vec<&str> = scope.covered.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels, ["fn base"]);
}

/// A crate on disk: `files` (path, text) under a fresh temporary package folder.
fn package(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("consist-scope-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files.iter().chain(&[("Cargo.toml", "[package]\nname = \"m\"\n")]) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn code_in_other_files_of_the_crate_is_followed() {
    let main = r#"
        macro_rules! boost { ($e:expr) => { $e * 1.5 } }
        mod model;
        mod physics;
        fn main() {}
    "#;
    let physics = r#"
        pub const SCALE: f64 = 2.0;
        pub trait Fric { fn fric(self) -> f64; }
        impl Fric for f64 { fn fric(self) -> f64 { self * 0.8 } }
        impl crate::model::Body { pub fn energy(&self) -> f64 { 0.5 * self.m * 4.0 } }
        impl std::fmt::Display for crate::model::Reading {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{:.3}", self.0) }
        }
        pub fn unrelated() -> f64 { 9.0 }
        mod forces;
    "#;
    let forces = "pub const G: f64 = 9.81;\nimpl super::Fric for i64 { fn fric(self) -> f64 { self as f64 * G } }";
    let model = r#"
        use crate::physics::{Fric, SCALE};
        pub struct Body { pub m: f64 }
        pub struct Reading(pub f64);
        fn sir(n: f64) -> f64 {
            let r = Reading(n).to_string().parse::<f64>().unwrap();
            boost!(n.fric() + Body { m: n }.energy() + r * SCALE)
        }
    "#;
    let files = [
        ("src/main.rs", main),
        ("src/physics.rs", physics),
        ("src/physics/forces.rs", forces),
        ("src/model.rs", model),
    ];
    let dir = package("files", &files);
    let path = dir.join("src/model.rs");
    let (labels, base, not_followed) = identity_at(model, &path);
    assert!(not_followed.is_empty(), "{not_followed:?}");
    assert_eq!(
        labels,
        [
            "const G in super::physics::forces",
            "const SCALE in super::physics",
            "impl Body in super::physics",
            "impl Display for Reading in super::physics",
            "impl Fric for f64 in super::physics",
            "impl Fric for i64 in super::physics::forces",
            "macro_rules! boost in super",
            "struct Body",
            "struct Reading",
            "trait Fric in super::physics",
        ]
    );
    let edit = |file: usize, old: &str, new: &str| {
        let (name, text) = files[file];
        assert_eq!(text.matches(old).count(), 1, "{old}");
        std::fs::write(dir.join(name), text.replace(old, new)).unwrap();
        let hash = identity_at(model, &path).1;
        std::fs::write(dir.join(name), text).unwrap();
        hash
    };
    for (file, old, new) in [
        (0, "$e * 1.5", "$e * 2.5"),
        (1, "SCALE: f64 = 2.0", "SCALE: f64 = 3.0"),
        (1, "self * 0.8", "self * 0.6"),
        (1, "0.5 * self.m * 4.0", "0.5 * self.m * 5.0"),
        (1, "{:.3}", "{:.1}"),
        (2, "self as f64 * G", "self as f64 * G * 2.0"),
        (2, "G: f64 = 9.81", "G: f64 = 9.80"),
    ] {
        assert_ne!(edit(file, old, new), base, "editing `{old}` in {} kept the identity", files[file].0);
    }
    assert_eq!(edit(1, "{ 9.0 }", "{ 8.0 }"), base, "code the step does not use does not count");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Patterns a second probe model found (stale hits before): modules reached through globs and
/// imported segments, `r#` names, impls in method bodies and on aliases in other files, items made
/// by `macro_rules!` calls, serde's function paths in strings, trait methods named as paths.
#[test]
fn modules_through_globs_and_imports_and_generated_items_are_followed() {
    let main = r#"
        mod physics;
        mod api;
        mod units;
        mod aliases;
        mod gen;
        mod boot;
        fn main() {}
    "#;
    let physics = "pub const G: f64 = 9.81;\npub mod forces;\n";
    let forces = "use super::G;\npub fn friction(n: f64) -> f64 { n * 0.3 }\npub fn weight(m: f64) -> f64 { m * G }\n";
    let api = "pub fn lift(n: f64) -> f64 { n + 1.0 }\npub mod prelude { pub use super::*; }\n";
    let units = "pub struct Meters(pub f64);\npub trait Halve { fn halve(self) -> f64; }\n";
    let aliases = "pub type Len = crate::units::Meters;\nimpl Len { pub fn quad(&self) -> f64 { self.0 * 4.0 } }\n";
    let generated = r#"
        macro_rules! def_rate { ($v:expr) => { pub fn gen_rate() -> f64 { $v } }; }
        def_rate!(0.25);
        macro_rules! impl_halve { ($t:ty, $k:expr) => { impl crate::units::Halve for $t { fn halve(self) -> f64 { self * $k } } }; }
        impl_halve!(f64, 0.5);
        pub fn r#gen(n: f64) -> f64 { n * 2.0 }
        pub fn default_gain() -> f64 { 2.0 }
    "#;
    let boot = "pub struct Boot;\nimpl Boot { fn init() { impl crate::units::Meters { pub fn triple(&self) -> f64 { self.0 * 3.0 } } } }\n";
    let model = r#"
        use crate::physics::*;
        use crate::physics;
        use physics::forces::weight;
        use crate::units::{Halve, Meters};
        use crate::gen::{gen_rate, r#gen};
        #[derive(serde::Deserialize)]
        struct Cfg { #[serde(default = "crate::gen::default_gain")] gain: f64 }
        fn sir(n: f64, c: Cfg) -> f64 {
            let m = Meters(n);
            let halves: Vec<f64> = vec![n].into_iter().map(f64::halve).collect();
            forces::friction(n) + weight(n) + crate::api::prelude::lift(n) + r#gen(n) + gen_rate()
                + m.quad() + m.triple() + halves[0] + c.gain
        }
    "#;
    let files = [
        ("src/main.rs", main),
        ("src/physics/mod.rs", physics),
        ("src/physics/forces.rs", forces),
        ("src/api.rs", api),
        ("src/units.rs", units),
        ("src/aliases.rs", aliases),
        ("src/gen.rs", generated),
        ("src/boot.rs", boot),
        ("src/model.rs", model),
    ];
    let mut with_model = files.to_vec();
    with_model[0].1 = "mod physics;\nmod api;\nmod units;\nmod aliases;\nmod gen;\nmod boot;\nmod model;\nfn main() {}";
    let dir = package("globs", &with_model);
    let path = dir.join("src/model.rs");
    let (_, base, not_followed) = identity_at(model, &path);
    assert!(not_followed.is_empty(), "{not_followed:?}");
    let edit = |file: &str, old: &str, new: &str| {
        let text = with_model.iter().find(|(name, _)| *name == file).unwrap().1;
        assert_eq!(text.matches(old).count(), 1, "{old}");
        std::fs::write(dir.join(file), text.replace(old, new)).unwrap();
        let hash = identity_at(model, &path).1;
        std::fs::write(dir.join(file), text).unwrap();
        hash
    };
    for (file, old, new) in [
        ("src/physics/forces.rs", "n * 0.3", "n * 0.4"),
        ("src/physics/forces.rs", "m * G", "m * G * 2.0"),
        ("src/physics/mod.rs", "9.81", "9.80"),
        ("src/api.rs", "n + 1.0", "n + 2.0"),
        ("src/gen.rs", "def_rate!(0.25)", "def_rate!(0.5)"),
        ("src/gen.rs", "{ self * $k }", "{ self * $k * 2.0 }"),
        ("src/gen.rs", "n * 2.0", "n * 3.0"),
        ("src/gen.rs", "-> f64 { 2.0 }", "-> f64 { 3.0 }"),
        ("src/aliases.rs", "self.0 * 4.0", "self.0 * 5.0"),
        ("src/boot.rs", "self.0 * 3.0", "self.0 * 3.5"),
    ] {
        assert_ne!(edit(file, old, new), base, "editing `{old}` in {file} kept the identity");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_blanket_impl_is_not_reached_by_its_own_type_parameter() {
    let source = r#"
        trait HasR { fn r(&self) -> f64; }
        trait Perim { fn perim(&self) -> f64; }
        impl<T: HasR> Perim for T { fn perim(&self) -> f64 { self.r() * 6.28 } }
        fn sir(x: f64) -> f64 { fn id<T: Clone>(t: T) -> T { t } id(x) }
    "#;
    assert!(identity(source).0.is_empty(), "{:?}", identity(source).0);
}

/// Declarations the build picks between (a third probe model found them stale): one module
/// declared twice under opposite `cfg`s, in other files or inline, a `cfg_attr` path, one name
/// imported twice, and a macro whose body names a module of the place it is called from.
#[test]
fn every_declaration_the_build_may_pick_is_followed_with_its_cfg() {
    let main = r#"
        #[macro_use]
        mod macros;
        #[cfg(feature = "fast")]
        #[path = "fast_imp.rs"]
        mod imp;
        #[cfg(not(feature = "fast"))]
        #[path = "slow_imp.rs"]
        mod imp;
        #[cfg_attr(feature = "fast2", path = "fast2_imp.rs")]
        mod imp2;
        mod units;
        mod model;
        fn main() {}
    "#;
    let model = r#"
        #[cfg(not(feature = "fast"))]
        use crate::units::metric::factor;
        #[cfg(feature = "fast")]
        use crate::units::imperial::factor;
        #[cfg(not(feature = "fast"))]
        mod inl { pub fn rate() -> f64 { 2.0 } }
        #[cfg(feature = "fast")]
        mod inl { pub fn rate() -> f64 { 5.0 } }
        mod util { pub fn halve(x: f64) -> f64 { x * 0.5 } }
        fn sir(n: f64) -> f64 {
            factor(n) * inl::rate() * crate::imp::imp_rate() * crate::imp2::imp2_rate() + via_util!(n)
        }
    "#;
    let files = [
        ("src/main.rs", main),
        ("src/macros.rs", "macro_rules! via_util { ($x:expr) => { util::halve($x) } }\n"),
        ("src/fast_imp.rs", "pub fn imp_rate() -> f64 { 2.5 }\n"),
        ("src/slow_imp.rs", "pub fn imp_rate() -> f64 { 1.25 }\n"),
        ("src/imp2.rs", "pub fn imp2_rate() -> f64 { 2.0 }\n"),
        ("src/fast2_imp.rs", "pub fn imp2_rate() -> f64 { 3.5 }\n"),
        (
            "src/units.rs",
            "pub mod metric { pub fn factor(n: f64) -> f64 { n * 1.0 } }\npub mod imperial { pub fn factor(n: f64) -> f64 { n * 3.28 } }\n",
        ),
        ("src/model.rs", model),
    ];
    let dir = package("cfg-twins", &files);
    let path = dir.join("src/model.rs");
    let (_, scope) = scope_of(model, &path, "sir");
    assert!(scope.not_followed.is_empty(), "{:?}", scope.not_followed);
    let facts: Vec<String> = scope.build.iter().map(BuildFact::label).collect();
    assert_eq!(facts, ["cfg(feature=\"fast\")", "cfg(feature=\"fast2\")", "cfg(not(feature=\"fast\"))"]);
    let base = identity_at(model, &path).1;
    let edit = |file: &str, old: &str, new: &str| {
        let text = files.iter().find(|(name, _)| *name == file).unwrap().1;
        assert_eq!(text.matches(old).count(), 1, "{old}");
        std::fs::write(dir.join(file), text.replace(old, new)).unwrap();
        let hash = identity_at(&std::fs::read_to_string(&path).unwrap(), &path).1;
        std::fs::write(dir.join(file), text).unwrap();
        hash
    };
    for (file, old, new) in [
        ("src/fast_imp.rs", "2.5", "2.75"),
        ("src/slow_imp.rs", "1.25", "1.5"),
        ("src/imp2.rs", "2.0", "2.5"),
        ("src/fast2_imp.rs", "3.5", "4.5"),
        ("src/units.rs", "n * 1.0", "n * 1.5"),
        ("src/units.rs", "n * 3.28", "n * 3.5"),
        ("src/model.rs", "{ 2.0 }", "{ 3.0 }"),
        ("src/model.rs", "{ 5.0 }", "{ 6.0 }"),
        ("src/model.rs", "x * 0.5", "x * 0.25"),
    ] {
        assert_ne!(edit(file, old, new), base, "editing `{old}` in {file} kept the identity");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The usual layout `src/main.rs` + `src/lib.rs`, and a `src/bin` target: a step calls the
/// package's library by its crate name (a probe model found it stale).
#[test]
fn the_package_library_is_followed_from_its_other_targets() {
    let lib = "pub mod libcore;\nmod helpers;\npub fn top() -> f64 { 7.0 }\n";
    let libcore = "pub fn lib_rate() -> f64 { 0.9 * crate::helpers::k() }\npub fn unused() -> f64 { 1.0 }\n";
    let helpers = "pub fn k() -> f64 { 2.0 }\n";
    let main = "use m::libcore::lib_rate;\nfn sir(n: f64) -> f64 { n * lib_rate() }\nfn main() {}\n";
    let tool = "mod inner { pub fn sir(n: f64) -> f64 { n + m::top() } }\nfn main() {}\n";
    let files = [
        ("src/lib.rs", lib),
        ("src/libcore.rs", libcore),
        ("src/helpers.rs", helpers),
        ("src/main.rs", main),
        ("src/bin/tool.rs", tool),
    ];
    let dir = package("lib", &files);
    let (main_path, tool_path) = (dir.join("src/main.rs"), dir.join("src/bin/tool.rs"));
    let (labels, main_base, not_followed) = identity_at(main, &main_path);
    assert!(not_followed.is_empty(), "{not_followed:?}");
    assert_eq!(labels, ["fn k in m::helpers", "fn lib_rate in m::libcore"]);
    let (labels, tool_base, _) = identity_at(tool, &tool_path);
    assert_eq!(labels, ["fn top in m"]);
    let edit = |file: &str, old: &str, new: &str| {
        let text = files.iter().find(|(name, _)| *name == file).unwrap().1;
        std::fs::write(dir.join(file), text.replace(old, new)).unwrap();
        let hashes = (identity_at(main, &main_path).1, identity_at(tool, &tool_path).1);
        std::fs::write(dir.join(file), text).unwrap();
        hashes
    };
    assert_ne!(edit("src/libcore.rs", "0.9", "0.8").0, main_base);
    assert_ne!(edit("src/helpers.rs", "2.0", "3.0").0, main_base);
    assert_ne!(edit("src/lib.rs", "7.0", "8.0").1, tool_base);
    assert_eq!(edit("src/libcore.rs", "{ 1.0 }", "{ 2.0 }"), (main_base, tool_base), "unused code does not count");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn macro_argument_methods_exported_symbols_and_self_aliases_are_followed() {
    // `$x.$m()`: the method is named only as a macro argument.
    let source = r#"
        trait Halve { fn halve3(self) -> f64; }
        impl Halve for f64 { fn halve3(self) -> f64 { self * 0.25 } }
        macro_rules! call_m { ($x:expr, $m:ident) => { $x.$m() } }
        fn sir(n: f64) -> f64 { call_m!(n, halve3) + format!("{}", n).len() as f64 }
    "#;
    assert_eq!(identity(source).0, ["impl Halve for f64", "macro_rules! call_m", "trait Halve"]);
    assert_each_edit_invalidates(source, &[("self * 0.25", "self * 0.3")]);
    // A std macro's arguments are plain expressions: `n` names no method.
    let std_only =
        "trait T { fn n(&self); }\nimpl T for u8 { fn n(&self) {} }\nfn sir(n: f64) -> String { format!(\"{}\", n) }";
    assert!(identity(std_only).0.is_empty(), "{:?}", identity(std_only).0);

    // A function exported by symbol and declared in an `extern "C"` block of another module.
    let main = "mod ffi;\nunsafe extern \"C\" { fn rate_c() -> f64; fn other_c() -> f64; }\nfn sir(n: f64) -> f64 { n * unsafe { rate_c() } }\n";
    let ffi = "#[unsafe(no_mangle)]\npub extern \"C\" fn rate_c() -> f64 { 0.7 }\n#[export_name = \"other_c\"]\npub extern \"C\" fn renamed() -> f64 { 0.1 }\n";
    let dir = package("ffi", &[("src/main.rs", main), ("src/ffi.rs", ffi)]);
    let main_path = dir.join("src/main.rs");
    let (labels, base, _) = identity_at(main, &main_path);
    assert_eq!(labels, ["fn rate_c in ffi"]);
    std::fs::write(dir.join("src/ffi.rs"), ffi.replace("0.7", "0.8")).unwrap();
    assert_ne!(identity_at(main, &main_path).1, base);
    let calls_other = main.replace("unsafe { rate_c() }", "unsafe { other_c() }");
    assert_eq!(identity_at(&calls_other, &main_path).0, ["fn renamed in ffi"]);
    std::fs::remove_dir_all(&dir).unwrap();

    // `extern crate self as me;` then `me::physics::SCALE`.
    let main = "extern crate self as me;\nmod physics;\nfn sir(n: f64) -> f64 { n * me::physics::SCALE }\n";
    let dir = package("selfalias", &[("src/main.rs", main), ("src/physics.rs", "pub const SCALE: f64 = 2.0;\n")]);
    let main_path = dir.join("src/main.rs");
    let (labels, _, not_followed) = identity_at(main, &main_path);
    assert!(not_followed.is_empty(), "{not_followed:?}");
    assert_eq!(labels, ["const SCALE in physics"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_doc_comment_on_a_used_item_changes_nothing_beside_an_unexpanded_macro() {
    // A module-level macro invocation (proptest!, lazy_static!...) may define any name, so a
    // name nothing else defines is looked for there: an attribute's name must never be one.
    let plain = r#"
        use consist::step;
        const CONTACT_SCALE: f64 = 1.0;
        other::defs! {
            /// Generated.
            fn generated() {}
        }
        #[step(outputs = ["s"])]
        fn sir(beta: f64) -> consist::StepResult<f64> { Ok(beta * CONTACT_SCALE) }
    "#;
    let documented = plain.replace(
        "const CONTACT_SCALE",
        "/// How much contact there is.\n#[allow(clippy::approx_constant)]\n        const CONTACT_SCALE",
    );
    let (labels, hash) = identity(plain);
    assert_eq!(labels, ["const CONTACT_SCALE"], "the macro invocation defines nothing the step uses");
    assert_eq!(identity(&documented), (labels, hash));
}

/// A parameter or a `let` named like a function shadows it: the step does not cover that
/// function (nor what only it reads), so editing it does not invalidate the step. Where the code
/// reaches the item by a path, calls it before the `let`, or outside the `let`'s block, it does.
#[test]
fn parameters_and_let_bindings_shadow_value_items_of_their_name() {
    const SHADOWED: &str = r#"
        const RHAT_DIGITS: usize = 3;
        fn diagnostics(chains: &[f64]) -> f64 { chains.len() as f64 * RHAT_DIGITS as f64 }
        fn summary() -> f64 { 1.0 }
        #[step(outputs = ["report"])]
        fn sir(diagnostics: &[f64], scale: f64) -> f64 {
            let summary = diagnostics.len() as f64 * scale;
            println!("{diagnostics:?} {summary}");
            summary
        }
    "#;
    let (labels, _) = identity(SHADOWED);
    assert!(labels.is_empty(), "{labels:?}");

    for (case, body, covered) in [
        ("a path", "self::diagnostics(d) + s", "fn diagnostics"),
        ("a call before the let", "{ let x = summary(); let summary = x; summary }", "fn summary"),
        ("outside the let's block", "{ { let diagnostics = 1.0; diagnostics }; diagnostics(d) }", "fn diagnostics"),
        (
            "an if let's binding",
            "{ if let diagnostics = 2.0 { diagnostics } else { 0.0 }; diagnostics(d) }",
            "fn diagnostics",
        ),
        ("a closure's parameter", "(|diagnostics: f64| diagnostics)(s)", "fn diagnostics"),
        // The block's own items and imports sit above its locals and the parameters.
        ("a glob import in the body", "{ use inner::*; let summary = 1.0; summary(s) }", "fn summary"),
        ("an import in the body", "{ use inner::{summary}; summary(s) }", "fn summary"),
        (
            "a module in the body",
            "{ mod m { pub fn k() -> f64 { super::summary() } } let summary = m::k(); summary }",
            "fn summary",
        ),
    ] {
        let source = format!(
            r#"
            const RHAT_DIGITS: usize = 3;
            fn diagnostics(chains: &[f64]) -> f64 {{ chains.len() as f64 * RHAT_DIGITS as f64 }}
            fn summary() -> f64 {{ 1.0 }}
            mod inner {{ pub fn summary(x: f64) -> f64 {{ x }} }}
            #[step(outputs = ["report"])]
            fn sir(d: &[f64], s: f64) -> f64 {{ {body} }}
        "#
        );
        let (labels, _) = identity(&source);
        assert!(labels.iter().any(|l| l.starts_with(covered)), "{case}: {labels:?}");
    }

    // A const or static cannot be shadowed by a `let` (the pattern would be the const): covered.
    const CONST_PATTERN: &str = r#"
        #[allow(non_upper_case_globals)]
        const limit: u32 = 10;
        #[step(outputs = ["s"])]
        fn sir(x: u32) -> u32 {
            let limit = x else { return 0 };
            limit * 2
        }
    "#;
    let (labels, _) = identity(CONST_PATTERN);
    assert_eq!(labels, ["const limit"]);

    // A parameter under `#[cfg]` may not exist: the function of its name is covered.
    const CFG_PARAM: &str = r#"
        fn weight(x: f64) -> f64 { x }
        #[step(outputs = ["s"])]
        fn sir(#[cfg(feature = "custom")] weight: fn(f64) -> f64, x: f64) -> f64 { weight(x) }
    "#;
    let (labels, _) = identity(CFG_PARAM);
    assert_eq!(labels, ["fn weight"]);

    // A local does not shadow a type or a module of its name.
    const TYPES: &str = r#"
        #[allow(non_camel_case_types)]
        struct state { s: f64 }
        mod rates { pub fn base() -> f64 { 0.5 } }
        #[step(outputs = ["s"])]
        fn sir(state: f64, rates: f64) -> f64 {
            let next: state = state { s: state * rates };
            next.s + rates::base()
        }
    "#;
    let (labels, _) = identity(TYPES);
    assert!(labels.contains(&"struct state".to_owned()), "{labels:?}");
    assert!(labels.iter().any(|l| l.contains("base")), "{labels:?}");

    // A helper's own parameters shadow too: `report` covers `helper`, not `diagnostics`.
    const HELPER: &str = r#"
        fn diagnostics() -> f64 { 2.0 }
        fn helper(diagnostics: f64) -> f64 { diagnostics * 2.0 }
        #[step(outputs = ["s"])]
        fn sir(x: f64) -> f64 { helper(x) }
    "#;
    let (labels, _) = identity(HELPER);
    assert_eq!(labels, ["fn helper"]);
}
