//! The SOQL subset the emulator understands: `SELECT fields | COUNT() FROM type
//! [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`,
//! where conditions combine `= != <> < <= > >= IN NOT IN LIKE` with AND, OR, NOT and
//! parentheses. Text compares case-insensitively, as in Salesforce.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::db::{Db, Failure};
use super::schema::{self, Kind, SObject};
use crate::salesforce::{Fields, SfId};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    Comma,
    Open,
    Close,
}

fn malformed(message: impl Into<String>) -> Failure {
    Failure::new(400, "MALFORMED_QUERY", message)
}

fn tokenize(soql: &str) -> Result<Vec<Token>, Failure> {
    let chars: Vec<char> = soql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            ',' => (tokens.push(Token::Comma), i += 1).1,
            '(' => (tokens.push(Token::Open), i += 1).1,
            ')' => (tokens.push(Token::Close), i += 1).1,
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(malformed("unterminated string literal")),
                        Some('\'') => break,
                        Some('\\') => {
                            let escaped = chars
                                .get(i + 1)
                                .ok_or_else(|| malformed("unterminated string literal"))?;
                            text.push_str(match escaped {
                                'n' => "\n",
                                't' => "\t",
                                'r' => "\r",
                                'b' => "\u{8}",
                                'f' => "\u{c}",
                                '\\' => "\\",
                                '\'' => "'",
                                '"' => "\"",
                                // Kept escaped: they mean a literal % or _ inside LIKE.
                                '%' => "\\%",
                                '_' => "\\_",
                                other => {
                                    return Err(malformed(format!(
                                        "Invalid string literal: unknown escape \\{other}"
                                    )));
                                }
                            });
                            i += 2;
                        }
                        Some(&c) => (text.push(c), i += 1).1,
                    }
                }
                tokens.push(Token::Str(text));
                i += 1;
            }
            '=' => (tokens.push(Token::Op("=")), i += 1).1,
            '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('>')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    _ => return Err(malformed(format!("unexpected token: '{c}'"))),
                };
                tokens.push(Token::Op(op));
                i += len;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                tokens.push(Token::Num(
                    text.parse()
                        .map_err(|_| malformed(format!("bad number {text}")))?,
                ));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => return Err(malformed(format!("unexpected token: '{other}'"))),
        }
    }
    Ok(tokens)
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Text(String),
    Number(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone)]
enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Compare {
        field: &'static str,
        op: &'static str,
        value: Literal,
    },
    In {
        field: &'static str,
        values: Vec<Literal>,
        negated: bool,
    },
    Like {
        field: &'static str,
        pattern: String,
        negated: bool,
    },
}

#[derive(Debug, Clone)]
struct OrderBy {
    field: &'static str,
    descending: bool,
    nulls_first: bool,
}

/// A parsed query, bound to an object's fields.
#[derive(Debug, Clone)]
pub struct Query {
    object: &'static SObject,
    /// Empty for `SELECT COUNT()`.
    fields: Vec<&'static str>,
    count_only: bool,
    condition: Option<Condition>,
    order: Vec<OrderBy>,
    limit: Option<usize>,
    offset: usize,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    object: Option<&'static SObject>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat(&mut self, word: &str) -> bool {
        let found = self.keyword(word);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, word: &str) -> Result<(), Failure> {
        if self.eat(word) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected {word}")))
        }
    }

    fn unexpected(&self, context: &str) -> Failure {
        match self.peek() {
            Some(token) => malformed(format!("unexpected token: {} ({context})", describe(token))),
            None => malformed(format!("unexpected end of query ({context})")),
        }
    }

    fn word(&mut self, context: &str) -> Result<String, Failure> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            _ => {
                self.pos -= 1;
                Err(self.unexpected(context))
            }
        }
    }

    fn field(&self, name: &str) -> Result<&'static str, Failure> {
        let object = self.object.expect("FROM parsed before fields are bound");
        if name.contains('.') {
            return Err(Failure::new(
                400,
                "INVALID_FIELD",
                format!(
                    "relationship fields like '{name}' are not supported by the rulesforce emulator"
                ),
            ));
        }
        object.field(name).map(|f| f.name).ok_or_else(|| {
            Failure::new(
                400,
                "INVALID_FIELD",
                format!(
                    "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.",
                    object.name
                ),
            )
        })
    }

    fn literal(&mut self, field: &'static str) -> Result<Literal, Failure> {
        let literal = match self.next() {
            Some(Token::Str(s)) => Literal::Text(s),
            Some(Token::Num(n)) => Literal::Number(n),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            _ => {
                self.pos -= 1;
                return Err(self.unexpected("expected a value"));
            }
        };
        // Ids compare in their 18-character form, whichever form the query used.
        let kind = self.object.and_then(|o| o.field(field)).map(|f| f.kind);
        if let (Some(Kind::Id | Kind::Reference(_)), Literal::Text(raw)) = (kind, &literal) {
            return Ok(match SfId::parse(raw) {
                Ok(id) => Literal::Text(id.to_string()),
                Err(_) => {
                    return Err(Failure::new(
                        400,
                        "INVALID_QUERY_FILTER_OPERATOR",
                        format!("invalid ID field: {raw}"),
                    ));
                }
            });
        }
        Ok(literal)
    }

    fn condition(&mut self) -> Result<Condition, Failure> {
        let mut left = self.conjunction()?;
        while self.eat("OR") {
            left = Condition::Or(Box::new(left), Box::new(self.conjunction()?));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Condition, Failure> {
        let mut left = self.unary()?;
        while self.eat("AND") {
            left = Condition::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, Failure> {
        if self.eat("NOT") {
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.condition()?;
            if self.next() != Some(Token::Close) {
                self.pos -= 1;
                return Err(self.unexpected("expected )"));
            }
            return Ok(inner);
        }
        let name = self.word("expected a field")?;
        let field = self.field(&name)?;
        let negated = self.eat("NOT");
        if self.eat("IN") {
            if self.next() != Some(Token::Open) {
                self.pos -= 1;
                return Err(self.unexpected("expected ( after IN"));
            }
            let mut values = vec![self.literal(field)?];
            while self.peek() == Some(&Token::Comma) {
                self.pos += 1;
                values.push(self.literal(field)?);
            }
            if self.next() != Some(Token::Close) {
                self.pos -= 1;
                return Err(self.unexpected("expected ) to close IN"));
            }
            return Ok(Condition::In {
                field,
                values,
                negated,
            });
        }
        if self.eat("LIKE") {
            let Some(Token::Str(pattern)) = self.next() else {
                self.pos -= 1;
                return Err(self.unexpected("LIKE takes a string"));
            };
            return Ok(Condition::Like {
                field,
                pattern,
                negated,
            });
        }
        if negated {
            return Err(self.unexpected("expected IN or LIKE after NOT"));
        }
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            _ => {
                self.pos -= 1;
                return Err(self.unexpected("expected an operator"));
            }
        };
        Ok(Condition::Compare {
            field,
            op,
            value: self.literal(field)?,
        })
    }

    fn count(&mut self) -> Result<usize, Failure> {
        match self.next() {
            Some(Token::Num(n)) if n >= 0.0 && n.fract() == 0.0 => Ok(n as usize),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("expected a whole number"))
            }
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("'{w}'"),
        Token::Str(s) => format!("'{s}'"),
        Token::Num(n) => n.to_string(),
        Token::Op(op) => format!("'{op}'"),
        Token::Comma => "','".into(),
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
    }
}

impl Query {
    pub fn parse(soql: &str) -> Result<Query, Failure> {
        let mut p = Parser {
            tokens: tokenize(soql)?,
            pos: 0,
            object: None,
        };
        p.expect("SELECT")?;
        let mut names = Vec::new();
        let mut count_only = false;
        if p.keyword("COUNT")
            && p.tokens.get(p.pos + 1) == Some(&Token::Open)
            && p.tokens.get(p.pos + 2) == Some(&Token::Close)
        {
            p.pos += 3;
            count_only = true;
        } else {
            loop {
                names.push(p.word("expected a field name")?);
                if p.peek() != Some(&Token::Comma) {
                    break;
                }
                p.pos += 1;
            }
        }
        p.expect("FROM")?;
        let object_name = p.word("expected an object name")?;
        let object = schema::object(&object_name).ok_or_else(|| {
            Failure::new(
                400,
                "INVALID_TYPE",
                format!("sObject type '{object_name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name."),
            )
        })?;
        p.object = Some(object);
        let fields = names
            .iter()
            .map(|n| p.field(n))
            .collect::<Result<Vec<_>, _>>()?;
        let condition = if p.eat("WHERE") {
            Some(p.condition()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if p.eat("ORDER") {
            p.expect("BY")?;
            loop {
                let name = p.word("expected a field to order by")?;
                let field = p.field(&name)?;
                let descending = p.eat("DESC");
                if !descending {
                    p.eat("ASC");
                }
                let nulls_first = if p.eat("NULLS") {
                    if p.eat("FIRST") {
                        true
                    } else {
                        p.expect("LAST")?;
                        false
                    }
                } else {
                    !descending
                };
                order.push(OrderBy {
                    field,
                    descending,
                    nulls_first,
                });
                if p.peek() != Some(&Token::Comma) {
                    break;
                }
                p.pos += 1;
            }
        }
        let limit = if p.eat("LIMIT") {
            Some(p.count()?)
        } else {
            None
        };
        let offset = if p.eat("OFFSET") { p.count()? } else { 0 };
        if p.peek().is_some() {
            return Err(p.unexpected("expected the end of the query"));
        }
        Ok(Query {
            object,
            fields,
            count_only,
            condition,
            order,
            limit,
            offset,
        })
    }

    /// Runs the query: the total count and the selected records, each with its
    /// `attributes` and only the selected fields, in the order they were selected.
    pub fn run(&self, db: &Db, version: &str) -> (usize, Vec<Value>) {
        let mut matched: Vec<Fields> = db
            .records(self.object)
            .into_iter()
            .filter(|r| self.condition.as_ref().is_none_or(|c| matches(c, r)))
            .collect();
        if !self.order.is_empty() {
            matched.sort_by(|a, b| {
                self.order
                    .iter()
                    .fold(Ordering::Equal, |acc, o| acc.then_with(|| order(o, a, b)))
            });
        }
        let rows: Vec<Fields> = matched
            .into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        if self.count_only {
            return (rows.len(), Vec::new());
        }
        let records = rows
            .iter()
            .map(|record| {
                let id = record.get("Id").and_then(Value::as_str).unwrap_or_default();
                let mut out = serde_json::Map::new();
                out.insert(
                    "attributes".into(),
                    json!({"type": self.object.name, "url": format!("/services/data/v{version}/sobjects/{}/{id}", self.object.name)}),
                );
                for field in &self.fields {
                    out.insert((*field).into(), record.get(*field).cloned().unwrap_or(Value::Null));
                }
                Value::Object(out)
            })
            .collect::<Vec<_>>();
        (records.len(), records)
    }
}

fn compare(value: &Value, literal: &Literal) -> Option<Ordering> {
    match (value, literal) {
        (Value::String(a), Literal::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::Number(a), Literal::Number(b)) => a.as_f64()?.partial_cmp(b),
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn equals(value: &Value, literal: &Literal) -> bool {
    match literal {
        Literal::Null => value.is_null(),
        _ => compare(value, literal) == Some(Ordering::Equal),
    }
}

fn matches(condition: &Condition, record: &Fields) -> bool {
    let get = |field: &str| record.get(field).unwrap_or(&Value::Null);
    match condition {
        Condition::And(a, b) => matches(a, record) && matches(b, record),
        Condition::Or(a, b) => matches(a, record) || matches(b, record),
        Condition::Not(inner) => !matches(inner, record),
        Condition::Compare { field, op, value } => {
            let actual = get(field);
            match *op {
                "=" => equals(actual, value),
                "!=" => !equals(actual, value),
                op => match compare(actual, value) {
                    Some(ordering) => match op {
                        "<" => ordering == Ordering::Less,
                        "<=" => ordering != Ordering::Greater,
                        ">" => ordering == Ordering::Greater,
                        _ => ordering != Ordering::Less,
                    },
                    None => false,
                },
            }
        }
        Condition::In {
            field,
            values,
            negated,
        } => values.iter().any(|v| equals(get(field), v)) != *negated,
        Condition::Like {
            field,
            pattern,
            negated,
        } => {
            let hit = get(field)
                .as_str()
                .is_some_and(|text| like(&text.to_lowercase(), &pattern.to_lowercase()));
            hit != *negated
        }
    }
}

/// SOQL LIKE: `%` any run, `_` one character, `\%` and `\_` literal.
fn like(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut parts = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        parts.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Char(chars.next().unwrap_or('\\')),
            c => P::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // reachable[j]: the first j pattern parts can match the text read so far.
    let mut reachable = vec![false; parts.len() + 1];
    reachable[0] = true;
    for j in 0..parts.len() {
        if parts[j] == P::Any && reachable[j] {
            reachable[j + 1] = true;
        }
    }
    for &c in &text {
        let mut next = vec![false; parts.len() + 1];
        for j in 0..parts.len() {
            if !reachable[j] {
                continue;
            }
            match parts[j] {
                P::Any => {
                    next[j] = true;
                    next[j + 1] = true;
                }
                P::One => next[j + 1] = true,
                P::Char(p) => next[j + 1] |= p == c,
            }
        }
        for j in 0..parts.len() {
            if parts[j] == P::Any && next[j] {
                next[j + 1] = true;
            }
        }
        reachable = next;
    }
    reachable[parts.len()]
}

fn order(by: &OrderBy, a: &Fields, b: &Fields) -> Ordering {
    let null = Value::Null;
    let (x, y) = (
        a.get(by.field).unwrap_or(&null),
        b.get(by.field).unwrap_or(&null),
    );
    match (x.is_null(), y.is_null()) {
        (true, true) => return Ordering::Equal,
        (true, false) => {
            return if by.nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        (false, true) => {
            return if by.nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        _ => {}
    }
    let ordering = match (x, y) {
        (Value::String(a), Value::String(b)) => a.to_lowercase().cmp(&b.to_lowercase()),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        _ => Ordering::Equal,
    };
    if by.descending {
        ordering.reverse()
    } else {
        ordering
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_follows_soql_wildcards() {
        assert!(like("trial nurture", "trial%"));
        assert!(like("trial nurture", "%nur%"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_"));
        assert!(like("100%", "100\\%"));
        assert!(!like("1000", "100\\%"));
        assert!(like("", "%"));
    }

    #[test]
    fn parses_the_supported_subset() {
        let q = Query::parse("select id, name from campaign where (name = 'A' or name like 'B%') and IsActive = true order by Name desc nulls last limit 5 offset 1").unwrap();
        assert_eq!(q.fields, vec!["Id", "Name"]);
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.offset, 1);
        assert!(q.order[0].descending && !q.order[0].nulls_first);
    }

    #[test]
    fn reports_bad_queries_like_salesforce() {
        let err = Query::parse("SELECT Id FORM Campaign").unwrap_err();
        assert_eq!(err.error.error_code, "MALFORMED_QUERY");
        assert!(
            err.error.message.contains("'FORM'"),
            "{}",
            err.error.message
        );
        assert_eq!(
            Query::parse("SELECT Nope FROM Lead")
                .unwrap_err()
                .error
                .error_code,
            "INVALID_FIELD"
        );
        assert_eq!(
            Query::parse("SELECT Id FROM Widget")
                .unwrap_err()
                .error
                .error_code,
            "INVALID_TYPE"
        );
        assert_eq!(
            Query::parse("SELECT Id FROM Lead WHERE Email = 'x")
                .unwrap_err()
                .error
                .error_code,
            "MALFORMED_QUERY"
        );
    }
}
