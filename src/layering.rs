//! Holds the code to the layers [`crate`]'s documentation draws: it reads every `crate::` and
//! `super::` path in `src/` and fails when a module reaches up a layer, across to a neighbour it
//! must not know, or into a circle of imports. `cargo test --lib layering` runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a top-level module stands: a module may use its own layer's top module and anything
/// on a lower floor, nothing else. `None`: the wiring (the crate root), which may use anything.
fn floor(top: &str) -> Option<u8> {
    match top {
        "domain" | "errors" => Some(0),
        "config" => Some(1),
        "store" | "telnyx" | "jokes" | "ngrok" => Some(2),
        "app" => Some(3),
        "web" => Some(4),
        _ => None,
    }
}

/// A module's path below the crate, e.g. `["web", "calls", "api"]` for `src/web/calls/api.rs`.
type ModulePath = Vec<String>;

fn module_of(file: &Path, src: &Path) -> ModulePath {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative.iter().map(|part| part.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    parts
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The code without its comments, so the words of a doc comment are not taken for imports.
fn code_of(text: &str) -> String {
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The module paths `code` names through `crate::…` and `super::…` (from `module`), each cut
/// to the longest prefix that is a module of the crate.
fn imports(code: &str, module: &[String], modules: &BTreeSet<ModulePath>) -> BTreeSet<ModulePath> {
    let mut found = BTreeSet::new();
    for (anchor, base) in [("crate::", Vec::new()), ("super::", parent_of(module))] {
        for (at, _) in code.match_indices(anchor) {
            let preceded_by_ident = code[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_');
            if preceded_by_ident {
                continue;
            }
            let rest = &code[at + anchor.len()..];
            let mut path = base.clone();
            for segment in rest.split("::") {
                let ident: String = segment.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if ident.is_empty() || ident == "super" {
                    break;
                }
                path.push(ident.clone());
                if ident.len() != segment.len() {
                    break;
                }
            }
            while !path.is_empty() && !modules.contains(&path) {
                path.pop();
            }
            found.insert(path);
        }
    }
    found
}

/// The module `super::` means in `module` (a `mod.rs` is its folder's module, so its parent is
/// the folder's parent).
fn parent_of(module: &[String]) -> ModulePath {
    module[..module.len().saturating_sub(1)].to_vec()
}

fn is_ancestor(ancestor: &[String], of: &[String]) -> bool {
    of.len() > ancestor.len() && of.starts_with(ancestor)
}

/// Every module of the crate with the modules it imports.
fn import_graph() -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<ModulePath> = files.iter().map(|file| module_of(file, &src)).collect();
    files
        .iter()
        .filter(|file| !file.ends_with("main.rs"))
        .map(|file| {
            let module = module_of(file, &src);
            let code = code_of(&std::fs::read_to_string(file).expect("readable source"));
            let used = imports(&code, &module, &modules)
                .into_iter()
                .filter(|used| used != &module && !is_ancestor(used, &module) && !is_ancestor(&module, used))
                .collect();
            (module, used)
        })
        .collect()
}

#[test]
fn no_module_imports_one_on_a_higher_floor_or_a_neighbour_of_its_own_floor() {
    let mut wrong = Vec::new();
    for (module, used) in import_graph() {
        let Some(top) = module.first() else { continue };
        let Some(own) = floor(top) else { continue };
        for target in used {
            let Some(target_top) = target.first() else { continue };
            let allowed = target_top == top || floor(target_top).is_some_and(|theirs| theirs < own);
            if !allowed {
                wrong.push(format!("{} -> {}", module.join("::"), target.join("::")));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn no_modules_import_each_other_in_a_circle() {
    let graph = import_graph();
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for start in graph.keys() {
        let mut trail = Vec::new();
        find_circles(&graph, start, &mut trail, &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "modules importing each other:\n{}", circles.join("\n"));
}

/// Depth-first search from `at`; a module met again on the current trail closes a circle.
fn find_circles(
    graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>,
    at: &ModulePath,
    trail: &mut Vec<ModulePath>,
    done: &mut BTreeSet<ModulePath>,
    circles: &mut Vec<String>,
) {
    if let Some(position) = trail.iter().position(|seen| seen == at) {
        let circle: Vec<String> = trail[position..].iter().chain([at]).map(|m| m.join("::")).collect();
        circles.push(circle.join(" -> "));
        return;
    }
    if done.contains(at) {
        return;
    }
    trail.push(at.clone());
    for next in graph.get(at).into_iter().flatten() {
        find_circles(graph, next, trail, done, circles);
    }
    trail.pop();
    done.insert(at.clone());
}

#[test]
fn the_check_sees_an_import_that_reaches_up() {
    let modules: BTreeSet<ModulePath> = [vec![], vec!["domain".into()], vec!["store".into()]].into_iter().collect();
    let found = imports("use crate::store::StoreError;", &["domain".into()], &modules);
    assert!(found.contains(&vec!["store".to_owned()]), "{found:?}");
}
