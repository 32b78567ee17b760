//! `POST /agui` bad input: each malformed request gets an HTTP error with our JSON body and a
//! stable code, before any stream starts, and changes nothing (no session, no item).

use crate::agui;
use crate::support;

use serde_json::{json, Value};
use support::{http, TestHub};

use agui::{input, user};

struct Row {
    name: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// A piece of the message that tells the client what to fix.
    says: &'static str,
}

fn row(name: &'static str, body: Value, says: &'static str) -> Row {
    Row {
        name,
        body: body.to_string().into_bytes(),
        status: 400,
        code: "bad_request",
        says,
    }
}

fn with(mut v: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    f(v.as_object_mut().expect("object"));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let hub = TestHub::start_with(|c| {
        c.max_text_chars = 100;
        c.max_body_bytes = 4096;
    })
    .await;
    let url = hub.url("/agui");
    // One thread with one answered message, to check that refusals leave it alone.
    // One client for the whole table (building one per request costs more than the requests).
    let client = http();
    let mut first = agui::AguiStream::open(
        &client,
        &url,
        &input("t-existing", "r0", json!([user("u1", "hello")])),
    )
    .await;
    assert_eq!(
        first.rest().await.last().expect("events")["type"],
        "RUN_FINISHED"
    );
    let get = |path: &str| {
        let req = client.get(hub.url(path));
        async move {
            req.send()
                .await
                .expect("GET")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let sessions_before = get("/v1/sessions").await;
    let items_before = get("/v1/sessions/t-existing/items").await;
    assert_eq!(items_before["items"].as_array().map(Vec::len), Some(2));

    let fresh = input("t-new", "r1", json!([user("m1", "hi")]));
    let msg = |m: Value| input("t-new", "r1", json!([m]));
    let rows = vec![
        Row { name: "malformed JSON", body: b"{\"threadId\":".to_vec(), status: 400, code: "bad_request", says: "malformed JSON" },
        row("not an object", json!([fresh.clone()]), "JSON object"),
        row("missing threadId", with(fresh.clone(), |m| drop(m.remove("threadId"))), "missing `threadId`"),
        row("missing runId", with(fresh.clone(), |m| drop(m.remove("runId"))), "missing `runId`"),
        row("threadId not a string", with(fresh.clone(), |m| drop(m.insert("threadId".into(), json!(42)))), "`threadId` must be a string"),
        row("threadId with a slash", with(fresh.clone(), |m| drop(m.insert("threadId".into(), json!("a/b")))), "letters, digits"),
        row("empty runId", with(fresh.clone(), |m| drop(m.insert("runId".into(), json!("")))), "`runId` must be 1 to"),
        row("missing messages", with(fresh.clone(), |m| drop(m.remove("messages"))), "missing `messages`"),
        row("messages not an array", with(fresh.clone(), |m| drop(m.insert("messages".into(), json!({})))), "`messages` must be an array"),
        row("tools not an array", with(fresh.clone(), |m| drop(m.insert("tools".into(), json!("x")))), "`tools` must be an array"),
        row("message not an object", msg(json!("hi")), "`messages[0]` must be an object"),
        row("message without id", msg(json!({"role": "user", "content": "hi"})), "missing `messages[0].id`"),
        row("message without role", msg(json!({"id": "m1", "content": "hi"})), "missing `messages[0].role`"),
        row("user content a number", msg(json!({"id": "m1", "role": "user", "content": 7})), "string or an array of content parts"),
        row(
            "user content an image",
            msg(json!({"id": "m1", "role": "user", "content": [{"type": "image", "source": {"type": "url", "value": "x"}}]})),
            "only text content",
        ),
        row("system content not a string", msg(json!({"id": "s1", "role": "system", "content": ["x"]})), "`messages[0].content` must be a string"),
        row("tool message without toolCallId", msg(json!({"id": "t1", "role": "tool", "content": "42"})), "missing `messages[0].toolCallId`"),
        row("a repeated message id", input("t-new", "r1", json!([user("m1", "a"), user("m1", "b")])), "repeats an earlier message id"),
        row("no user message", msg(json!({"id": "s1", "role": "system", "content": "be brief"})), "no user message"),
        row("nothing new on a thread", input("t-existing", "r2", json!([user("u1", "hello")])), "already answered"),
        row("a message id reused with other text", input("t-existing", "r3", json!([user("u1", "changed")])), "different text"),
        Row {
            name: "text over the limit",
            body: input("t-new", "r1", json!([user("m1", &"x".repeat(101))])).to_string().into_bytes(),
            status: 413,
            code: "too_large",
            says: "longer than 100 characters",
        },
        Row {
            name: "body over the limit",
            body: input("t-new", "r1", json!([user("m1", "hi"), {"id": "s", "role": "system", "content": "y".repeat(5000)}])).to_string().into_bytes(),
            status: 413,
            code: "too_large",
            says: "too large",
        },
    ];

    let mut failures = Vec::new();
    for r in &rows {
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(r.body.clone())
            .send()
            .await
            .expect("POST /agui");
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let ok = status == r.status
            && ctype.starts_with("application/json")
            && body["error"]["code"] == r.code
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(r.says));
        if !ok {
            failures.push(format!(
                "{}: expected {} {} ({:?}), got {status} {ctype} {body}",
                r.name, r.status, r.code, r.says
            ));
        }
        // Nothing changed: no new session, no new item.
        let sessions = get("/v1/sessions").await;
        if sessions != sessions_before {
            failures.push(format!("{}: sessions changed: {sessions:?}", r.name));
        }
        if get("/v1/sessions/t-existing/items").await != items_before {
            failures.push(format!("{}: the existing thread changed", r.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    let (status, _) = hub.get_json("/v1/sessions/t-new").await;
    assert_eq!(status, 404, "a refused first request left a thread behind");
}
