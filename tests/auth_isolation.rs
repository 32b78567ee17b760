//! Issue 8, "what must be shown" 2: isolation. A property test over random (user, session,
//! operation) triples across every transport (REST, native SSE, WebSocket, ChatKit, AG-UI):
//! user A never receives a byte of B's sessions, cannot change, cancel or read them, and B's
//! ids answer exactly as a made-up id does (`not_found`). Plus: a foreign cancel never stops a
//! run, and deleting a session closes its subscriptions.

use crate::auth_support;
use crate::support;

use auth_support::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{json, Value};
use support::{TestHub, WsClient};

const USERS: [&str; 3] = ["alice", "bob", "carol"];
const OPS: [&str; 21] = [
    "rest.get",
    "rest.patch",
    "rest.delete",
    "rest.items",
    "rest.list_before",
    "sse.events",
    "sse.send",
    "sse.cancel",
    "ws.subscribe",
    "ws.resume",
    "ws.send",
    "ws.cancel",
    "ws.unsubscribe",
    "ck.get",
    "ck.items",
    "ck.add",
    "ck.update",
    "ck.delete",
    "ck.retry",
    "ck.feedback",
    "agui.run",
];

/// One user's view: token, sessions (with a secret marker message each) and a WebSocket.
struct User {
    token: String,
    sessions: Vec<String>,
    /// Ids of every item and run in this user's sessions: none may reach anyone else.
    secrets: Vec<String>,
    /// The user's own tab, subscribed to nothing: used for A-side WebSocket operations.
    ws: tokio::sync::Mutex<WsClient>,
    /// Subscribed to all of the user's sessions: any event there after set-up is a change.
    watcher: tokio::sync::Mutex<WsClient>,
}

struct World {
    hub: TestHub,
    users: Vec<User>,
}

/// What an operation answered, as text: HTTP status and body, or the WebSocket reply frame.
type Answer = (u16, String);

fn ck_input(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

impl World {
    async fn setup() -> World {
        let hub = start(|c| c.http_rate_per_sec = 0).await;
        let mut users = Vec::new();
        for name in USERS {
            let token = token(name);
            let mut watcher = ws_as(&hub, &token).await;
            let mut sessions = Vec::new();
            for n in 0..2 {
                let s = create_session(&hub, &token).await;
                watcher.join(&s).await;
                watcher
                    .say(&s, &format!("m{n}"), &format!("SECRET-{name}-{n}"))
                    .await;
                watcher
                    .recv_until(|v| v["type"] == "run.completed" && v["session"] == s.as_str())
                    .await;
                sessions.push(s);
            }
            let mut secrets = Vec::new();
            for s in &sessions {
                for item in call(
                    &hub,
                    "GET",
                    &format!("/v1/sessions/{s}/items"),
                    Some(&token),
                    None,
                    None,
                )
                .await
                .1["items"]
                    .as_array()
                    .expect("items")
                {
                    secrets.push(item["id"].as_str().expect("id").to_owned());
                    if let Some(r) = item["run_id"].as_str() {
                        secrets.push(r.to_owned());
                    }
                }
            }
            let ws = tokio::sync::Mutex::new(ws_as(&hub, &token).await);
            users.push(User {
                token,
                sessions,
                secrets,
                ws,
                watcher: tokio::sync::Mutex::new(watcher),
            });
        }
        World { hub, users }
    }

    /// Run `op` as `actor` on session `s` (WebSocket ops on `tab`); `item` is an item id for
    /// the ops that name one.
    async fn op(
        &self,
        actor: usize,
        op: &str,
        s: &str,
        item: &str,
        tab: &tokio::sync::Mutex<WsClient>,
    ) -> Answer {
        let u = &self.users[actor];
        let t = Some(u.token.as_str());
        let hub = &self.hub;
        let post = |path: String, body: Value| async move {
            call_raw(hub, "POST", &path, t, None, Some(&body)).await
        };
        let ck = |body: Value| post("/chatkit".into(), body);
        match op {
            "rest.get" => call_raw(hub, "GET", &format!("/v1/sessions/{s}"), t, None, None).await,
            "rest.patch" => call_raw(hub, "PATCH", &format!("/v1/sessions/{s}"), t, None, Some(&json!({"title": "mine now"}))).await,
            "rest.delete" => call_raw(hub, "DELETE", &format!("/v1/sessions/{s}"), t, None, None).await,
            "rest.items" => call_raw(hub, "GET", &format!("/v1/sessions/{s}/items"), t, None, None).await,
            "rest.list_before" => call_raw(hub, "GET", &format!("/v1/sessions?before={s}"), t, None, None).await,
            "sse.events" => call_raw(hub, "GET", &format!("/v1/sessions/{s}/events"), t, None, None).await,
            "sse.send" => post(format!("/v1/sessions/{s}/messages"), json!({"client_msg_id": "x-1", "text": "hello"})).await,
            "sse.cancel" => post(format!("/v1/sessions/{s}/cancel"), json!({})).await,
            "ck.get" => ck(json!({"type": "threads.get_by_id", "params": {"thread_id": s}})).await,
            "ck.items" => ck(json!({"type": "items.list", "params": {"thread_id": s}})).await,
            "ck.add" => ck(json!({"type": "threads.add_user_message", "params": {"thread_id": s, "input": ck_input("hello")}})).await,
            "ck.update" => ck(json!({"type": "threads.update", "params": {"thread_id": s, "title": "mine now"}})).await,
            "ck.delete" => ck(json!({"type": "threads.delete", "params": {"thread_id": s}})).await,
            "ck.retry" => ck(json!({"type": "threads.retry_after_item", "params": {"thread_id": s, "item_id": item}})).await,
            "ck.feedback" => ck(json!({"type": "items.feedback", "params": {"thread_id": s, "item_ids": [item], "kind": "negative"}})).await,
            "agui.run" => {
                let body = json!({"threadId": s, "runId": "r-1", "state": {}, "messages": [{"id": "a-1", "role": "user", "content": "hello"}], "tools": [], "context": [], "forwardedProps": {}});
                post("/agui".into(), body).await
            }
            ws_op => {
                // One request at a time per tab (the lock), so a fixed `ref` is unambiguous and
                // answers compare equal across ids.
                let r = "op";
                let frame = match ws_op {
                    "ws.subscribe" => json!({"type": "subscribe", "session": s}),
                    "ws.resume" => json!({"type": "subscribe", "session": s, "since": {"epoch": "0000000000000000", "seq": 1}}),
                    "ws.send" => json!({"type": "send", "session": s, "client_msg_id": "x-1", "text": "hello"}),
                    "ws.cancel" => json!({"type": "cancel", "session": s}),
                    "ws.unsubscribe" => json!({"type": "unsubscribe", "session": s}),
                    other => panic!("unknown op {other}"),
                };
                let mut frame = frame;
                frame["ref"] = json!(r);
                let mut ws = tab.lock().await;
                ws.send(frame).await;
                let frames = ws.recv_until(|v| v["ref"] == r).await;
                let reply = frames.last().cloned().expect("reply");
                // Anything before the reply would be a stray frame on a tab subscribed to nothing.
                let status = if frames.len() == 1 { 200 } else { 599 };
                (status, Value::Array(frames).to_string() + &reply.to_string())
            }
        }
    }

    /// Check one (actor, someone else's session, op) triple.
    async fn check(&self, actor: usize, owner: usize, sess: usize, op: &str) -> Result<(), String> {
        let target = &self.users[owner].sessions[sess];
        let item = &self.users[owner].secrets[0];
        let tab = &self.users[actor].ws;
        let (status, text) = self.op(actor, op, target, item, tab).await;
        let case = format!("{} -> {}'s {target}, {op}", USERS[actor], USERS[owner]);
        for (i, other) in self.users.iter().enumerate().filter(|(i, _)| *i != actor) {
            if text.contains(&format!("SECRET-{}", USERS[i]))
                || other.secrets.iter().any(|x| text.contains(x.as_str()))
            {
                return Err(format!("{case}: leaked another user's data: {text}"));
            }
        }
        let expected = if op == "rest.list_before" {
            "bad_request"
        } else {
            "not_found"
        };
        if !text.contains(expected) {
            return Err(format!("{case}: expected {expected}, got {status} {text}"));
        }
        // AG-UI names threads on the client: an unknown id is a new thread, so only the known
        // one can be compared (it is `not_found`, checked above).
        if op != "agui.run" {
            let made_up = format!("ses_{:032x}", rand::random::<u128>());
            let (status2, text2) = self.op(actor, op, &made_up, item, tab).await;
            if (status, text.replace(target.as_str(), "<ID>"))
                != (status2, text2.replace(&made_up, "<ID>"))
            {
                return Err(format!("{case}: B's id answers unlike a made-up one: {status} {text} vs {status2} {text2}"));
            }
        }
        Ok(())
    }
}

#[test]
fn users_never_see_or_touch_each_others_sessions_on_any_transport() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let world = rt.block_on(World::setup());

    // Positive control: every op on one's own (spare) session is not `not_found`, so the
    // property below can fail.
    rt.block_on(async {
        for op in OPS {
            let me = &world.users[0];
            let spare = create_session(&world.hub, &me.token).await;
            let (status, ack) = call(
                &world.hub,
                "POST",
                &format!("/v1/sessions/{spare}/messages"),
                Some(&me.token),
                None,
                Some(&json!({"client_msg_id": "own", "text": "own"})),
            )
            .await;
            assert_eq!(status, 200, "{ack}");
            let item = ack["item_id"].as_str().expect("item id");
            let tab = tokio::sync::Mutex::new(ws_as(&world.hub, &me.token).await);
            let (_, text) = world.op(0, op, &spare, item, &tab).await;
            assert!(!text.contains("not_found"), "own session, {op}: {text}");
        }
    });

    let strategy = (0..USERS.len(), 1..USERS.len(), 0..2usize, 0..OPS.len());
    let config = proptest::test_runner::Config {
        cases: 96,
        failure_persistence: None,
        ..Default::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |(actor, offset, sess, op)| {
        let owner = (actor + offset) % USERS.len();
        rt.block_on(world.check(actor, owner, sess, OPS[op]))
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }

    rt.block_on(async {
        for (i, u) in world.users.iter().enumerate() {
            // Nothing happened in anyone's sessions: their watcher got no event since set-up.
            let mut w = u.watcher.lock().await;
            w.send(json!({"type": "ping", "ref": "end"})).await;
            let frames = w.recv_until(|v| v["type"] == "pong").await;
            assert_eq!(
                frames.len(),
                1,
                "{}'s sessions changed: {frames:?}",
                USERS[i]
            );
            drop(w);
            // Listings show one's own sessions only, on REST and ChatKit.
            let (_, list) = call(
                &world.hub,
                "GET",
                "/v1/sessions?limit=200",
                Some(&u.token),
                None,
                None,
            )
            .await;
            let (_, threads) = call(
                &world.hub,
                "POST",
                "/chatkit",
                Some(&u.token),
                None,
                Some(&json!({"type": "threads.list", "params": {"limit": 100}})),
            )
            .await;
            let mut listed: Vec<&str> = list["sessions"]
                .as_array()
                .expect("sessions")
                .iter()
                .map(|s| s["id"].as_str().expect("id"))
                .collect();
            listed.extend(
                threads["data"]
                    .as_array()
                    .expect("threads")
                    .iter()
                    .map(|t| t["id"].as_str().expect("id")),
            );
            for other in world
                .users
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, o)| &o.sessions)
            {
                assert!(
                    !listed.contains(&other.as_str()),
                    "{} lists {other}",
                    USERS[i]
                );
            }
            for own in &u.sessions {
                assert!(
                    listed.iter().filter(|id| *id == own).count() == 2,
                    "{} misses {own}",
                    USERS[i]
                );
            }
            // And the sessions still hold exactly their secret exchange.
            for (n, s) in u.sessions.iter().enumerate() {
                let items = call(
                    &world.hub,
                    "GET",
                    &format!("/v1/sessions/{s}/items"),
                    Some(&u.token),
                    None,
                    None,
                )
                .await
                .1;
                let items = items["items"].as_array().expect("items").clone();
                assert_eq!(items.len(), 2, "{s}: {items:?}");
                assert_eq!(items[0]["text"], format!("SECRET-{}-{n}", USERS[i]));
                assert_eq!(items[1]["status"], "complete");
            }
        }
    });
    rt.block_on(world.hub.stop());
}
