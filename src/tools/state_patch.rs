//! The built-in server tool `state__patch` (PROTOCOL 1.2, shared state): the model changes the
//! session's shared state document with an RFC 6902 JSON Patch. It runs in-process (the
//! session applies it to the document it owns), but it is offered, called and answered like
//! any server tool, so its calls are tool items with the usual lifecycle. Patching is the
//! `json-patch` crate's; this module only checks shapes and words the results.

use serde_json::{json, Value};

use crate::domain::ToolSpec;

/// The tool's name, as the model sees it (no MCP server name has two underscores in a row
/// before `patch`; a client tool may not take it).
pub const NAME: &str = "state__patch";

/// Whether `name` is the built-in state tool.
pub fn is_state_tool(name: &str) -> bool {
    name == NAME
}

/// What the model is offered when its session has a state document: the description carries
/// the document as it is now, so every model turn sees what it would patch.
pub fn spec(doc: &Value, version: u64) -> ToolSpec {
    ToolSpec {
        name: NAME.into(),
        description: Some(format!(
            "Change the shared state document of this conversation (the state the user's \
             application shows) with an RFC 6902 JSON Patch. The patch applies as a whole or \
             not at all. The current document (version {version}) is: {doc}"
        )),
        parameters: json!({
            "type": "object",
            "properties": {
                "patch": {
                    "type": "array",
                    "description": "RFC 6902 operations, e.g. [{\"op\":\"replace\",\"path\":\"/count\",\"value\":2}]",
                    "items": {
                        "type": "object",
                        "properties": {
                            "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
                            "path": {"type": "string"},
                            "from": {"type": "string"},
                            "value": {}
                        },
                        "required": ["op", "path"]
                    }
                }
            },
            "required": ["patch"]
        }),
    }
}

/// The `patch` of the tool's arguments (JSON text `{"patch":[...]}`).
pub fn patch_from_arguments(arguments: &str) -> Result<Value, String> {
    let v: Value =
        serde_json::from_str(arguments).map_err(|e| format!("the arguments are not JSON: {e}"))?;
    match v {
        Value::Object(mut m) => m
            .remove("patch")
            .ok_or_else(|| "the arguments have no `patch`".to_owned()),
        _ => Err("the arguments must be an object `{\"patch\":[...]}`".into()),
    }
}

/// `patch` (an array of RFC 6902 operations) applied to a copy of `doc`: the new document, or
/// why the patch is malformed or does not apply (then nothing changed).
pub fn apply(doc: &Value, patch: &Value) -> Result<Value, String> {
    let ops = parse(patch)?;
    let mut new = doc.clone();
    json_patch::patch(&mut new, &ops.0).map_err(|e| format!("the patch does not apply: {e}"))?;
    Ok(new)
}

/// `patch` as RFC 6902 operations, or why it is not a JSON Patch.
pub fn parse(patch: &Value) -> Result<json_patch::Patch, String> {
    if !patch.is_array() {
        return Err("a patch must be an array of RFC 6902 operations".into());
    }
    serde_json::from_value(patch.clone()).map_err(|e| format!("not a JSON Patch: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_whole_patches_and_refuses_bad_ones() {
        let doc = json!({"count": 1, "items": ["a"]});
        let p = json!([{"op":"replace","path":"/count","value":2},{"op":"add","path":"/items/-","value":"b"}]);
        assert_eq!(
            apply(&doc, &p).unwrap(),
            json!({"count": 2, "items": ["a", "b"]})
        );
        // The second operation fails: nothing of the first survives (the result is an error).
        let p = json!([{"op":"replace","path":"/count","value":2},{"op":"remove","path":"/nope"}]);
        let e = apply(&doc, &p).unwrap_err();
        assert!(e.contains("does not apply"), "{e}");
        assert!(apply(&doc, &json!({"op": "add"})).is_err());
        assert!(apply(&doc, &json!([{"op": "frobnicate", "path": "/a"}])).is_err());
        assert_eq!(patch_from_arguments(r#"{"patch":[]}"#).unwrap(), json!([]));
        assert!(patch_from_arguments("[]").is_err());
        assert!(patch_from_arguments("{").is_err());
    }
}
