//! The architecture, checked (in the spirit of rust-analyzer's tidy tests):
//!
//! - the pure crates (`warpd-core`, `warpd-ng`, `warpd-resp`) have no async runtime, database driver or HTTP
//!   stack anywhere in their normal dependency trees, so "the core does no I/O" cannot be broken
//!   without this test failing (and the code could not call them anyway: they are not
//!   dependencies);
//! - no module cycles: within every module of every crate, the graph "child module A names
//!   child module B" (through `crate::`, `super::` or `self::` paths) is acyclic;
//! - no source file over [`MAX_LINES`] lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Longest source file allowed (generated code and table data excepted, see [`LONG_FILES`]).
const MAX_LINES: usize = 800;
/// Files allowed over [`MAX_LINES`], with the reason. Keep empty where possible.
const LONG_FILES: &[(&str, &str)] = &[];

/// Crates that must not do I/O, and what their normal dependency trees must not contain.
const PURE_CRATES: &[&str] = &["warpd-core", "warpd-ng", "warpd-resp"];
const IO_CRATES: &[&str] = &[
    "tokio",
    "tokio-postgres",
    "postgres-protocol",
    "deadpool-postgres",
    "hyper",
    "hyper-util",
    "jsonrpsee",
    "reqwest",
    "mio",
    "socket2",
];

fn workspace() -> PathBuf {
    // crates/tidy → the workspace root
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/tidy sits two levels below the workspace root")
        .to_path_buf()
}

#[test]
fn pure_crates_have_no_io_dependencies() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for krate in PURE_CRATES {
        let out = Command::new(&cargo)
            .current_dir(workspace())
            .args([
                "tree",
                "--locked",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
            ])
            .args(["--format", "{p}", "-p", krate])
            .output()
            .expect("running cargo tree");
        assert!(
            out.status.success(),
            "cargo tree -p {krate} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        let names: BTreeSet<&str> = tree
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(
            names.contains(krate),
            "{krate} missing from its own tree:\n{tree}"
        );
        let bad: Vec<&&str> = IO_CRATES.iter().filter(|c| names.contains(**c)).collect();
        assert!(
            bad.is_empty(),
            "{krate} must do no I/O, but its normal dependencies include {bad:?}; \
             move the code that needs them to the daemon crate"
        );
    }
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target" || n == ".git") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_source_file_is_too_long() {
    let root = workspace();
    let mut files = vec![];
    for d in ["src", "crates", "tests", "benches", "examples"] {
        rust_files(&root.join(d), &mut files);
    }
    assert!(
        files.len() > 20,
        "found only {} files under {}",
        files.len(),
        root.display()
    );
    let mut long = String::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap_or(f)
            .to_string_lossy()
            .replace('\\', "/");
        let n = std::fs::read_to_string(f)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if n > MAX_LINES && !LONG_FILES.iter().any(|(p, _)| *p == rel) {
            let _ = writeln!(long, "  {rel}: {n} lines");
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split them by responsibility):\n{long}"
    );
}

/// A crate's modules: module path (segments below the crate root) → its file.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut files = vec![];
    rust_files(src, &mut files);
    let mut m = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap_or(&f);
        let mut segs: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if segs
            .last()
            .is_some_and(|s| s == "mod" || s == "lib" || s == "main")
        {
            segs.pop();
        }
        if segs.first().is_some_and(|s| s == "bin") {
            continue; // separate crates
        }
        m.insert(segs, f);
    }
    m
}

/// The code of a file without comments and without its trailing `#[cfg(test)] mod tests`.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines[i + 1..]
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_start().starts_with("mod tests"))
        {
            break;
        }
        let code = match line.find("//") {
            Some(p) if !line[..p].contains('"') => &line[..p],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let b = code.as_bytes();
    let (mut i, mut line, mut out) = (0, 1, vec![]);
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c == b'"' {
            // skip string literals (paths inside them are not code)
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if i < b.len() && b[i] == b'\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(code[s..i].to_string()), line));
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push((Tok::Colons, line));
            i += 2;
        } else {
            out.push((
                match c {
                    b'{' => Tok::Open,
                    b'}' => Tok::Close,
                    b',' => Tok::Comma,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// Parses `seg::seg::{a, b::c}` from `toks[i]` (just after a `::`); appends every full path.
fn path_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut path = prefix;
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                i += 1;
                if toks.get(i).map(|t| &t.0) == Some(&Tok::Colons) {
                    i += 1;
                    continue;
                }
                out.push(path);
                return i;
            }
            Some(Tok::Open) => {
                i += 1;
                loop {
                    match toks.get(i).map(|t| &t.0) {
                        Some(Tok::Close) => return i + 1,
                        Some(Tok::Comma) => i += 1,
                        None => return i,
                        _ => {
                            let next = path_tree(toks, i, path.clone(), out);
                            i = next.max(i + 1);
                        }
                    }
                }
            }
            _ => {
                out.push(path);
                return i;
            }
        }
    }
}

/// Every absolute module path named in `code` of the module at `here`, with its line.
fn references(code: &str, here: &[String], is_dir_module: bool) -> Vec<(Vec<String>, usize)> {
    let toks = tokens(code);
    let mut refs = vec![];
    let mut i = 0;
    while i < toks.len() {
        let (Tok::Ident(word), line) = &toks[i] else {
            i += 1;
            continue;
        };
        let preceded_by_colons = i > 0 && toks[i - 1].0 == Tok::Colons;
        if preceded_by_colons || !matches!(word.as_str(), "crate" | "super" | "self") {
            i += 1;
            continue;
        }
        // resolve the leading crate/super/self chain
        let mut base: Vec<String> = match word.as_str() {
            "crate" => vec![],
            "self" => here.to_vec(),
            _ => {
                // `super` of a file module is its parent; of a dir module (mod.rs) too
                let mut b = here.to_vec();
                b.pop();
                b
            }
        };
        let _ = is_dir_module;
        let mut j = i + 1;
        while toks.get(j).map(|t| &t.0) == Some(&Tok::Colons)
            && matches!(toks.get(j + 1).map(|t| &t.0), Some(Tok::Ident(s)) if s == "super")
        {
            base.pop();
            j += 2;
        }
        if toks.get(j).map(|t| &t.0) != Some(&Tok::Colons) {
            i = j;
            continue;
        }
        let mut paths = vec![];
        let next = path_tree(&toks, j + 1, base, &mut paths);
        for p in paths {
            refs.push((p, *line));
        }
        i = next.max(i + 1);
    }
    refs
}

/// Edges between sibling modules: (parent, from child, to child) → an example "file:line".
fn sibling_edges(src: &Path) -> BTreeMap<(Vec<String>, String, String), String> {
    let mods = modules(src);
    let mut edges = BTreeMap::new();
    for (here, file) in &mods {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let is_dir = file
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs");
        for (path, line) in references(&code_of(&text), here, is_dir) {
            // the module it names: the longest prefix that is a module of this crate
            let target = (0..=path.len())
                .rev()
                .map(|n| &path[..n])
                .find(|p| mods.contains_key(*p))
                .unwrap_or(&[]);
            let common = here.iter().zip(target).take_while(|(a, b)| a == b).count();
            if common == here.len() || common == target.len() {
                continue; // an ancestor or a descendant: not a sibling edge
            }
            let key = (
                here[..common].to_vec(),
                here[common].clone(),
                target[common].clone(),
            );
            edges
                .entry(key)
                .or_insert_with(|| format!("{}:{line}", file.display()));
        }
    }
    edges
}

/// One cycle in `graph`, if there is any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, graph, &mut state, &mut vec![]) {
                return Some(c);
            }
        }
    }
    None
}

fn module_cycles(src: &Path) -> Vec<String> {
    let edges = sibling_edges(src);
    let mut by_parent: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (parent, from, to) in edges.keys() {
        by_parent
            .entry(parent.clone())
            .or_default()
            .entry(from.clone())
            .or_default()
            .insert(to.clone());
    }
    let mut found = vec![];
    for (parent, graph) in &by_parent {
        // report every cycle: remove one edge of each found cycle and look again
        let mut g = graph.clone();
        while let Some(c) = find_cycle(&g) {
            let mut s = format!("in `crate::{}`: {}", parent.join("::"), c.join(" → "));
            for w in c.windows(2) {
                if let Some(at) = edges.get(&(parent.clone(), w[0].clone(), w[1].clone())) {
                    let _ = write!(s, "\n      {} → {}: {at}", w[0], w[1]);
                }
            }
            found.push(s);
            if let Some(set) = g.get_mut(&c[0]) {
                set.remove(&c[1]);
            }
        }
    }
    found
}

#[test]
fn no_module_cycles() {
    let root = workspace();
    let mut all = vec![];
    for src in [
        root.join("src"),
        root.join("crates/core/src"),
        root.join("crates/ng/src"),
    ] {
        assert!(src.is_dir(), "{} missing", src.display());
        for c in module_cycles(&src) {
            all.push(format!("{}: {c}", src.display()));
        }
    }
    assert!(all.is_empty(), "module cycles:\n{}", all.join("\n"));
}

#[test]
fn the_cycle_finder_finds_cycles() {
    // a self-check of the checker on a made-up crate
    let dir = std::env::temp_dir().join(format!("warpd-tidy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a")).expect("temp dir");
    let write = |p: &str, s: &str| std::fs::write(dir.join(p), s).expect("write");
    write("lib.rs", "mod a; mod b; mod c;\n");
    write("a/mod.rs", "mod x; mod y;\nuse crate::b::Thing;\n");
    write("a/x.rs", "use super::y::Y; // x → y\n");
    write("a/y.rs", "use super::{super::c, x::X};\n");
    write("b.rs", "use crate::{c::{self, C}};\n");
    write(
        "c.rs",
        "fn f() { let _ = \"crate::a::X\"; }\n#[cfg(test)]\nmod tests { use crate::a::X; }\n",
    );
    let cycles = module_cycles(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(
        cycles[0].starts_with("in `crate::a`: x → y → x"),
        "{cycles:?}"
    );
}
