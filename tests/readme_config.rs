//! The README's configuration table lists every flag of `sessionhub --help` with its
//! environment variable, so the table cannot silently fall behind the code.

use std::process::Command;

#[test]
fn readme_config_table_covers_every_flag() {
    let help = Command::new(env!("CARGO_BIN_EXE_sessionhub"))
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).expect("utf-8 help");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut checked = 0;
    for block in help.split("\n      --").skip(1) {
        // A boolean shows as `--flag[=<FLAG>]`: its row names `--flag`.
        let flag = block.split([' ', '\n', '[']).next().unwrap();
        if flag == "help" || flag == "version" {
            continue;
        }
        let env = block
            .split("[env: ")
            .nth(1)
            .map(|rest| rest.split(['=', ']']).next().unwrap().to_owned());
        let env = env.unwrap_or_else(|| panic!("--{flag} has no environment variable"));
        let row = format!("| `--{flag}` | `{env}` |");
        assert!(
            readme.contains(&row),
            "README.md configuration table lacks the row for --{flag} ({env})"
        );
        checked += 1;
    }
    assert!(checked > 20, "parsed {checked} flags from --help");
}
