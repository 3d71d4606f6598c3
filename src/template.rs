//! Mustache templates (mustache2, a spec-compliant implementation) in two modes: plain
//! text, with no HTML escaping, for Salesforce fields; and JSON-safe, where every value
//! is escaped for a JSON string so that no value can break the document around it.

use std::borrow::Cow;

use mustache2::render::{RenderManager, SourceCache, provider::SourceProvider};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Values as they are.
    None,
    /// Values escaped for the inside of a JSON string.
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {line}:{column}: {message}")]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Mustache escapes these for HTML in `{{ }}` tags. Values carry them as private-use
/// stand-ins through the renderer, which leaves those alone, and get them back after,
/// so `{{ }}` and `{{{ }}}` both insert the value unchanged.
const HTML_SPECIALS: [(char, char); 4] = [
    ('&', '\u{F8F0}'),
    ('<', '\u{F8F1}'),
    ('>', '\u{F8F2}'),
    ('"', '\u{F8F3}'),
];

fn shield(text: &str) -> String {
    text.chars()
        .map(|c| {
            HTML_SPECIALS
                .iter()
                .find(|(s, _)| *s == c)
                .map_or(c, |(_, r)| *r)
        })
        .collect()
}

fn unshield(text: &str) -> String {
    text.chars()
        .map(|c| {
            HTML_SPECIALS
                .iter()
                .find(|(_, r)| *r == c)
                .map_or(c, |(s, _)| *s)
        })
        .collect()
}

/// Applies `escape` and the shield to every string in the data.
fn prepare(value: &Value, escape: Escape) -> Value {
    match value {
        Value::String(text) => {
            let text = match escape {
                Escape::None => text.clone(),
                Escape::Json => {
                    let quoted = Value::String(text.clone()).to_string();
                    quoted[1..quoted.len() - 1].to_string()
                }
            };
            Value::String(shield(&text))
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| prepare(v, escape)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), prepare(v, escape)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One template held in memory. Partials (`{{> name}}`) have nowhere to come from and
/// are an error rather than a file read.
struct OneTemplate(String);

impl SourceProvider for OneTemplate {
    /// `None` is the template itself; `Some(name)` a partial it names.
    type Key = Option<String>;

    fn get_src(&mut self, key: &Self::Key) -> Result<String, Cow<'static, str>> {
        match key {
            None => Ok(self.0.clone()),
            Some(name) => Err(format!("partials are not supported ({{{{> {name}}}}})").into()),
        }
    }

    fn resolve_partial(&self, _key: &Self::Key, name: &str) -> Self::Key {
        Some(name.to_string())
    }

    fn display_key(key: &Self::Key) -> Cow<'_, str> {
        key.as_deref()
            .map_or(Cow::Borrowed("template"), Cow::Borrowed)
    }
}

/// Renders `template` with `data`.
pub fn render(template: &str, data: &Value, escape: Escape) -> Result<String, TemplateError> {
    let cache = SourceCache::default();
    let mut renderer = RenderManager::new(OneTemplate(template.to_string()), &cache);
    let mut out = String::new();
    match renderer.render_serde_to(&mut out, None, prepare(data, escape)) {
        Ok(_) => Ok(unshield(&out)),
        Err(err) => {
            let offset = err.source.as_ref().map(|(_, span)| span.start).unwrap_or(0);
            let before = &template[..offset.min(template.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            Err(TemplateError {
                line,
                column,
                message: err.message.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plain(template: &str, data: Value) -> String {
        render(template, &data, Escape::None).unwrap()
    }

    #[test]
    fn interpolates_paths_sections_and_inverted_sections() {
        let data = json!({"name": "Ada", "user": {"email": "ada@example.com"}, "rows": [{"n": 1}, {"n": 2}], "none": []});
        assert_eq!(
            plain("Hi {{ name }} <{{ user.email }}>", data.clone()),
            "Hi Ada <ada@example.com>"
        );
        assert_eq!(plain("{{#rows}}[{{n}}]{{/rows}}", data.clone()), "[1][2]");
        assert_eq!(
            plain("{{#user}}{{email}}{{/user}}", data.clone()),
            "ada@example.com"
        );
        assert_eq!(plain("{{^none}}empty{{/none}}", data.clone()), "empty");
        assert_eq!(plain("{{missing}}.", data), ".");
    }

    #[test]
    fn plain_text_is_not_html_escaped() {
        let data = json!({"v": "a < b & \"c\" > d"});
        assert_eq!(plain("{{ v }}", data.clone()), "a < b & \"c\" > d");
        assert_eq!(plain("{{{ v }}}", data.clone()), "a < b & \"c\" > d");
        assert_eq!(plain("{{& v }}", data), "a < b & \"c\" > d");
    }

    #[test]
    fn json_mode_escapes_every_value() {
        let data = json!({"v": "say \"hi\"\nnow \\ ok"});
        let out = render(r#"{"text": "{{ v }}"}"#, &data, Escape::Json).unwrap();
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["text"], "say \"hi\"\nnow \\ ok");
    }

    #[test]
    fn errors_say_where() {
        let err = render("line one\n  {{#rows}}unclosed", &json!({}), Escape::None).unwrap_err();
        assert_eq!((err.line, err.column), (2, 3));
        assert!(err.message.contains("unclosed"), "{err}");
    }
}
