//! Every auth flow against the emulator over real HTTP, one login shared by many
//! requests, re-login on expiry, and the refusals Salesforce gives.

mod common;

use common::*;
use rulesforce::config::Settings;
use rulesforce::emulator::{EmulatorConfig, FaultUpdate};
use rulesforce::salesforce::{AuthFlow, Error};

#[tokio::test]
async fn password_flow_logs_in_and_knows_who_it_is() {
    let emu = emulator().await;
    let client = client(&emu);
    let identity = client.identity().await.unwrap();
    assert_eq!(identity.org_id, emu.org_id());
    assert_eq!(identity.user_id, emu.user_id());
    assert_eq!(identity.username, "demo@example.com");
    assert_eq!(identity.instance_url, emu.base_url());
    let log = emu.requests();
    let token = &requests_to(&log, "POST", "/services/oauth2/token")[0];
    assert_eq!(token.body["grant_type"], "password");
    assert_eq!(token.body["username"], "demo@example.com");
    assert_eq!(
        token.body["password"], "***",
        "the emulator masks secrets in its log"
    );
}

#[tokio::test]
async fn client_credentials_flow() {
    let emu = emulator().await;
    let settings = Settings {
        auth_flow: Some("client_credentials".into()),
        login_url: Some(emu.base_url().into()),
        client_id: Some("rulesforce-demo".into()),
        client_secret: Some("demo-secret".into()),
        ..Settings::default()
    };
    let client = client_for(&settings);
    assert_eq!(client.flow(), AuthFlow::ClientCredentials);
    assert_eq!(client.identity().await.unwrap().org_id, emu.org_id());
    assert_eq!(emu.requests()[0].body["grant_type"], "client_credentials");
}

/// The JWT flow for the demo user, signed with the test key.
fn jwt_settings(emu: &rulesforce::emulator::Emulator) -> Settings {
    Settings {
        login_url: Some(emu.base_url().into()),
        client_id: Some("rulesforce-demo".into()),
        username: Some("demo@example.com".into()),
        private_key_file: Some(fixture("jwt-test-key.pem")),
        ..Settings::default()
    }
}

#[tokio::test]
async fn jwt_bearer_flow_signs_an_assertion_the_emulator_verifies() {
    let public_key = std::fs::read_to_string(fixture("jwt-test-key.pub.pem")).unwrap();
    let emu = emulator_with(EmulatorConfig {
        jwt_public_key: Some(public_key),
        ..EmulatorConfig::default()
    })
    .await;
    let settings = jwt_settings(&emu);
    let client = client_for(&settings);
    assert_eq!(
        client.flow(),
        AuthFlow::Jwt,
        "inferred from SF_PRIVATE_KEY_FILE"
    );
    assert_eq!(
        client.identity().await.unwrap().username,
        "demo@example.com"
    );

    // The wrong user is refused with Salesforce's words.
    let settings = Settings {
        username: Some("someone@else.com".into()),
        ..settings
    };
    let err = client_for(&settings).identity().await.unwrap_err();
    assert!(
        matches!(&err, Error::Auth { error, .. } if error == "invalid_grant"),
        "{err}"
    );
}

#[tokio::test]
async fn jwt_signed_by_another_key_is_refused() {
    // The emulator trusts a key that did not sign the assertion.
    let other = std::fs::read_to_string(fixture("other-key.pub.pem")).unwrap();
    let emu = emulator_with(EmulatorConfig {
        jwt_public_key: Some(other),
        ..EmulatorConfig::default()
    })
    .await;
    let settings = jwt_settings(&emu);
    let err = client_for(&settings).identity().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "login failed: invalid_grant: invalid assertion: bad signature"
    );
}

#[tokio::test]
async fn refresh_token_flow() {
    let emu = emulator().await;
    let settings = Settings {
        login_url: Some(emu.base_url().into()),
        client_id: Some("rulesforce-demo".into()),
        refresh_token: Some("demo-refresh-token".into()),
        ..Settings::default()
    };
    let client = client_for(&settings);
    assert_eq!(client.flow(), AuthFlow::RefreshToken);
    client.identity().await.unwrap();
    let log = emu.requests();
    assert_eq!(log[0].body["grant_type"], "refresh_token");
    assert_eq!(log[0].body["refresh_token"], "***");

    let bad = Settings {
        refresh_token: Some("stale".into()),
        ..settings
    };
    let err = client_for(&bad).identity().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "login failed: invalid_grant: expired access/refresh token"
    );
}

#[tokio::test]
async fn token_flow_uses_the_token_as_given_and_cannot_refresh_it() {
    let emu = emulator().await;
    let session = client(&emu).session().await.unwrap();
    let settings = Settings {
        instance_url: Some(emu.base_url().into()),
        access_token: Some(session.access_token.clone()),
        ..Settings::default()
    };
    let client = client_for(&settings);
    assert_eq!(client.flow(), AuthFlow::Token);
    let identity = client.identity().await.unwrap();
    assert_eq!(identity.user_id, emu.user_id(), "learned from userinfo");
    assert_eq!(identity.org_id, emu.org_id());

    emu.update_faults(&FaultUpdate {
        expire_sessions: true,
        ..FaultUpdate::default()
    });
    let err = client.limits().await.unwrap_err();
    assert!(matches!(err, Error::SessionExpired(_)), "{err}");
    assert!(
        err.to_string().contains("token flow cannot get a new one"),
        "{err}"
    );
    assert_eq!(
        token_requests(&emu.requests()),
        1,
        "only the login that minted the token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests_share_one_login_and_one_relogin() {
    let emu = emulator().await;
    let client = client(&emu);
    let run_batch = |n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.query("SELECT Id FROM Campaign").await })
            })
            .collect();
        async move {
            for task in tasks {
                assert_eq!(task.await.unwrap().unwrap().len(), 4);
            }
        }
    };
    run_batch(30).await;
    assert_eq!(
        token_requests(&emu.requests()),
        1,
        "30 concurrent first requests, one login"
    );

    emu.update_faults(&FaultUpdate {
        expire_sessions: true,
        ..FaultUpdate::default()
    });
    run_batch(30).await;
    let log = emu.requests();
    assert_eq!(
        token_requests(&log),
        2,
        "30 requests hit the expired session, one re-login"
    );
    let rejected = log.iter().filter(|r| r.status == 401).count();
    assert!(rejected >= 1, "some requests met the expired session");
}

#[tokio::test]
async fn a_401_mid_run_logs_in_again_and_resends() {
    let emu = emulator().await;
    let client = client(&emu);
    client.limits().await.unwrap();
    emu.update_faults(&FaultUpdate {
        expire_sessions: true,
        ..FaultUpdate::default()
    });
    let id = client.find_campaign("Trial Nurture").await.unwrap();
    assert!(id.is_some());
    let log = emu.requests();
    let statuses: Vec<(String, u16)> = log
        .iter()
        .map(|r| (r.route().to_string(), r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("/services/oauth2/token".to_string(), 200),
            (format!("{DATA}/limits"), 200),
            (format!("{DATA}/query"), 401),
            ("/services/oauth2/token".to_string(), 200),
            (format!("{DATA}/query"), 200),
        ]
    );
}

#[tokio::test]
async fn never_relogs_on_403() {
    let emu = emulator_with(EmulatorConfig {
        daily_api_limit: 2,
        ..EmulatorConfig::default()
    })
    .await;
    let client = client(&emu);
    client.limits().await.unwrap();
    client.limits().await.unwrap();
    let err = client.limits().await.unwrap_err();
    assert_eq!(err.error_code(), Some("REQUEST_LIMIT_EXCEEDED"));
    assert!(!err.is_retryable());
    let log = emu.requests();
    assert_eq!(token_requests(&log), 1);
    assert_eq!(
        requests_to(&log, "GET", &format!("{DATA}/limits")).len(),
        3,
        "not retried"
    );
    assert_eq!(
        client.api_usage().map(|u| (u.used, u.allowed)),
        Some((3, 2))
    );
}

#[tokio::test]
async fn wrong_credentials_get_salesforce_errors_and_the_password_hint() {
    let emu = emulator().await;
    let mut settings = emu.settings();
    settings.password = Some("wrong".into());
    let err = client_for(&settings).identity().await.unwrap_err();
    let Error::Auth {
        error,
        description,
        hint,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (error.as_str(), description.as_str()),
        ("invalid_grant", "authentication failure")
    );
    assert!(hint.as_deref().unwrap().contains("client_credentials"));
    assert!(
        !err.to_string().contains("wrong"),
        "the password never shows"
    );

    let mut settings = emu.settings();
    settings.client_id = Some("nope".into());
    let err = client_for(&settings).identity().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "login failed: invalid_client_id: client identifier invalid"
    );
}

#[tokio::test]
async fn debug_and_errors_never_show_secrets() {
    let emu = emulator().await;
    let client = client(&emu);
    let session = client.session().await.unwrap();
    let token = session.access_token.expose().to_string();
    let shown = format!("{client:?} {session:?} {:?}", emu.settings());
    for secret in [token.as_str(), "demo-password", "demo-secret", "demo-token"] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
}
