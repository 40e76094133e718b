//! The server's layering rules (docs/architecture.md, "Layers"), checked on its source:
//! no import cycle between top-level modules, the room free of GStreamer, axum and x11rb,
//! no `http` type below the shells, and domain modules free of `config`.
//!
//! Modules are the top-level ones of `server/src` (`room`, `media`, ...); a file belongs
//! to the module its path starts with. An edge A → B is any `crate::B` in A's code
//! (comments are skipped, so doc links do not count).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn server_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("server/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without comments (line comments, doc comments, block comments).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in text.lines() {
        let mut rest = line;
        let mut kept = String::new();
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(i) => {
                        in_block = false;
                        rest = &rest[i + 2..];
                    }
                    None => break,
                }
            } else if let Some(i) = rest.find("/*") {
                kept.push_str(&rest[..i]);
                in_block = true;
                rest = &rest[i + 2..];
            } else {
                kept.push_str(rest);
                break;
            }
        }
        let kept = match kept.find("//") {
            // A `//` inside a string literal (a URL) is rare in this code base and never
            // precedes a `crate::` path on the same line.
            Some(i) => kept[..i].to_string(),
            None => kept,
        };
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// Top-level module → (its code, concatenated; the files it spans).
fn modules() -> BTreeMap<String, String> {
    let root = server_src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&root).expect("under server/src");
        let first = rel.components().next().expect("a path").as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("a readable source file");
        out.entry(module).or_default().push_str(&code_of(&text));
    }
    out
}

/// The top-level modules `code` refers to as `crate::NAME`.
fn uses(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let name: String =
            code[i + "crate::".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    modules()
        .into_iter()
        .map(|(m, code)| {
            let mut deps = uses(&code);
            deps.remove(&m);
            (m, deps)
        })
        .collect()
}

/// A cycle in `g`, as the modules along it, if there is one.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_rules_see_the_modules_they_are_about() {
    let g = graph();
    for m in ["room", "media", "http", "input", "config", "clipboard", "outbox", "transport"] {
        assert!(g.contains_key(m), "no module {m} in server/src: {:?}", g.keys().collect::<Vec<_>>());
    }
    assert!(g["http"].contains("room"), "the reader misses http → room: {:?}", g["http"]);
}

#[test]
fn there_is_no_import_cycle_between_server_modules() {
    let g = graph();
    assert_eq!(find_cycle(&g), None, "module graph: {g:#?}");
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let mut g = graph();
    g.entry("outbox".into()).or_default().insert("room".into());
    let cycle = find_cycle(&g).expect("outbox → room → outbox is a cycle");
    assert!(cycle.contains(&"outbox".to_string()) && cycle.contains(&"room".to_string()), "{cycle:?}");
}

#[test]
fn the_room_imports_neither_gstreamer_nor_axum_nor_x11rb() {
    let code = &modules()["room"];
    for banned in ["gst::", "gst_", "axum", "x11rb", "crate::media", "crate::http"] {
        assert!(!code.contains(banned), "room mentions {banned}");
    }
}

#[test]
fn no_http_type_appears_below_the_shells() {
    let m = modules();
    for module in ["media", "input", "room", "clipboard", "cursor", "screen", "display", "signalling", "auth"] {
        let code = &m[module];
        assert!(!code.contains("crate::http"), "{module} uses crate::http");
        assert!(!code.contains("axum"), "{module} uses axum");
    }
}

#[test]
fn domain_modules_never_import_config() {
    let g = graph();
    // Wiring and shells may read flags; nothing else may.
    let allowed: BTreeSet<&str> = ["config", "app", "http"].into();
    let offenders: Vec<_> =
        g.iter().filter(|(m, deps)| !allowed.contains(m.as_str()) && deps.contains("config")).map(|(m, _)| m).collect();
    assert!(offenders.is_empty(), "these modules import config: {offenders:?}");
}

#[test]
fn comments_do_not_count_as_imports() {
    let code = code_of("//! see [`crate::config`]\nuse crate::room; // crate::http\n/* crate::media */ fn f() {}\n");
    assert_eq!(uses(&code), BTreeSet::from(["room".to_string()]));
}
