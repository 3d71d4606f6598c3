//! SOQL literals: values are never pasted into a query unescaped.

/// A single-quoted SOQL string literal with `\ ' "` and the control characters escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `('a','b')` for an `IN` clause.
pub fn quote_list<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = values.into_iter().map(quote).collect();
    format!("({})", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_by_the_soql_rules() {
        assert_eq!(quote("O'Brien"), r"'O\'Brien'");
        assert_eq!(
            quote("a\\b\"c\nd\te\rf\u{8}g\u{c}"),
            r#"'a\\b\"c\nd\te\rf\bg\f'"#
        );
        assert_eq!(
            quote("100%_x"),
            "'100%_x'",
            "% and _ are escaped only inside LIKE"
        );
        assert_eq!(quote_list(["a", "b'"]), r"('a','b\'')");
    }
}
