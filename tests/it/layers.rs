//! The layer order of `ARCHITECTURE.md` ("Code map"), checked on the source: every `crate::`,
//! `super::` and `self::` path in `src/**/*.rs` (grouped `use crate::{a, b::c}` included) must
//! point down the order, and the children of one folder must not import each other in a cycle.
//! Like rust-analyzer's tidy tests, this reads text, not the compiler's view: comments and
//! string literals are skipped, inline `mod x { … }` blocks (tests) are followed for `super::`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first; each is a list of tiers, lowest first. A module may import any
/// module of a lower tier or layer, never one of a higher one, nor another module of its own
/// tier ("across"). `""` is the crate root (`lib.rs`: the router, and the `pub use` of the
/// application's state). `main.rs` is its own crate and is not read.
const LAYERS: &[(&str, &[&[&str]])] = &[
    ("base", &[&["secrets", "service_error"], &["config"], &["mail", "master_key", "outbound", "telemetry"]]),
    ("data", &[&["vocabulary"], &["db"]]),
    ("domain", &[&["tokens"], &["identity"], &["tenancy"], &["clients"], &["admin"]]),
    ("HTTP edge", &[&["html"], &["error"], &["extract", "render", "state"], &["notify", "session"]]),
    ("surfaces", &[&["protocol"], &["api", "pages"]]),
    ("application", &[&["backchannel", "bootstrap", "health", "janitor", "scrape"], &[""], &["cli"]]),
];

/// (layer index, tier index, layer name) of a top-level module.
fn rank(top: &str) -> Option<(usize, usize, &'static str)> {
    for (l, (name, tiers)) in LAYERS.iter().enumerate() {
        for (t, tier) in tiers.iter().enumerate() {
            if tier.contains(&top) {
                return Some((l, t, name));
            }
        }
    }
    None
}

/// Rust source without comments, string and char literals (their insides would look like paths).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied().unwrap_or('\0');
        if c[i] == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c[i] == 'r' && (at(i + 1) == '#' || at(i + 1) == '"') && !ident_char(at(i.wrapping_sub(1))) {
            // A raw string r"…" or r#"…"# (or a raw identifier r#name, kept).
            let mut j = i + 1;
            while at(j) == '#' {
                j += 1;
            }
            if at(j) != '"' {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            j += 1;
            while j < c.len() && !(c[j] == '"' && (0..hashes).all(|h| at(j + 1 + h) == '#')) {
                j += 1;
            }
            i = j + 1 + hashes;
            out.push_str("\"\"");
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'') {
            // A char literal; a lifetime ('a) has no closing quote right after one char.
            i += 1;
            while i < c.len() && c[i] != '\'' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn tokens(src: &str) -> Vec<String> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if ident_char(c[i]) {
            let start = i;
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            out.push(c[start..i].iter().collect());
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else if c[i].is_whitespace() {
            i += 1;
        } else {
            out.push(c[i].to_string());
            i += 1;
        }
    }
    out
}

/// The paths that start at `t[i]` (after `crate::`, `super::` or `self::`), `{…}` expanded.
fn paths(t: &[String], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    loop {
        match t.get(i).map(String::as_str) {
            Some("{") => {
                i += 1;
                loop {
                    i = paths(t, i, path.clone(), out);
                    match t.get(i).map(String::as_str) {
                        Some(",") => i += 1,
                        Some("}") => return i + 1,
                        _ => return i,
                    }
                    if t.get(i).map(String::as_str) == Some("}") {
                        return i + 1;
                    }
                }
            }
            Some(s) if s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') => {
                if s != "self" {
                    path.push(s.to_owned());
                }
                i += 1;
                if t.get(i).map(String::as_str) == Some("::") {
                    i += 1;
                } else {
                    out.push(path);
                    return i;
                }
            }
            _ => {
                out.push(path);
                return i;
            }
        }
    }
}

struct Import {
    file: PathBuf,
    from: Vec<String>,
    to: Vec<String>,
    text: String,
}

/// The module path of a file under `src/`: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    let last = segs.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        segs.push(stem.to_owned());
    }
    segs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn read_imports(src_dir: &Path) -> (BTreeSet<Vec<String>>, Vec<Import>) {
    let mut files = Vec::new();
    rust_files(src_dir, &mut files);
    files.sort();
    files.retain(|f| f != &src_dir.join("main.rs"));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f.strip_prefix(src_dir).unwrap())).collect();
    let mut imports = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src_dir).unwrap();
        let own = module_of(rel);
        let t = tokens(&strip(&std::fs::read_to_string(file).unwrap()));
        // Inline modules (`mod tests { … }`): (name, brace depth it closes at).
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut i = 0;
        while i < t.len() {
            let tok = t[i].as_str();
            let next = t.get(i + 1).map(String::as_str);
            let prev = i.checked_sub(1).map(|p| t[p].as_str());
            if tok == "mod" && t.get(i + 2).map(String::as_str) == Some("{") {
                inline.push((t[i + 1].clone(), depth + 1));
            } else if tok == "{" {
                depth += 1;
            } else if tok == "}" {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            let start = matches!(tok, "crate" | "super" | "self")
                && next == Some("::")
                && prev != Some("::")
                && prev != Some("$");
            if !start {
                i += 1;
                continue;
            }
            let mut here: Vec<String> = own.clone();
            here.extend(inline.iter().map(|(n, _)| n.clone()));
            let mut base = match tok {
                "crate" => Vec::new(),
                _ => here.clone(),
            };
            let mut j = i;
            // `super::super::…`
            while t.get(j).map(String::as_str) == Some("super") && t.get(j + 1).map(String::as_str) == Some("::") {
                base.pop();
                j += 2;
            }
            if matches!(t[j].as_str(), "crate" | "self") {
                j += 2;
            }
            let mut found = Vec::new();
            let end = paths(&t, j, base, &mut found);
            for path in found {
                let text = format!("crate::{}", path.join("::"));
                // The longest prefix that is a file's module; inline modules are their file's.
                let to = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p)).unwrap();
                imports.push(Import { file: rel.to_owned(), from: own.clone(), to, text });
            }
            i = end.max(i + 1);
        }
    }
    (modules, imports)
}

/// Imports that point up or across the layer order, one message each.
fn layer_violations(imports: &[Import]) -> Vec<String> {
    let mut out = Vec::new();
    for imp in imports {
        let from_top = imp.from.first().map_or("", String::as_str);
        let to_top = imp.to.first().map_or("", String::as_str);
        if from_top == to_top {
            continue;
        }
        let describe = |m: &str| if m.is_empty() { "the crate root (lib.rs)".to_owned() } else { format!("`{m}`") };
        let (Some(from), Some(to)) = (rank(from_top), rank(to_top)) else {
            out.push(format!(
                "src/{}: `{}`: {} and {} must both be in a layer of ARCHITECTURE.md's code map \
                 (add the new module to LAYERS in tests/it/layers.rs)",
                imp.file.display(),
                imp.text,
                describe(from_top),
                describe(to_top)
            ));
            continue;
        };
        let rule = if (to.0, to.1) == (from.0, from.1) {
            format!(
                "imports across: {} and {} are one tier of the {} layer",
                describe(from_top),
                describe(to_top),
                from.2
            )
        } else if (to.0, to.1) > (from.0, from.1) {
            format!(
                "imports up: {} ({} layer) may not import {} ({} layer{})",
                describe(from_top),
                from.2,
                describe(to_top),
                to.2,
                if to.0 == from.0 { ", a higher tier" } else { ", above it" }
            )
        } else {
            continue;
        };
        out.push(format!("src/{}: `{}` {rule} (ARCHITECTURE.md, \"Code map\")", imp.file.display(), imp.text));
    }
    out.dedup();
    out
}

/// Cycles among the children of one folder (the crate root's children are the top-level
/// modules), each as `a -> b -> a` with one import per arrow.
fn sibling_cycles(modules: &BTreeSet<Vec<String>>, imports: &[Import]) -> Vec<String> {
    let mut out = Vec::new();
    let parents: BTreeSet<Vec<String>> =
        modules.iter().filter(|m| !m.is_empty()).map(|m| m[..m.len() - 1].to_vec()).collect();
    for parent in parents {
        let n = parent.len();
        // child -> child -> an import that shows the edge
        let mut edges: BTreeMap<&str, BTreeMap<&str, &Import>> = BTreeMap::new();
        for imp in imports {
            if imp.from.len() > n
                && imp.to.len() > n
                && imp.from[..n] == parent[..]
                && imp.to[..n] == parent[..]
                && imp.from[n] != imp.to[n]
            {
                edges.entry(imp.from[n].as_str()).or_default().entry(imp.to[n].as_str()).or_insert(imp);
            }
        }
        // Each strongly connected set of children (mutually reachable), reported once with its
        // shortest cycle through its first member.
        let reach = |from: &str| -> BTreeMap<String, Vec<String>> {
            // node -> the shortest trail from `from` to it (breadth first)
            let mut trails: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([vec![from.to_owned()]]);
            while let Some(trail) = queue.pop_front() {
                for &next in edges.get(trail.last().unwrap().as_str()).into_iter().flat_map(BTreeMap::keys) {
                    if !trails.contains_key(next) {
                        let mut t = trail.clone();
                        t.push(next.to_owned());
                        trails.insert(next.to_owned(), t.clone());
                        queue.push_back(t);
                    }
                }
            }
            trails
        };
        let mut done: BTreeSet<String> = BTreeSet::new();
        for &start in edges.keys() {
            if done.contains(start) {
                continue;
            }
            let from_start = reach(start);
            let Some(ring) = from_start.get(start) else { continue };
            let members: Vec<String> = from_start.keys().filter(|m| reach(m).contains_key(start)).cloned().collect();
            done.extend(members.iter().cloned());
            let folder = if n == 0 { "crate".to_owned() } else { parent.join("::") };
            let mut msg = format!("cycle among the children of `{folder}` ({}):", members.join(", "));
            for w in ring.windows(2) {
                let imp = edges[w[0].as_str()][w[1].as_str()];
                msg.push_str(&format!("\n    {} -> {} (src/{}: `{}`)", w[0], w[1], imp.file.display(), imp.text));
            }
            out.push(msg);
        }
    }
    out
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every import in `src/` points down the layer order of ARCHITECTURE.md.
#[test]
fn imports_point_down_the_layers() {
    let (_, imports) = read_imports(&src_dir());
    assert!(imports.len() > 100, "the reader found too few imports ({}) to be reading the code", imports.len());
    let bad = layer_violations(&imports);
    assert!(bad.is_empty(), "{} import(s) break the layer order:\n{}", bad.len(), bad.join("\n"));
}

/// No two children of one folder import each other, directly or around a ring.
#[test]
fn no_import_cycles_between_siblings() {
    let (modules, imports) = read_imports(&src_dir());
    let cycles = sibling_cycles(&modules, &imports);
    assert!(cycles.is_empty(), "{} import cycle(s):\n{}", cycles.len(), cycles.join("\n"));
}

/// The reader itself: grouped, nested and relative paths resolve to the modules they name.
#[test]
fn the_reader_resolves_grouped_and_relative_paths() {
    let modules: BTreeSet<Vec<String>> =
        [vec![], vec!["a".to_owned()], vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]]
            .into_iter()
            .collect();
    let dir = std::env::temp_dir().join(format!("layers-reader-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "").unwrap();
    std::fs::write(dir.join("c.rs"), "").unwrap();
    std::fs::write(dir.join("a/mod.rs"), "").unwrap();
    std::fs::write(
        dir.join("a/b.rs"),
        "// use crate::c;\nuse crate::{a, c::{X, self}};\nfn f() { let s = \"crate::c\"; super::super::c::g(); }\n\
         mod tests { use super::*; use super::super::Y; }",
    )
    .unwrap();
    let (found, imports) = read_imports(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found, modules);
    let got: Vec<String> = imports.iter().map(|i| i.to.join("::")).collect();
    assert_eq!(got, ["a", "c", "c", "c", "a::b", "a"]);
}

/// Every top-level module of `src/` has a place in the order, and every name there is a module:
/// a new module cannot slip past the check by importing nothing yet.
#[test]
fn every_module_has_a_layer() {
    let (modules, _) = read_imports(&src_dir());
    let tops: BTreeSet<&str> = modules.iter().map(|m| m.first().map_or("", String::as_str)).collect();
    let named: BTreeSet<&str> =
        LAYERS.iter().flat_map(|(_, tiers)| tiers.iter().flat_map(|t| t.iter().copied())).collect();
    let missing: Vec<&&str> = tops.difference(&named).collect();
    let stale: Vec<&&str> = named.difference(&tops).collect();
    assert!(
        missing.is_empty(),
        "modules of src/ without a layer in tests/it/layers.rs (and ARCHITECTURE.md): {missing:?}"
    );
    assert!(stale.is_empty(), "layers name modules that src/ does not have: {stale:?}");
}

/// The switch that turns the admin handlers' own checks off (`AppState::without_handler_checks`,
/// for `tests/it/admin_rls.rs`) is defined in `src/state.rs` and called nowhere under `src/`: no
/// setting, route or command can reach it (ARCHITECTURE.md, "Admin surface").
#[test]
fn nothing_in_src_turns_the_handler_checks_off() {
    let dir = src_dir();
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    files.sort();
    let mut definitions = Vec::new();
    let mut calls = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
        let t = tokens(&strip(&std::fs::read_to_string(file).unwrap()));
        for (i, tok) in t.iter().enumerate() {
            if tok == "without_handler_checks" {
                if i > 0 && t[i - 1] == "fn" {
                    definitions.push(rel.clone());
                } else {
                    calls.push(rel.clone());
                }
            }
        }
    }
    assert_eq!(definitions, ["state.rs"], "the switch is defined once, in src/state.rs");
    assert!(calls.is_empty(), "src/ turns the admin handler checks off in: {calls:?}");
}
