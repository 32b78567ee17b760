//! Tool names as the model sees them: `NAME__TOOL`, kept within the function-name rule
//! (`[A-Za-z0-9_-]{1,64}`), and the `NAME=URL` flag that names a server.

use crate::tools::{valid_name, MAX_TOOL_NAME};

/// Between the server's NAME and the tool's own name in an offered name.
pub const SEPARATOR: &str = "__";

/// Longest server NAME: leaves at least 30 characters of every offered name to the tool.
pub const MAX_SERVER_NAME: usize = 32;

/// Hex digits of the hash that ends a name which had to be cut.
const HASH_DIGITS: usize = 8;

/// One `--mcp-server NAME=URL`, checked: NAME is `[A-Za-z0-9_-]{1,32}` without `__` (so the
/// server of an offered name is never ambiguous), URL is http or https.
pub fn parse_server(flag: &str) -> anyhow::Result<(String, String)> {
    let (name, url) = flag
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--mcp-server {flag}: expected NAME=URL"))?;
    let (name, url) = (name.trim(), url.trim());
    if !valid_name(name) || name.len() > MAX_SERVER_NAME || name.contains(SEPARATOR) {
        anyhow::bail!(
            "--mcp-server {name}=…: NAME must be 1 to {MAX_SERVER_NAME} of [A-Za-z0-9_-], without `{SEPARATOR}`"
        );
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        anyhow::bail!("--mcp-server {name}=…: URL must start with http:// or https://");
    }
    Ok((name.to_owned(), url.to_owned()))
}

/// The name the model is offered for tool `tool` of server `server`: `server__tool`.
///
/// MCP lets a server name its tools more freely than a model's function names allow (dots,
/// slashes, other characters, up to 128 of them). Such a tool is still offered, under a name
/// that keeps to the rule, and calls map back to its real name (the catalog keeps the pair):
/// - every character outside `[A-Za-z0-9_-]` becomes `_`;
/// - a name still longer than 64 characters is cut and ends with `_` and 8 hex digits of a
///   hash (FNV-1a) of the tool's real name, so two long names that share a beginning stay
///   apart and a tool keeps its offered name across restarts (stored tool items name it).
///
/// A tool with an empty name gives `None` and is not offered. Two tools that still end up
/// with the same offered name are the catalog's concern (the later one is left out).
pub fn offered_name(server: &str, tool: &str) -> Option<String> {
    if tool.is_empty() {
        return None;
    }
    let clean: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("{server}{SEPARATOR}{clean}");
    if name.len() > MAX_TOOL_NAME {
        // All ASCII now, so any byte index is a character boundary.
        name.truncate(MAX_TOOL_NAME - HASH_DIGITS - 1);
        name.push('_');
        name.push_str(&format!("{:08x}", fnv1a(tool.as_bytes())));
    }
    debug_assert!(valid_name(&name), "{name}");
    Some(name)
}

/// 32-bit FNV-1a: a stable hash (std's hashers may change between Rust releases).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_tool_is_server_then_tool() {
        assert_eq!(
            offered_name("fs", "read_file").as_deref(),
            Some("fs__read_file")
        );
        assert_eq!(offered_name("fs", ""), None);
    }

    #[test]
    fn characters_outside_the_rule_become_underscores() {
        assert_eq!(
            offered_name("gh", "repos.list/all é").as_deref(),
            Some("gh__repos_list_all__")
        );
    }

    #[test]
    fn long_names_are_cut_with_a_stable_hash_that_keeps_them_apart() {
        let long_a = format!("{}_a", "x".repeat(100));
        let long_b = format!("{}_b", "x".repeat(100));
        let a = offered_name("server", &long_a).unwrap();
        let b = offered_name("server", &long_b).unwrap();
        assert_eq!(a.len(), MAX_TOOL_NAME);
        assert!(valid_name(&a) && valid_name(&b));
        assert_ne!(a, b);
        assert_eq!(a, offered_name("server", &long_a).unwrap());
        assert!(a.starts_with("server__xxxx"), "{a}");
        // A name of exactly 64 characters is kept whole.
        let fits = "y".repeat(MAX_TOOL_NAME - "server__".len());
        assert_eq!(
            offered_name("server", &fits).unwrap(),
            format!("server__{fits}")
        );
    }

    #[test]
    fn server_flags_are_checked() {
        assert_eq!(
            parse_server("docs=http://127.0.0.1:9/mcp").unwrap(),
            ("docs".into(), "http://127.0.0.1:9/mcp".into())
        );
        assert!(parse_server("docs").is_err());
        assert!(parse_server("a__b=http://x/mcp").is_err());
        assert!(parse_server("has space=http://x/mcp").is_err());
        assert!(parse_server(&format!("{}=http://x/mcp", "n".repeat(33))).is_err());
        assert!(parse_server("docs=ftp://x").is_err());
    }
}
