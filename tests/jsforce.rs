//! A published Salesforce client, jsforce, drives the emulator: proof that the
//! emulator speaks the protocol real clients speak, not only ours.
//!
//! `.ci/run` installs jsforce and sets `RULESFORCE_JSFORCE_DIR` (its node_modules'
//! parent) and `RULESFORCE_REQUIRE_JSFORCE=1`, so that in CI a missing jsforce fails this
//! test. Elsewhere, without node or jsforce, it is skipped with a printed reason.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

fn jsforce_dir() -> Result<PathBuf, String> {
    let dir = std::env::var("RULESFORCE_JSFORCE_DIR")
        .map_err(|_| "RULESFORCE_JSFORCE_DIR is not set".to_string())?;
    let dir = PathBuf::from(dir);
    if !dir.join("node_modules/jsforce").is_dir() {
        return Err(format!("no jsforce under {}/node_modules", dir.display()));
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node is not installed".into());
    }
    Ok(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsforce_logs_in_writes_queries_and_uses_collections() {
    let dir = match jsforce_dir() {
        Ok(dir) => dir,
        Err(reason) if std::env::var("RULESFORCE_REQUIRE_JSFORCE").is_ok_and(|v| v == "1") => {
            panic!("RULESFORCE_REQUIRE_JSFORCE=1 but jsforce cannot run: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: jsforce is not available ({reason}); .ci/run installs it");
            return;
        }
    };
    let emu = emulator().await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/jsforce/drive.js");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .env("NODE_PATH", dir.join("node_modules"))
        .env("LOGIN_URL", emu.base_url())
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "jsforce failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

    assert_eq!(result["organizationId"], emu.org_id());
    assert_eq!(
        result["queried"],
        serde_json::json!([{"Name": "jsforce Campaign", "Status": "In Progress"}])
    );
    assert_eq!(result["members"], serde_json::json!([true, true, true]));
    assert_eq!(result["duplicate"], serde_json::json!(["DUPLICATE_VALUE"]));
    assert_eq!(result["memberCount"], 3);
    assert_eq!(result["afterDelete"], 0);

    let log = emu.requests();
    let token = &requests_to(&log, "POST", "/services/oauth2/token")[0];
    assert_eq!(token.body["grant_type"], "password");
    let collections = requests_to(&log, "POST", &format!("{DATA}/composite/sobjects"));
    assert_eq!(
        collections.len(),
        2,
        "jsforce sent the member adds through sObject Collections"
    );
    assert_eq!(collections[0].body["records"].as_array().unwrap().len(), 3);
    let campaign = result["campaignId"].as_str().unwrap();
    assert_eq!(
        requests_to(
            &log,
            "PATCH",
            &format!("{DATA}/sobjects/Campaign/{campaign}")
        )
        .len(),
        1
    );
    assert_eq!(
        requests_to(
            &log,
            "DELETE",
            &format!("{DATA}/sobjects/Campaign/{campaign}")
        )
        .len(),
        1
    );
}
