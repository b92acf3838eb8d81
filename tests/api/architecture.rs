//! The layers' one direction, enforced: http -> service -> db -> core. A file that names
//! a layer above its own, or a crate its layer must not know, fails this test.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The file's code without its comments, which may name anything.
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::` path in `code` up to its last segment, `use` trees expanded.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(start) = rest.find("crate::") {
        let tail = &rest[start + "crate::".len()..];
        let end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let mut path = tail[..end].trim_end_matches(':').to_owned();
        // `crate::db::contacts::{self, Row}`: each item of the brace list.
        if tail[end..].starts_with('{') {
            let close = tail[end..].find('}').unwrap_or(0);
            for item in tail[end + 1..end + close].split(',') {
                let item = item.split(" as ").next().unwrap_or_default().trim();
                if !item.is_empty() {
                    paths.push(format!("{path}::{item}"));
                }
            }
            path.clear();
        }
        if !path.is_empty() {
            paths.push(path);
        }
        rest = &tail[end..];
    }
    paths
}

struct Layer {
    dir: &'static str,
    /// Crates and crate modules this layer must never name.
    forbidden: &'static [&'static str],
}

const LAYERS: &[Layer] = &[
    Layer {
        dir: "src/core",
        forbidden: &[
            "actix",
            "diesel",
            "utoipa",
            "tokio",
            "crate::db",
            "crate::service",
            "crate::http",
            "crate::app",
        ],
    },
    Layer {
        dir: "src/db",
        forbidden: &[
            "actix",
            "utoipa",
            "crate::service",
            "crate::http",
            "crate::app",
        ],
    },
    Layer {
        dir: "src/service",
        forbidden: &["actix", "utoipa", "crate::http", "crate::app"],
    },
    Layer {
        dir: "src/http",
        forbidden: &["crate::app"],
    },
];

fn names(code: &str, forbidden: &str) -> bool {
    if forbidden.starts_with("crate::") {
        return crate_paths(code)
            .iter()
            .any(|path| format!("crate::{path}").starts_with(forbidden));
    }
    // A crate: named as a path root (`actix_web::`, `use diesel;`).
    code.match_indices(forbidden).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let boundary = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = &code[at + forbidden.len()..];
        boundary && (after.starts_with("::") || after.starts_with('_') || after.starts_with(';'))
    })
}

#[test]
fn each_layer_names_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut breaches = Vec::new();
    for layer in LAYERS {
        for file in rust_files(&root.join(layer.dir)) {
            let code = code(&file);
            for forbidden in layer.forbidden {
                if names(&code, forbidden) {
                    breaches.push(format!("{} names {forbidden}", file.display()));
                }
            }
        }
    }
    assert!(
        breaches.is_empty(),
        "layering broken:\n{}",
        breaches.join("\n")
    );
}

/// Handlers read rows to render them, but every statement runs in the data layer: from
/// `crate::db` the HTTP layer names only types.
#[test]
fn the_http_layer_names_only_types_of_the_data_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut breaches = Vec::new();
    for file in rust_files(&root.join("src/http")) {
        for path in crate_paths(&code(&file)) {
            let Some(item) = path.strip_prefix("db::") else {
                continue;
            };
            let last = item.rsplit("::").next().unwrap_or_default();
            if !last.starts_with(|c: char| c.is_ascii_uppercase()) {
                breaches.push(format!("{} names crate::{path}", file.display()));
            }
        }
    }
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
}

#[test]
fn the_checks_see_what_they_look_for() {
    let code = "use crate::db::contacts::{self, ContactRow};\nlet x = crate::service::Env;";
    assert_eq!(
        crate_paths(code),
        [
            "db::contacts::self",
            "db::contacts::ContactRow",
            "service::Env"
        ]
    );
    assert!(names("use diesel::prelude::*;", "diesel"));
    assert!(names("actix_web::web::block", "actix"));
    assert!(!names("let rediesel = 1;", "diesel"));
    assert!(names(code, "crate::service"));
}

/// The module file `path` (from the crate root, `::`-separated) is in, if any: the longest
/// prefix that is a file.
fn module_file(root: &Path, path: &str) -> Option<PathBuf> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len()).rev().find_map(|k| {
        let base = root.join("src").join(segments[..k].join("/"));
        [base.with_extension("rs"), base.join("mod.rs")]
            .into_iter()
            .find(|file| file.is_file())
    })
}

/// The files a file names: `crate::` paths, and `super::` paths from its module.
fn named_files(root: &Path, file: &Path) -> Vec<PathBuf> {
    let code = code(file);
    let relative = file.strip_prefix(root.join("src")).unwrap();
    let mut module: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if module
        .last()
        .is_some_and(|last| last == "mod" || last == "lib" || last == "main")
    {
        module.pop();
    }
    let parent = module[..module.len().saturating_sub(1)].join("::");
    let supers = code
        .replace("super::", "crate::SUPER::")
        .replace("crate::SUPER::", &format!("crate::{parent}::"));
    crate_paths(&supers)
        .into_iter()
        .filter_map(|path| module_file(root, path.trim_start_matches("::")))
        .filter(|named| named != file)
        .collect()
}

/// No two files name each other, directly or through others: each module has one place
/// in the order of dependencies.
#[test]
fn no_files_name_each_other_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = rust_files(&root.join("src"));
    let edges: Vec<Vec<usize>> = files
        .iter()
        .map(|file| {
            named_files(root, file)
                .iter()
                .filter_map(|named| files.iter().position(|f| f == named))
                .collect()
        })
        .collect();
    // Depth-first search; a file met again while still on the path closes a circle.
    fn visit(
        at: usize,
        edges: &[Vec<usize>],
        state: &mut [u8],
        path: &mut Vec<usize>,
        circles: &mut Vec<Vec<usize>>,
    ) {
        state[at] = 1;
        path.push(at);
        for &next in &edges[at] {
            match state[next] {
                0 => visit(next, edges, state, path, circles),
                1 => {
                    let from = path.iter().position(|f| *f == next).unwrap_or(0);
                    circles.push(path[from..].to_vec());
                }
                _ => {}
            }
        }
        path.pop();
        state[at] = 2;
    }
    let mut state = vec![0u8; files.len()];
    let mut circles = Vec::new();
    for start in 0..files.len() {
        if state[start] == 0 {
            visit(start, &edges, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    let shown: Vec<String> = circles
        .iter()
        .map(|circle| {
            circle
                .iter()
                .map(|i| files[*i].strip_prefix(root).unwrap().display().to_string())
                .collect::<Vec<_>>()
                .join(" -> ")
        })
        .collect();
    assert!(shown.is_empty(), "circles:\n{}", shown.join("\n"));
}
