//! Boolean flags and their environment variables take 1/0, yes/no, true/false and on/off (as
//! users and every 12-factor guide write them), the bare flag turns one on, and anything else
//! stops the hub with an error that says what is accepted.

use crate::support;

use clap::Parser;
use sessionhub::config::Config;
use support::{BinHub, WsClient};

const ACCEPTED: &str = "expected 1/0, yes/no, true/false or on/off";

/// Reads one boolean out of a parsed config.
type Getter = fn(&Config) -> bool;

fn parse(args: &[&str]) -> Result<Config, clap::Error> {
    Config::try_parse_from(std::iter::once("sessionhub").chain(args.iter().copied()))
}

#[test]
fn every_boolean_flag_takes_the_usual_spellings() {
    let flags: [(&str, Getter); 3] = [
        ("--scripted-stamp", |c| c.scripted_stamp),
        ("--allow-anonymous", |c| c.allow_anonymous),
        ("--conformance-echo", |c| c.conformance_echo),
    ];
    for (flag, get) in flags {
        assert!(!get(&parse(&[]).unwrap()), "{flag} is off by default");
        assert!(get(&parse(&[flag]).unwrap()), "bare {flag} turns it on");
        for on in ["1", "yes", "true", "on", "Y", "TRUE", "On", "t"] {
            assert!(
                get(&parse(&[&format!("{flag}={on}")]).unwrap()),
                "{flag}={on}"
            );
        }
        for off in ["0", "no", "false", "off", "N", "FALSE", "Off", "f", ""] {
            assert!(
                !get(&parse(&[&format!("{flag}={off}")]).unwrap()),
                "{flag}={off}"
            );
        }
        for bad in ["2", "maybe", "enabled", "-1"] {
            let err = parse(&[&format!("{flag}={bad}")]).unwrap_err().to_string();
            assert!(
                err.contains(ACCEPTED) && err.contains(flag),
                "{flag}={bad}: {err}"
            );
        }
    }
}

/// The variable from the issue: `SESSIONHUB_SCRIPTED_STAMP=1` used to stop the hub with
/// "invalid value '1'". Now the real binary starts and its scripted deltas carry the stamp.
#[tokio::test]
async fn the_real_binary_reads_1_from_the_environment() {
    let dir = tempfile::tempdir().expect("data dir");
    let hub = BinHub::start_with_env(
        dir.path(),
        &["--scripted-delay-ms", "1"],
        &[
            ("SESSIONHUB_SCRIPTED_STAMP", "1"),
            ("SESSIONHUB_CONFORMANCE_ECHO", "no"),
        ],
    )
    .await;
    let session = support::create_session(&hub.url("/v1/sessions")).await;
    let mut ws = WsClient::connect(&hub.ws_url()).await;
    ws.join(&session).await;
    let ack = ws.say(&session, "c1", "hello").await;
    let end = ws
        .until_run_end(ack["run_id"].as_str().expect("run_id"))
        .await;
    let text = end["item"]["text"].as_str().expect("reply text");
    let first: u64 = text
        .split(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("the reply starts with a stamp: {text:?}"));
    assert!(
        first > 1_600_000_000_000_000,
        "microseconds since 1970: {first}"
    );
    // "no" really is off: the echo route is not served.
    let echo = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws/echo", hub.addr)).await;
    assert!(
        echo.is_err(),
        "SESSIONHUB_CONFORMANCE_ECHO=no leaves the echo off"
    );
    hub.kill9().await;
}

#[test]
fn a_bad_value_stops_the_binary_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("data dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessionhub"))
        .args(["--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("SESSIONHUB_ALLOW_ANONYMOUS", "perhaps")
        .output()
        .expect("run sessionhub");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'perhaps'") && err.contains("--allow-anonymous") && err.contains(ACCEPTED),
        "{err}"
    );
}
