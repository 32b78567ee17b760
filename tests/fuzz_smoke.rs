//! A short, bounded run of every fuzz target (cargo fuzz, `fuzz/`) in the test command: 16
//! seconds each from the committed corpus (`fuzz/corpus/<target>`, and the past crashes in
//! `fuzz/regressions/<target>`), new inputs going to a
//! temporary directory so the repository stays clean. A crash fails the test and names the
//! input libFuzzer saved under `fuzz/artifacts/<target>/`; copy it to
//! `fuzz/regressions/<target>/` and `tests/fuzz_regressions.rs` replays it in every
//! `cargo test` from then on. tests/fuzz/setup.sh installs cargo-fuzz; the targets build on
//! stable with RUSTC_BOOTSTRAP=1. They build unoptimised (`--dev`): the first build compiles
//! the hub and its dependencies again with sanitizer instrumentation in `fuzz/target`, about
//! 4.5 CPU-minutes that way against some 11 optimised, which the test command's time budget
//! cannot spare. A smoke run then makes 7,000-33,000 runs per target in 16 s, but only about
//! 1,000 for `upstream_chunks` (the SSE parser is slow unoptimised). The long runs (README)
//! are optimised.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const TARGETS: [&str; 5] = [
    "ws_client_frame",
    "chatkit_request",
    "agui_input",
    "upstream_chunks",
    "mcp_result",
];
/// Five targets at 16 s: the 80 s the four targets of the first version took at 20 s.
const SECONDS_EACH: u32 = 16;

fn cargo_fuzz(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .arg("fuzz");
    cmd
}

#[test]
fn every_fuzz_target_runs_clean_for_a_while() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let setup = Command::new("bash")
        .arg(root.join("tests/fuzz/setup.sh"))
        .output()
        .expect("run tests/fuzz/setup.sh");
    assert!(
        setup.status.success(),
        "tests/fuzz/setup.sh failed:\n{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let t0 = Instant::now();
    let build = cargo_fuzz(root)
        .args(["build", "--dev"])
        .output()
        .expect("cargo fuzz build");
    assert!(
        build.status.success(),
        "cargo fuzz build failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    eprintln!("fuzz: built in {:.0} s", t0.elapsed().as_secs_f64());
    for target in TARGETS {
        let scratch = tempfile::tempdir().expect("scratch corpus");
        let t = Instant::now();
        let mut run = cargo_fuzz(root);
        run.args(["run", "--dev", target])
            .arg(scratch.path())
            .arg(root.join("fuzz/corpus").join(target));
        // Past crashes start the run too, so they are checked under the sanitizer as well.
        let past = root.join("fuzz/regressions").join(target);
        if past.is_dir() {
            run.arg(past);
        }
        let out = run
            .args(["--", &format!("-max_total_time={SECONDS_EACH}")])
            .output()
            .expect("cargo fuzz run");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "fuzz target {target} failed (the input is under fuzz/artifacts/{target}/; \
             copy it to fuzz/regressions/{target}/):\n{}",
            tail(&log, 4000)
        );
        // libFuzzer's last words: `Done 123456 runs in 16 second(s)`.
        let execs: u64 = log
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("Done "))
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no run count from {target}:\n{}", tail(&log, 4000)));
        assert!(execs > 0, "{target} ran no input");
        eprintln!(
            "fuzz: {target}: {execs} runs in {:.0} s, clean",
            t.elapsed().as_secs_f64()
        );
    }
}

/// The last `n` bytes of a log, or a little more, cut at a character boundary.
fn tail(log: &str, n: usize) -> &str {
    let mut at = log.len().saturating_sub(n);
    while !log.is_char_boundary(at) {
        at -= 1;
    }
    &log[at..]
}
