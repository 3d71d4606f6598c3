//! `rulesforce repl`: `-e`, piped standard input, and the interactive editor in a
//! pseudo-terminal, against the emulator.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn repl(emu: &rulesforce::emulator::Emulator, args: &[&str], stdin: &str) -> Output {
    let mut child = binary()
        .arg("repl")
        .args(args)
        .envs(emulator_env(emu))
        .env("HOME", std::env::temp_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn no_secrets(out: &Output) {
    for secret in ["demo-password", "demo-secret", "demo-token", "!AR"] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{secret} leaked:\n{}{}",
            out.stdout,
            out.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_prints_a_query_as_json_and_writes_are_sent_at_once() {
    let emu = emulator().await;
    let out = repl(
        &emu,
        &[
            "-e",
            "query(\"SELECT Name FROM Campaign WHERE IsActive = true ORDER BY Name\")",
        ],
        "",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records: Value = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Churn Risk Outreach", "Trial Nurture"]);
    no_secrets(&out);

    let out = repl(
        &emu,
        &[
            "-e",
            "update_campaign(find_campaign(\"Trial Nurture\"), #{ Status: \"Completed\" })",
        ],
        "",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let outcome: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(outcome["success"], true);
    assert_eq!(
        emu.records("Campaign")[0]["Status"],
        "Completed",
        "the update reached Salesforce"
    );

    let out = repl(
        &emu,
        &[
            "-e",
            "update_campaign(find_campaign(\"Trial Nurture\"), #{ Bogus: 1 })",
        ],
        "",
    )
    .await;
    let outcome: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (outcome["success"].as_bool(), outcome["errorCode"].as_str()),
        (Some(false), Some("INVALID_FIELD"))
    );

    let out = repl(&emu, &["-e", "1 +* 2"], "").await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("<repl>:1:4: "), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_input_keeps_variables_and_functions_reports_errors_and_goes_on() {
    let emu = emulator().await;
    let script = "let c = find_campaign(\"Trial Nurture\");\nfn twice(x) {\n    x * 2\n}\ntwice(21)\nlet broken = ;\nc\nsf.query_one(\"SELECT Name FROM Campaign WHERE Id = \" + soql_quote(c)).Name\n";
    let out = repl(&emu, &[], script).await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            "42",
            &format!("{:?}", emu.records("Campaign")[0]["Id"].as_str().unwrap()),
            "\"Trial Nurture\""
        ],
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("<repl>:1:14: "),
        "the error names its position: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("let broken = ;\n  "),
        "and shows the line: {}",
        out.stderr
    );
    assert!(
        out.stderr.lines().any(|l| l.trim() == "^"),
        "with a caret: {}",
        out.stderr
    );
    assert_eq!(out.code, 1, "an input failed");
    no_secrets(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_runs_the_loaded_rule_and_shows_its_planned_actions() {
    let emu = emulator().await;
    let rule =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/trial_engaged.rhai");
    let script = format!(
        ":load {}\n:event {{\"type\": \"feature_used\", \"plan\": \"trial\", \"email\": \"ada@example.com\"}}\n:event {{\"type\": \"page_view\"}}\n:vars\n:help add_to_campaign\n:login client_credentials\nidentity().username\n",
        rule.display()
    );
    emu.clear_requests();
    let out = repl(&emu, &[], &script).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("loaded ") && out.stdout.contains("on_event(event)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("1 action(s) planned, not sent:"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\"op\": \"add_member\"")
            && out.stdout.contains("\"email\": \"ada@example.com\""),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("no actions planned"), "{}", out.stdout);
    assert!(
        out.stdout.contains("sf = <Salesforce connection>"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("add_to_campaign(campaign_id, member_id, status)"),
        "{}",
        out.stdout
    );
    let writes = emu
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.route() != "/services/oauth2/token")
        .count();
    assert_eq!(writes, 0, ":event sends nothing");
    no_secrets(&out);
}

#[test]
fn the_interactive_editor_continues_unfinished_input_completes_and_keeps_history() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let emu = runtime.block_on(emulator());
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let spawn = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rulesforce"));
        command
            .args(["repl", "--history"])
            .arg(&history)
            .env("TERM", "xterm")
            .env("HOME", dir.path());
        for (key, value) in emulator_env(&emu) {
            command.env(key, value);
        }
        rexpect::session::spawn_command(command, Some(20_000)).unwrap()
    };
    // The line editor flushes input typed before it switched the terminal to raw mode:
    // give it a moment after each prompt, as a person would.
    let settle = || std::thread::sleep(Duration::from_millis(300));

    let mut session = spawn();
    session.exp_string("Tab completes").unwrap();
    session.exp_string("rf> ").unwrap();
    settle();
    session.send_line("fn f() {").unwrap();
    session.exp_string("... ").unwrap();
    settle();
    session.send_line("  40 + 2 }").unwrap();
    session.exp_string("rf> ").unwrap();
    settle();
    session.send_line("f()").unwrap();
    session.exp_string("42").unwrap();
    session.exp_string("rf> ").unwrap();
    settle();
    session.send("update_ca").unwrap();
    session.flush().unwrap();
    settle();
    session.send("\t").unwrap();
    session.flush().unwrap();
    session.exp_string("mpaign").unwrap();
    session.send_control('c').unwrap();
    session.exp_string("rf> ").unwrap();
    settle();
    session.send_line("40 + 2").unwrap();
    session.exp_string("42").unwrap();
    session.exp_string("rf> ").unwrap();
    settle();
    session.send_control('d').unwrap();
    session.exp_eof().unwrap();

    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("f()") && saved.contains("40 + 2"), "{saved}");
    assert!(
        !saved.contains("update_ca"),
        "Ctrl-C dropped the unfinished line: {saved}"
    );

    // History survives a restart: Up brings back the last line.
    let mut session = spawn();
    session.exp_string("rf> ").unwrap();
    settle();
    session.send("\x1b[A").unwrap();
    session.flush().unwrap();
    session.exp_string("40 + 2").unwrap();
    settle();
    session.send_line("").unwrap();
    session.exp_string("42").unwrap();
    session.exp_string("rf> ").unwrap();
    settle();
    session.send_control('d').unwrap();
    session.exp_eof().unwrap();
}
