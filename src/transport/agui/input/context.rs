//! What a `RunAgentInput` tells the model besides its messages (PROTOCOL 1.2): `context`
//! entries, `forwardedProps`, and the model a run picks (`forwardedProps.model`).

use serde_json::{Map, Value};

use super::bad;
use crate::error::HubError;

/// `context`: `[{description, value}]` (missing or null: none). Each entry must be an object
/// with a string `description` and a `value`.
pub(super) fn entries(m: &Map<String, Value>) -> Result<Vec<Value>, HubError> {
    let list = match m.get("context") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("`context` must be an array")),
    };
    for (i, entry) in list.iter().enumerate() {
        let ok =
            entry.get("description").is_some_and(Value::is_string) && entry.get("value").is_some();
        if !ok {
            return Err(bad(format!(
                "`context[{i}]` must be an object with a string `description` and a `value`"
            )));
        }
    }
    Ok(list.clone())
}

/// `forwardedProps` (missing or null: none) without its `model`, and that `model`: a string
/// naming the model the run's messages pick.
pub(super) fn forwarded_props(
    m: &Map<String, Value>,
) -> Result<(Map<String, Value>, Option<String>), HubError> {
    let mut props = match m.get("forwardedProps") {
        None | Some(Value::Null) => return Ok((Map::new(), None)),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => return Err(bad("`forwardedProps` must be an object")),
    };
    let model = match props.remove("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad("`forwardedProps.model` must be a string")),
    };
    Ok((props, model))
}
