//! `--chatkit-client-tools FILE`: the client tools every ChatKit run may call. ChatKit's front
//! end declares no tools of its own, so the hub's operator lists them (`[{name, description,
//! parameters}]`). Read once at start-up; a bad file stops the hub with a message naming it.

use std::path::Path;

use anyhow::Context;

use crate::domain::ToolSpec;
use crate::session::SendRequest;

/// Read and check the file: the same rules as a native `send.tools` (names, uniqueness, JSON
/// Schema objects, counts and sizes), so every run that offers them is a valid send.
pub fn load(path: &Path) -> anyhow::Result<Vec<ToolSpec>> {
    let what = || format!("--chatkit-client-tools {}", path.display());
    let text = std::fs::read(path).with_context(what)?;
    let tools: Vec<ToolSpec> = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{}: not a JSON list of {{name, description, parameters}}",
            what()
        )
    })?;
    // A probe send carries the checks, so the rules live in one place.
    SendRequest::new("probe", "", None, 0)
        .and_then(|r| r.with_tools(tools.clone()))
        .map_err(|e| anyhow::anyhow!("{}: {e}", what()))?;
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), text).expect("write");
        f
    }

    #[test]
    fn a_good_file_gives_its_tools() {
        let f = file(
            r#"[{"name":"get_location","description":"Where","parameters":{"type":"object"}}]"#,
        );
        let tools = load(f.path()).expect("loads");
        assert_eq!(tools[0].name, "get_location");
    }

    #[test]
    fn a_bad_file_says_which_and_why() {
        for (text, why) in [
            ("{", "not a JSON list"),
            (r#"{"name":"x"}"#, "not a JSON list"),
            (
                r#"[{"name":"has space","parameters":{}}]"#,
                "tool name `has space`",
            ),
            (
                r#"[{"name":"a","parameters":{}},{"name":"a","parameters":{}}]"#,
                "declared twice",
            ),
            (
                r#"[{"name":"a","parameters":"string"}]"#,
                "JSON Schema object",
            ),
        ] {
            let f = file(text);
            let e = format!("{:#}", load(f.path()).expect_err(text));
            assert!(
                e.contains("--chatkit-client-tools") && e.contains(why),
                "{text}: {e}"
            );
        }
        let e = format!(
            "{:#}",
            load(Path::new("/nonexistent/tools.json")).expect_err("missing")
        );
        assert!(e.contains("/nonexistent/tools.json"), "{e}");
    }
}
