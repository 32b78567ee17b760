//! Between the model's text and MCP's JSON: the model's arguments parsed into a `tools/call`
//! argument object, and a `CallToolResult` rendered as the text the model is given.

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, ResourceContents};
use serde_json::Value;

use crate::tools::ToolError;

/// The model's arguments (JSON text) as MCP's argument object. Empty text and `null` mean no
/// arguments (models write either for a tool without parameters); anything but an object is
/// refused with a message the model can act on.
pub(super) fn arguments(text: &str) -> Result<Option<JsonObject>, ToolError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ToolError::Failed(format!("the arguments are not valid JSON ({e})")))?;
    match value {
        Value::Object(map) => Ok(Some(map)),
        Value::Null => Ok(None),
        other => Err(ToolError::Failed(format!(
            "the arguments must be a JSON object, not {}",
            kind(&other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The tool's output for the model: `Ok(text)`, or `Failed(text)` when the server set
/// `isError`.
pub(super) fn result(result: CallToolResult) -> Result<String, ToolError> {
    let text = text(&result);
    if result.is_error == Some(true) {
        let text = if text.is_empty() {
            "the tool reported an error".to_owned()
        } else {
            text
        };
        return Err(ToolError::Failed(text));
    }
    Ok(text)
}

/// Content blocks as text, one per line: text parts as they are, others described briefly
/// (the model cannot use base64 bytes). Structured content is rendered as JSON only when
/// there are no content blocks: the spec asks a server that returns structured content to
/// put the same JSON in a text block too, so rendering both would say it twice.
fn text(result: &CallToolResult) -> String {
    if result.content.is_empty() {
        return match &result.structured_content {
            Some(v) => v.to_string(),
            None => String::new(),
        };
    }
    let parts: Vec<String> = result.content.iter().map(block).collect();
    parts.join("\n")
}

fn block(b: &ContentBlock) -> String {
    match b {
        ContentBlock::Text(t) => t.text.clone(),
        ContentBlock::Image(i) => format!("[image: {}, {}]", i.mime_type, size(&i.data)),
        ContentBlock::Audio(a) => format!("[audio: {}, {}]", a.mime_type, size(&a.data)),
        ContentBlock::Resource(r) => match &r.resource {
            ResourceContents::TextResourceContents { uri, text, .. } => {
                format!("[resource {uri}]\n{text}")
            }
            ResourceContents::BlobResourceContents {
                uri,
                mime_type,
                blob,
                ..
            } => format!(
                "[resource {uri}: {}, {}]",
                mime_type.as_deref().unwrap_or("binary"),
                size(blob)
            ),
            #[allow(unreachable_patterns)]
            _ => "[resource]".to_owned(),
        },
        ContentBlock::ResourceLink(l) => format!("[resource link: {} ({})]", l.uri, l.name),
        #[allow(unreachable_patterns)]
        _ => "[content of a type this hub does not show]".to_owned(),
    }
}

/// The decoded size of base64 `data`, in words.
fn size(data: &str) -> String {
    let padding = data.bytes().rev().take_while(|&b| b == b'=').count();
    let bytes = (data.len() / 4 * 3).saturating_sub(padding);
    format!("{bytes} bytes")
}

/// For the fuzz target `mcp_result`: the bytes as a server's `tools/call` result (decoded as
/// rmcp decodes it into a `CallToolResult`, then rendered by [`result`]) and as the model's
/// arguments text ([`arguments`]). Returns what the model would be told, and the arguments.
pub(crate) fn replay(data: &[u8]) -> String {
    let rendered = match serde_json::from_slice::<CallToolResult>(data) {
        Ok(r) => format!("{:?}", result(r)),
        Err(e) => format!("not a CallToolResult: {e}"),
    };
    let args = match std::str::from_utf8(data) {
        Ok(text) => format!("{:?}", arguments(text)),
        Err(_) => String::new(),
    };
    format!("{rendered}\n{args}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(v: Value) -> CallToolResult {
        serde_json::from_value(v).expect("a CallToolResult")
    }

    #[test]
    fn arguments_are_an_object_or_nothing() {
        assert_eq!(arguments("").unwrap(), None);
        assert_eq!(arguments("null").unwrap(), None);
        let args = arguments(r#"{"a":1}"#).unwrap().unwrap();
        assert_eq!(args["a"], 1);
        let Err(ToolError::Failed(m)) = arguments("{\"a\":") else {
            panic!("invalid JSON must fail")
        };
        assert!(m.starts_with("the arguments are not valid JSON"), "{m}");
        let Err(ToolError::Failed(m)) = arguments("[1]") else {
            panic!("an array must fail")
        };
        assert_eq!(m, "the arguments must be a JSON object, not an array");
    }

    #[test]
    fn text_parts_are_joined_and_other_content_described() {
        let r = parsed(json!({"content": [
            {"type": "text", "text": "a red pixel"},
            {"type": "image", "mimeType": "image/png", "data": "iVBORw0KGgo="},
            {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "hello"}},
            {"type": "resource_link", "uri": "file:///b.bin", "name": "b"}
        ]}));
        assert_eq!(
            result(r).unwrap(),
            "a red pixel\n[image: image/png, 8 bytes]\n[resource file:///a.txt]\nhello\n[resource link: file:///b.bin (b)]"
        );
    }

    #[test]
    fn structured_content_shows_when_there_is_no_content() {
        let r = parsed(json!({"content": [], "structuredContent": {"result": 42}}));
        assert_eq!(result(r).unwrap(), r#"{"result":42}"#);
        let r = parsed(json!({"content": [{"type": "text", "text": "42"}],
                              "structuredContent": {"result": 42}}));
        assert_eq!(result(r).unwrap(), "42");
    }

    #[test]
    fn is_error_fails_with_the_text() {
        let r = parsed(json!({"content": [{"type": "text", "text": "boom"}], "isError": true}));
        assert_eq!(result(r), Err(ToolError::Failed("boom".into())));
        let r = parsed(json!({"content": [], "isError": true}));
        assert_eq!(
            result(r),
            Err(ToolError::Failed("the tool reported an error".into()))
        );
    }
}
