//! One REST call as a value: built by the operations, sent by the client, or printed
//! instead of sent by `--dry-run`.

use std::fmt;

use reqwest::Method;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: Method,
    /// Relative to the data API (`sobjects/Campaign/701...`), or absolute from the
    /// instance root when it starts with `/` (`/services/oauth2/userinfo`).
    pub path: String,
    pub body: Option<Value>,
    /// Whether the bearer token goes along (everything but the versions list).
    pub authenticated: bool,
}

impl ApiRequest {
    fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> ApiRequest {
        ApiRequest {
            method,
            path: path.into(),
            body,
            authenticated: true,
        }
    }

    pub fn get(path: impl Into<String>) -> ApiRequest {
        ApiRequest::new(Method::GET, path, None)
    }

    pub fn post(path: impl Into<String>, body: Value) -> ApiRequest {
        ApiRequest::new(Method::POST, path, Some(body))
    }

    pub fn patch(path: impl Into<String>, body: Value) -> ApiRequest {
        ApiRequest::new(Method::PATCH, path, Some(body))
    }

    pub fn delete(path: impl Into<String>) -> ApiRequest {
        ApiRequest::new(Method::DELETE, path, None)
    }

    /// Whether the request changes data (what `--dry-run` holds back).
    pub fn is_write(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD)
    }

    /// The path from the instance root, given the data API's base path.
    pub fn absolute_path(&self, data_path: &str) -> String {
        if self.path.starts_with('/') {
            self.path.clone()
        } else {
            format!("{data_path}{}", self.path)
        }
    }

    /// The request as `--dry-run` prints it: method, full path, pretty JSON body.
    pub fn display<'a>(&'a self, data_path: &'a str) -> impl fmt::Display + 'a {
        struct Shown<'a>(&'a ApiRequest, &'a str);
        impl fmt::Display for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.0.method, self.0.absolute_path(self.1))?;
                if let Some(body) = &self.0.body {
                    let pretty = serde_json::to_string_pretty(body).map_err(|_| fmt::Error)?;
                    write!(f, "\n{pretty}")?;
                }
                Ok(())
            }
        }
        Shown(self, data_path)
    }
}

/// Escapes one path segment (an external id value, a record id from a script).
pub fn path_segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Escapes a query-string value (SOQL, id lists).
pub fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_method_full_path_and_body() {
        let request = ApiRequest::patch(
            "sobjects/Campaign/7015g000000AAAAAAA",
            serde_json::json!({"Name": "x"}),
        );
        let shown = request.display("/services/data/v66.0/").to_string();
        assert_eq!(
            shown,
            "PATCH /services/data/v66.0/sobjects/Campaign/7015g000000AAAAAAA\n{\n  \"Name\": \"x\"\n}"
        );
        assert!(request.is_write());
        assert!(!ApiRequest::get("limits").is_write());
    }

    #[test]
    fn escapes_path_segments() {
        assert_eq!(path_segment("a b/c?d"), "a%20b%2Fc%3Fd");
    }
}
