//! The architecture check (issue 11, DESIGN.md "Rooms"): every file under `src/` belongs to a
//! room, its top-level module, and a room references only the rooms and web crates its rules
//! allow. A small lexer (`architecture/lex.rs`) drops comments and string literals, so only code
//! counts. A failure lists each violation as `file:line: room -> forbidden`.

#[path = "architecture/lex.rs"]
mod lex;

use std::collections::BTreeSet;
use std::path::Path;

use lex::{lex, Tok};

/// The rooms of the project: `src/<room>.rs` or `src/<room>/...`. A new top-level module must
/// be added here (and given rules) before the check passes.
const ROOMS: &[&str] = &[
    "domain",
    "config",
    "error",
    "telemetry",
    "store",
    "agent",
    "session",
    "transport",
    "auth",
    "tools",
    "fuzzing",
];

/// The crates that carry HTTP or WebSocket types; only the edge rooms may use them.
const WEB_CRATES: &[&str] = &[
    "axum",
    "tungstenite",
    "tokio_tungstenite",
    "tower_http",
    "hyper",
];

/// What a path in code points at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// The first segment after the crate root (`crate::X`); a room when `X` is one.
    Root(String),
    /// One of [`WEB_CRATES`].
    Crate(String),
}

/// Whether room `from` must not reference `to` (a room or a web crate). The rules, issue 11:
/// - `store` and `agent` sit below `session`: no `session`, `transport` or `auth`;
/// - `session` knows nothing of HTTP or of who asks: no `transport`, `auth` or web crate;
/// - `domain`, `config` and `error` are leaves: no other room; `domain` and `error` no web
///   crate either (axum today; the other four would carry HTTP types just the same);
/// - `fuzzing` (entry points for the fuzz targets, issue 15) may reach into any room, and no
///   room may depend on it: it is a harness, not a layer.
fn forbidden(from: &str, to: &Target) -> bool {
    match to {
        Target::Root(room) if room == from => false,
        Target::Root(room) if room == "fuzzing" => true,
        Target::Root(room) => match from {
            "store" | "agent" => matches!(room.as_str(), "session" | "transport" | "auth"),
            "session" => matches!(room.as_str(), "transport" | "auth"),
            "domain" | "config" | "error" => true,
            _ => false,
        },
        Target::Crate(_) => matches!(from, "session" | "domain" | "error"),
    }
}

/// The index of the `}` that closes the `{` at `open` (or the end).
fn closing(toks: &[(usize, Tok)], open: usize) -> usize {
    let mut depth = 0;
    for (k, (_, t)) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') if depth == 1 => return k,
            Tok::Punct('}') => depth -= 1,
            _ => {}
        }
    }
    toks.len()
}

/// The first segment of each path that starts at `j`, just after the crate root: one
/// identifier, or every item of a `{...}` group (nested groups too).
fn roots(toks: &[(usize, Tok)], j: usize, out: &mut Vec<(usize, Target)>) {
    match toks.get(j) {
        Some((line, Tok::Ident(w))) => out.push((*line, Target::Root(w.clone()))),
        Some((_, Tok::Punct('{'))) => {
            let end = closing(toks, j);
            let (mut k, mut item_start) = (j + 1, true);
            while k < end {
                match &toks[k].1 {
                    Tok::Punct('{') => {
                        if item_start {
                            roots(toks, k, out);
                        }
                        k = closing(toks, k);
                        item_start = false;
                    }
                    Tok::Punct(',') => item_start = true,
                    Tok::Ident(_) if item_start => {
                        roots(toks, k, out);
                        item_start = false;
                    }
                    _ => item_start = false,
                }
                k += 1;
            }
        }
        _ => {}
    }
}

/// Every reference to the crate root's modules (`crate::X`, `$crate::X`, `super::` chains that
/// reach the root, in `use` or inline) and to [`WEB_CRATES`], with its line. `depth` is the
/// file's module depth: 1 for `src/x.rs` and `src/x/mod.rs`, 2 for `src/x/y.rs`.
fn references(toks: &[(usize, Tok)], depth: usize) -> Vec<(usize, Target)> {
    let ident = |k: usize| match toks.get(k) {
        Some((_, Tok::Ident(w))) => Some(w.as_str()),
        _ => None,
    };
    let sep = |k: usize| matches!(toks.get(k), Some((_, Tok::Sep)));
    let mut out = Vec::new();
    // Brace depth, and the brace depths at which inline `mod x {` blocks opened.
    let (mut braces, mut inline_mods) = (0usize, Vec::new());
    for (i, (line, tok)) in toks.iter().enumerate() {
        let after_sep = i > 0 && sep(i - 1);
        let before = if i > 0 { ident(i - 1) } else { None };
        match tok {
            Tok::Punct('{') => {
                if i >= 2 && ident(i - 2) == Some("mod") && before.is_some() {
                    inline_mods.push(braces);
                }
                braces += 1;
            }
            Tok::Punct('}') => {
                braces = braces.saturating_sub(1);
                if inline_mods.last() == Some(&braces) {
                    inline_mods.pop();
                }
            }
            Tok::Ident(w) if w == "crate" && !after_sep && sep(i + 1) => {
                roots(toks, i + 2, &mut out)
            }
            Tok::Ident(w) if w == "super" && !after_sep => {
                let (mut k, mut ups) = (i, 0);
                while ident(k) == Some("super") && sep(k + 1) {
                    (k, ups) = (k + 2, ups + 1);
                }
                if ups > 0 && ups >= depth + inline_mods.len() {
                    roots(toks, k, &mut out);
                }
            }
            Tok::Ident(w)
                if WEB_CRATES.contains(&w.as_str())
                    && !after_sep
                    && (sep(i + 1) || matches!(before, Some("use" | "crate"))) =>
            {
                out.push((*line, Target::Crate(w.clone())));
            }
            _ => {}
        }
    }
    out
}

/// The room of a file (path relative to the package, `/`-separated), or `None` for the exempt
/// crate roots (`src/lib.rs`, `src/main.rs`, `src/bin/`).
fn room_of(path: &str) -> Option<&str> {
    let first = path.strip_prefix("src/")?.split('/').next()?;
    match first {
        "lib.rs" | "main.rs" | "bin" => None,
        _ => Some(first.strip_suffix(".rs").unwrap_or(first)),
    }
}

/// Module depth of a file: `src/x.rs` and `src/x/mod.rs` are 1, `src/x/y.rs` is 2.
fn module_depth(path: &str) -> usize {
    let parts = path.trim_start_matches("src/").split('/').count();
    if path.ends_with("/mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// Every violation in `files` (path, source), as `file:line: room -> forbidden`, sorted.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let rooms: BTreeSet<&str> = files
        .iter()
        .filter_map(|(p, _)| room_of(p))
        .chain(ROOMS.iter().copied())
        .collect();
    let mut out = BTreeSet::new();
    for (path, text) in files {
        let Some(room) = room_of(path) else { continue };
        if !ROOMS.contains(&room) {
            out.insert((
                path.clone(),
                1,
                format!("`{room}` is not a known room: add it to ROOMS"),
            ));
        }
        for (line, target) in references(&lex(text), module_depth(path)) {
            let name = match &target {
                Target::Root(r) if rooms.contains(r.as_str()) => r,
                Target::Root(_) => continue, // an item of lib.rs, `self`, a glob
                Target::Crate(c) => c,
            };
            if forbidden(room, &target) {
                out.insert((path.clone(), line, format!("{room} -> {name}")));
            }
        }
    }
    out.into_iter()
        .map(|(path, line, what)| format!("{path}:{line}: {what}"))
        .collect()
}

/// Every `.rs` file under `dir`, as (path relative to `root`, source).
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under root");
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>();
            out.push((
                rel.join("/"),
                std::fs::read_to_string(&path).expect("read source"),
            ));
        }
    }
}

#[test]
fn rooms_reference_only_what_their_rules_allow() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(root, &root.join("src"), &mut files);
    assert!(
        files.len() > 10,
        "found the sources ({} files)",
        files.len()
    );
    let found = violations(&files);
    assert!(
        found.is_empty(),
        "{} forbidden references between rooms (rules: tests/architecture.rs `forbidden`):\n{}\n",
        found.len(),
        found.join("\n")
    );
}

#[cfg(test)]
mod scanner {
    use super::*;

    fn check(path: &str, src: &str) -> Vec<String> {
        violations(&[(path.to_owned(), src.to_owned())])
    }

    #[test]
    fn a_forbidden_use_is_reported_with_its_line() {
        let src =
            "//! The store.\n\nuse crate::session::event::Item;\nuse crate::config::Config;\n";
        assert_eq!(
            check("src/store/mod.rs", src),
            ["src/store/mod.rs:3: store -> session"]
        );
    }

    #[test]
    fn grouped_and_nested_uses_count_each_room() {
        let src = "use crate::{\n    config::Config,\n    session::{self, event::{Item, Role}},\n    {auth::Principal, transport},\n};\n";
        assert_eq!(
            check("src/agent/scripted.rs", src),
            [
                "src/agent/scripted.rs:3: agent -> session",
                "src/agent/scripted.rs:4: agent -> auth",
                "src/agent/scripted.rs:4: agent -> transport",
            ]
        );
    }

    #[test]
    fn inline_paths_count_anywhere_in_code() {
        let src = "impl From<crate::store::StoreError> for HubError {}\nfn f<'a>(x: &'a str) { let _ = crate :: auth :: ok(x); }\nmacro_rules! m { () => { $crate::session::Hub }; }\n";
        assert_eq!(
            check("src/error.rs", src),
            [
                "src/error.rs:1: error -> store",
                "src/error.rs:2: error -> auth",
                "src/error.rs:3: error -> session",
            ]
        );
    }

    #[test]
    fn comments_and_string_literals_do_not_count() {
        let src = r####"
// use crate::auth::Principal;
/// See [`crate::transport::ws`].
/* crate::auth::x /* nested crate::auth */ crate::transport */
const A: &str = "use crate::auth::Principal; \" crate::transport::x";
const B: &str = r#"crate::auth::"x""#;
const C: &[u8] = b"crate::auth::y";
const D: char = '{';
const E: u8 = b'"';
fn f() -> &'static str { "axum::Json" }
const F: &str = "two lines,
crate::auth::z";
use crate::auth::Principal;
"####;
        // Only the last line counts, and lines are counted through comments and literals.
        assert_eq!(
            check("src/session/hub.rs", src),
            ["src/session/hub.rs:13: session -> auth"]
        );
    }

    #[test]
    fn allowed_references_pass() {
        let src = "use crate::agent::Agent;\nuse crate::store::{Store, WriteBatch};\nuse crate::{config::Config, error::HubError, telemetry::Metrics};\nuse super::actor::Shared;\npub(crate) fn f() {}\nuse serde_json::json;\n";
        assert_eq!(check("src/session/hub.rs", src), Vec::<String>::new());
        let edge = "use axum::Json;\nuse crate::session::Hub;\nuse crate::auth::Principal;\n";
        assert_eq!(check("src/transport/ws.rs", edge), Vec::<String>::new());
        assert_eq!(
            check("src/lib.rs", edge),
            Vec::<String>::new(),
            "lib.rs is exempt"
        );
    }

    #[test]
    fn web_crates_are_found_in_use_and_inline() {
        let src = "use axum::http::StatusCode;\nfn f(m: tokio_tungstenite::tungstenite::Message) {}\n#[hyper::x]\nuse tower_http;\nextern crate tungstenite;\n";
        assert_eq!(
            check("src/session/ws_glue.rs", src),
            [
                "src/session/ws_glue.rs:1: session -> axum",
                "src/session/ws_glue.rs:2: session -> tokio_tungstenite",
                "src/session/ws_glue.rs:3: session -> hyper",
                "src/session/ws_glue.rs:4: session -> tower_http",
                "src/session/ws_glue.rs:5: session -> tungstenite",
            ]
        );
        assert_eq!(
            check("src/store/mod.rs", "use axum::Json;\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn super_paths_that_reach_the_crate_root_count() {
        assert_eq!(
            check(
                "src/config.rs",
                "use super::error::HubError;\nmod tests { use super::*; }\n"
            ),
            ["src/config.rs:1: config -> error"]
        );
        let src = "use super::actor::Shared;\nuse super::super::auth::Principal;\n";
        assert_eq!(
            check("src/session/hub.rs", src),
            ["src/session/hub.rs:2: session -> auth"]
        );
        let tests = "#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::Hub;\n}\n";
        assert_eq!(check("src/session/hub.rs", tests), Vec::<String>::new());
    }

    #[test]
    fn no_room_depends_on_the_fuzzing_entry_points() {
        let src = "pub fn f(d: &[u8]) -> String { crate::transport::fuzz::x(d) }\nuse crate::agent::openai;\n";
        assert_eq!(check("src/fuzzing.rs", src), Vec::<String>::new());
        assert_eq!(
            check(
                "src/transport/ws.rs",
                "use crate::fuzzing::ws_client_frame;\n"
            ),
            ["src/transport/ws.rs:1: transport -> fuzzing"]
        );
    }

    #[test]
    fn files_map_to_rooms_and_unknown_rooms_fail() {
        assert_eq!(room_of("src/store/sled_store.rs"), Some("store"));
        assert_eq!(room_of("src/config.rs"), Some("config"));
        assert_eq!(room_of("src/main.rs"), None);
        assert_eq!(module_depth("src/agent/openai/mod.rs"), 2);
        assert_eq!(module_depth("src/error.rs"), 1);
        assert_eq!(
            check("src/model.rs", "use crate::session::Hub;\n"),
            ["src/model.rs:1: `model` is not a known room: add it to ROOMS"]
        );
        assert_eq!(
            check(
                "src/domain/ids.rs",
                "use crate::store::Store;\nuse axum::Json;\n"
            ),
            [
                "src/domain/ids.rs:1: domain -> store",
                "src/domain/ids.rs:2: domain -> axum"
            ]
        );
    }
}
