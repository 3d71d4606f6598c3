//! `rulesforce login` and `rulesforce emulator`, run as the user runs them.

mod common;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_prints_who_and_never_the_token() {
    let emu = emulator().await;
    let output = binary()
        .arg("login")
        .envs(emulator_env(&emu))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(emu.org_id()), "{stdout}");
    assert!(stdout.contains("demo@example.com"), "{stdout}");
    assert!(
        stdout.contains(&format!("instance:    {}", emu.base_url())),
        "{stdout}"
    );
    assert!(stdout.contains("API version: 66.0"), "{stdout}");
    assert!(
        stdout.contains("API usage:   1 of 15000 requests today"),
        "{stdout}"
    );
    assert!(!stdout.contains("!AR"), "no access token in {stdout}");

    let output = binary()
        .args(["login", "--json"])
        .envs(emulator_env(&emu))
        .output()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["user_id"], emu.user_id());
    assert_eq!(json["flow"], "password");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("!AR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failure_shows_salesforce_error_and_hint() {
    let emu = emulator().await;
    let output = binary()
        .arg("login")
        .envs(emulator_env(&emu))
        .env("SF_PASSWORD", "wrong-password")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("invalid_grant: authentication failure"),
        "{stderr}"
    );
    assert!(
        stderr.contains("client_credentials"),
        "the hint points away from the password flow: {stderr}"
    );
    assert!(!stderr.contains("wrong-password"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_settings_are_named_and_nothing_falls_back_to_the_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary()
        .arg("login")
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("no Salesforce connection is configured"),
        "{stderr}"
    );
    assert!(stderr.contains("--emulator"), "{stderr}");

    let output = binary()
        .args(["login", "--login-url", "http://example.com"])
        .env("SF_CLIENT_ID", "x")
        .env("SF_CLIENT_SECRET", "y")
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("allowed only for loopback hosts"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_come_from_rulesforce_toml_below_env_and_flags() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let c = emu.config();
    std::fs::write(
        dir.path().join("rulesforce.toml"),
        format!(
            "[salesforce]\nlogin_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\nusername = \"{}\"\npassword = \"wrong\"\nsecurity_token = \"{}\"\napi_version = \"60.0\"\n",
            emu.base_url(), c.client_id, c.client_secret, c.username, c.security_token
        ),
    )
    .unwrap();
    // The environment's password beats the file's; the flag's version beats the file's.
    let output = binary()
        .args(["login", "--json", "--api-version", "62.0"])
        .env("SF_PASSWORD", &c.password)
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["api_version"], "62.0");
    assert!(
        emu.requests()
            .iter()
            .any(|r| r.route() == "/services/data/v62.0/limits")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_command_prints_its_url_and_serves_it() {
    let mut child = binary()
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let url = first
        .strip_prefix("rulesforce emulator listening on ")
        .expect(&first)
        .to_string();
    let mut printed = String::new();
    for _ in 0..6 {
        printed.push_str(&lines.next_line().await.unwrap().unwrap());
    }
    assert!(
        printed.contains("rulesforce-demo") && printed.contains("demo-token"),
        "{printed}"
    );
    let output = binary()
        .args(["login", "--login-url", &url])
        .env("SF_CLIENT_ID", "rulesforce-demo")
        .env("SF_CLIENT_SECRET", "demo-secret")
        .env("SF_USERNAME", "demo@example.com")
        .env("SF_PASSWORD", "demo-password")
        .env("SF_SECURITY_TOKEN", "demo-token")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    child.kill().await.unwrap();
}
