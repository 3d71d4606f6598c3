//! The OAuth token endpoint for the password, client credentials, JWT bearer and refresh
//! token grants, checked against the credentials the emulator was started with; and the
//! userinfo and identity resources.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use serde_json::json;

use super::{Shared, json_response, lock};

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/userinfo", get(userinfo))
        .route("/id/{org}/{user}", get(userinfo))
}

fn refuse(error: &str, description: &str) -> Response {
    json_response(
        400,
        json!({"error": error, "error_description": description}),
    )
}

/// `client_id`/`client_secret` from the form, or from `Authorization: Basic`.
fn client_credentials(
    form: &[(String, String)],
    headers: &HeaderMap,
) -> (Option<String>, Option<String>) {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_string(), secret.to_string()))
        });
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (field("client_id"), field("client_secret")),
    }
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let config = &shared.config;
    let (client_id, client_secret) = client_credentials(&form, &headers);
    let check_client = |require_secret: bool| -> Option<Response> {
        if client_id.as_deref() != Some(config.client_id.as_str()) {
            return Some(refuse("invalid_client_id", "client identifier invalid"));
        }
        let secret_ok = match client_secret.as_deref() {
            Some(secret) => secret == config.client_secret,
            None => !require_secret,
        };
        (!secret_ok).then(|| refuse("invalid_client", "invalid client credentials"))
    };
    match field("grant_type").unwrap_or_default() {
        "password" => {
            if let Some(refused) = check_client(true) {
                return refused;
            }
            let expected = format!("{}{}", config.password, config.security_token);
            if field("username") != Some(config.username.as_str())
                || field("password") != Some(expected.as_str())
            {
                return refuse("invalid_grant", "authentication failure");
            }
        }
        "client_credentials" => {
            if let Some(refused) = check_client(true) {
                return refused;
            }
        }
        "refresh_token" => {
            if let Some(refused) = check_client(false) {
                return refused;
            }
            if field("refresh_token") != Some(config.refresh_token.as_str()) {
                return refuse("invalid_grant", "expired access/refresh token");
            }
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            if let Err((error, description)) =
                check_jwt(&shared, field("assertion").unwrap_or_default())
            {
                return refuse(error, description);
            }
        }
        _ => return refuse("unsupported_grant_type", "grant type not supported"),
    }
    issue_token(&shared)
}

/// Checks a JWT bearer assertion; a refusal is Salesforce's (error, description).
fn check_jwt(shared: &Shared, assertion: &str) -> Result<(), (&'static str, &'static str)> {
    let config = &shared.config;
    let Some(public_key) = &config.jwt_public_key else {
        return Err((
            "invalid_grant",
            "the JWT bearer flow is not set up: start the emulator with --jwt-public-key",
        ));
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key.as_bytes()).map_err(|_| {
        (
            "invalid_grant",
            "the configured JWT public key is not a PEM RSA key",
        )
    })?;
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| ("invalid_grant", "invalid assertion"))?;
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return Err(("invalid_grant", "invalid assertion: only RS256 is accepted"));
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[
        "https://login.salesforce.com",
        "https://test.salesforce.com",
        shared.base_url.as_str(),
    ]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = 0;
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: String,
        sub: String,
        exp: u64,
    }
    let claims = jsonwebtoken::decode::<Claims>(assertion, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                ("invalid_grant", "audience is invalid")
            }
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                ("invalid_grant", "expired authorization code")
            }
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                ("invalid_grant", "invalid assertion: bad signature")
            }
            _ => ("invalid_grant", "invalid assertion"),
        })?
        .claims;
    if claims.iss != config.client_id {
        return Err(("invalid_client_id", "client identifier invalid"));
    }
    if claims.sub != config.username {
        return Err(("invalid_grant", "user hasn't approved this consumer"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if claims.exp > now + 300 {
        return Err((
            "invalid_grant",
            "invalid assertion: exp may be at most 3 minutes ahead",
        ));
    }
    Ok(())
}

fn issue_token(shared: &Shared) -> Response {
    let random: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(40)
        .collect();
    let access_token = format!("{}!AR{random}", &shared.org_id[..15]);
    lock(&shared.sessions).insert(access_token.clone());
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string();
    let signature =
        base64::engine::general_purpose::STANDARD.encode(fastrand::u64(..).to_le_bytes());
    json_response(
        200,
        json!({
            "access_token": access_token,
            "instance_url": shared.base_url,
            "id": format!("{}/id/{}/{}", shared.base_url, shared.org_id, shared.user_id),
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }),
    )
}

async fn userinfo(State(shared): State<Arc<Shared>>) -> Response {
    json_response(
        200,
        json!({
            "sub": format!("{}/id/{}/{}", shared.base_url, shared.org_id, shared.user_id),
            "user_id": shared.user_id,
            "organization_id": shared.org_id,
            "preferred_username": shared.config.username,
            "name": "Demo User",
            "given_name": "Demo",
            "family_name": "User",
            "email": shared.config.username,
            "active": true,
            "user_type": "STANDARD",
        }),
    )
}
