//! `static/hub.d.ts` stays true to `static/hub.js`: a small TypeScript app that uses every export
//! type-checks against it with `tsc --noEmit` (strict, npm `typescript` from
//! tests/typescript/setup.sh), and tests/typescript/check-exports.mjs compares the declarations
//! with the running module (exports, class fields and methods, arities). Both are shown to fail
//! on declarations that drifted.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest one compiler or checker run may take (a cold `tsc` takes a few seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ts_dir() -> PathBuf {
    repo().join("tests/typescript")
}

fn tsc() -> PathBuf {
    let tsc = ts_dir().join("node_modules/typescript/bin/tsc");
    assert!(
        tsc.exists(),
        "npm typescript is not installed: run `bash tests/typescript/setup.sh` (tests/run.sh does it first)"
    );
    tsc
}

/// Runs `node args...`; returns whether it succeeded and everything it printed.
async fn node(args: &[&Path]) -> (bool, String) {
    let out = tokio::time::timeout(
        RUN_TIMEOUT,
        tokio::process::Command::new("node")
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("node finished in time")
    .expect("run node (Node.js 20 or newer is needed)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn type_check(project: &Path) -> (bool, String) {
    node(&[&tsc(), Path::new("--noEmit"), Path::new("-p"), project]).await
}

async fn compare(dts: &Path, js: &Path) -> (bool, String) {
    node(&[&ts_dir().join("check-exports.mjs"), dts, js]).await
}

#[tokio::test]
async fn example_app_type_checks_against_hub_d_ts() {
    let (ok, out) = type_check(&ts_dir().join("tsconfig.json")).await;
    assert!(
        ok,
        "tsc --noEmit (strict) on tests/typescript/app.ts:\n{out}"
    );
}

#[tokio::test]
async fn hub_d_ts_declares_exactly_what_hub_js_exports() {
    tsc();
    let static_dir = repo().join("static");
    let (ok, out) = compare(&static_dir.join("hub.d.ts"), &static_dir.join("hub.js")).await;
    assert!(ok, "static/hub.d.ts against static/hub.js:\n{out}");
    assert!(out.starts_with("ok: 5 exports"), "{out}");
}

/// A copy of the repository's `static/` and `tests/typescript/` with `edit` applied to hub.d.ts.
fn drifted(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let static_copy = tmp.path().join("static");
    let ts_copy = tmp.path().join("tests/typescript");
    std::fs::create_dir_all(&static_copy).unwrap();
    std::fs::create_dir_all(&ts_copy).unwrap();
    for entry in std::fs::read_dir(repo().join("static")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with("hub") {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = if name == "hub.d.ts" {
                let changed = edit(&text);
                assert_ne!(changed, text, "the edit changed nothing");
                changed
            } else {
                text
            };
            std::fs::write(static_copy.join(&name), text).unwrap();
        }
    }
    for name in ["app.ts", "tsconfig.json"] {
        std::fs::copy(ts_dir().join(name), ts_copy.join(name)).unwrap();
    }
    tmp
}

#[tokio::test]
async fn drifted_declarations_fail_both_checks() {
    tsc();
    // A method hub.js has and the app uses, gone from the declarations.
    let tmp = drifted(|d| d.replace("  reconnectNow(): void;\n", ""));
    let (dts, js) = (
        tmp.path().join("static/hub.d.ts"),
        tmp.path().join("static/hub.js"),
    );
    let (ok, out) = type_check(&tmp.path().join("tests/typescript/tsconfig.json")).await;
    assert!(
        !ok && out.contains("reconnectNow"),
        "tsc accepted it:\n{out}"
    );
    let (ok, out) = compare(&dts, &js).await;
    assert!(!ok && out.contains("HubClient.reconnectNow"), "{out}");

    // A method declared that hub.js does not have.
    let tmp = drifted(|d| d.replace("  close(): void;\n", "  close(): void;\n  pause(): void;\n"));
    let (dts, js) = (
        tmp.path().join("static/hub.d.ts"),
        tmp.path().join("static/hub.js"),
    );
    let (ok, out) = compare(&dts, &js).await;
    assert!(!ok && out.contains("HubClient.pause"), "{out}");

    // An export dropped from the declarations.
    let tmp = drifted(|d| {
        d.replace(
            "export function newClientMsgId(): string;",
            "declare function newClientMsgId(): string;",
        )
    });
    let (dts, js) = (
        tmp.path().join("static/hub.d.ts"),
        tmp.path().join("static/hub.js"),
    );
    let (ok, out) = compare(&dts, &js).await;
    assert!(
        !ok && out.contains("hub.js exports newClientMsgId"),
        "{out}"
    );
}
