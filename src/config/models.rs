//! The model flags (PROTOCOL 1.2, "Model choice"): `--models FILE` maps model ids to an
//! OpenAI-compatible server each, `--model` names the default, `--context-claims` names the
//! token claims given to the model as the caller's identity. The file is read once, here, with
//! the keys it names (the one place those variables are read).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use super::Secret;

/// The models file, as written: `[models.<id>]` tables in TOML, `{"models": {<id>: {...}}}`
/// in JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsFile {
    models: BTreeMap<String, ModelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    base_url: String,
    upstream_model: String,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    max_output_tokens: Option<u32>,
}

/// One model a message may pick, resolved at start-up.
#[derive(Clone)]
pub struct ModelConfig {
    /// What clients name (`send.model`, `inference_options.model`, `forwardedProps.model`).
    pub id: String,
    /// Base URL of its OpenAI-compatible API, up to `/v1`.
    pub base_url: String,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// The key read from the variable `api_key_env` names; `None` for a server that needs none.
    pub api_key: Option<Secret>,
    /// `max_tokens` sent with every request to this model.
    pub max_output_tokens: Option<u32>,
}

impl std::fmt::Debug for ModelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelConfig")
            .field("id", &self.id)
            .field("base_url", &self.base_url)
            .field("upstream_model", &self.upstream_model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("max_output_tokens", &self.max_output_tokens)
            .finish()
    }
}

/// Longest model id, and the characters it may hold.
const MAX_ID: usize = 128;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

/// Read the models file at `path` (TOML for `.toml`, JSON for `.json`), reading each entry's
/// key from the variable it names. Every problem is a clear start-up error.
pub fn load_models(path: &Path) -> anyhow::Result<Vec<ModelConfig>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the models file {}", path.display()))?;
    let file: ModelsFile = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text)
            .with_context(|| format!("{} is not a valid models file", path.display()))?,
        Some("json") => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid models file", path.display()))?,
        _ => bail!(
            "--models {}: the file name must end in .toml or .json",
            path.display()
        ),
    };
    if file.models.is_empty() {
        bail!("--models {}: the file names no model", path.display());
    }
    file.models
        .into_iter()
        .map(|(id, e)| {
            if !valid_id(&id) {
                bail!("model id {id:?} must be 1 to {MAX_ID} of A-Z a-z 0-9 - _ . : /");
            }
            if e.upstream_model.trim().is_empty() {
                bail!("model {id:?}: `upstream_model` must not be empty");
            }
            let api_key = match &e.api_key_env {
                None => None,
                Some(var) => match std::env::var(var) {
                    Ok(v) if !v.trim().is_empty() => Some(Secret::from(v.as_str())),
                    _ => bail!("model {id:?}: its key variable {var} is not set"),
                },
            };
            Ok(ModelConfig {
                id,
                base_url: e.base_url,
                upstream_model: e.upstream_model,
                api_key,
                max_output_tokens: e.max_output_tokens,
            })
        })
        .collect()
}

/// The model flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelsConfig {
    /// A file (TOML or JSON, by extension) mapping model ids to OpenAI-compatible servers:
    /// base URL, upstream model name, the variable holding its key, limits. `--model` then
    /// names the default id. Without it, the single `--openai-*` model serves every message.
    #[arg(long = "models", env = "SESSIONHUB_MODELS")]
    pub models_file: Option<PathBuf>,
    /// Token claims given to the model as the caller's identity, next to `sub`
    /// (comma-separated claim names; with authentication only).
    #[arg(long, env = "SESSIONHUB_CONTEXT_CLAIMS", value_delimiter = ',')]
    pub context_claims: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn toml_and_json_files_give_the_same_models() {
        let (_d, t) = write(
            "m.toml",
            "[models.fast]\nbase_url = \"http://127.0.0.1:1/v1\"\nupstream_model = \"small\"\nmax_output_tokens = 64\n",
        );
        let (_e, j) = write(
            "m.json",
            r#"{"models":{"fast":{"base_url":"http://127.0.0.1:1/v1","upstream_model":"small","max_output_tokens":64}}}"#,
        );
        for path in [t, j] {
            let m = load_models(&path).unwrap();
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].id, "fast");
            assert_eq!(m[0].upstream_model, "small");
            assert_eq!(m[0].max_output_tokens, Some(64));
            assert!(m[0].api_key.is_none());
        }
    }

    #[test]
    fn bad_files_are_clear_start_up_errors() {
        let cases = [
            ("m.yaml", "models: {}", "must end in .toml or .json"),
            ("m.toml", "[models]\n", "names no model"),
            ("m.toml", "[models.a]\nbase_url = \"x\"\n", "not a valid models file"),
            (
                "m.toml",
                "[models.a]\nbase_url = \"x\"\nupstream_model = \"y\"\ncolour = 1\n",
                "not a valid models file",
            ),
            (
                "m.toml",
                "[models.a]\nbase_url = \"x\"\nupstream_model = \"y\"\napi_key_env = \"SESSIONHUB_TEST_UNSET_KEY_VAR\"\n",
                "SESSIONHUB_TEST_UNSET_KEY_VAR is not set",
            ),
            (
                "m.toml",
                "[models.\"a b\"]\nbase_url = \"x\"\nupstream_model = \"y\"\n",
                "must be 1 to",
            ),
        ];
        for (name, text, want) in cases {
            let (_d, p) = write(name, text);
            let err = format!("{:#}", load_models(&p).unwrap_err());
            assert!(err.contains(want), "{name} {text:?}: {err}");
        }
    }
}
