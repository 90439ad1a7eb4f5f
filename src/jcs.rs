//! JSON Canonicalization Scheme (RFC 8785) for the `config` part of a key,
//! with one deliberate difference: numbers keep their exact decimal value.
//!
//! Equal configurations must name the same cache entry whatever their key
//! order, whitespace, number spelling or escapes, and different ones must not.
//! RFC 8785 prints numbers as IEEE doubles, which would give
//! `{"as_of_ns": 1700000000000000001}` the entry of `...000`; here numbers are
//! compared by their exact value and printed in ECMAScript notation from
//! their own digits ([`number`]), which is RFC 8785's output for every
//! shortest round-trip double. The parser is strict (RFC 8259 grammar,
//! I-JSON: numbers beyond the double range are refused) and rejects duplicate
//! member names, which RFC 8785 leaves undefined and which would make "equal"
//! ambiguous.

mod number;

use std::cmp::Ordering;

use crate::error::{Error, Result};

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// Returns the canonical form of `text`, or an `InvalidArgument` error that
/// says where the input went wrong.
pub fn canonicalize(text: &str) -> Result<String> {
    parse_as(text, "config JSON").map(|value| to_canonical(&value))
}

/// Parses `text` with the same strict rules into its canonical value (e.g.
/// an entry's key as stored in its file's footer, when maintenance
/// re-indexes the file, or a cache directory's binding).
pub(crate) fn parse(text: &str) -> Result<Value> {
    parse_as(text, "JSON")
}

/// The canonical text of `value`.
pub(crate) fn to_canonical(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn parse_as(text: &str, what: &'static str) -> Result<Value> {
    let mut parser = Parser { bytes: text.as_bytes(), pos: 0, what };
    parser.skip_ws();
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error("unexpected text after the JSON value"));
    }
    Ok(value)
}

/// A parsed JSON value in canonical form: numbers as their canonical text,
/// object members sorted as RFC 8785 sorts them, names unique.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `name` of an object; `None` for a missing member or a non-object.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        let Value::Object(members) = self else { return None };
        members
            .binary_search_by(|(member, _)| utf16_order(member, name))
            .ok()
            .map(|index| &members[index].1)
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as an `i64` when it is exactly an integer in range.
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            // Canonical integers below 1e21 are plain digits; anything with a
            // fraction or an exponent does not parse as an i64.
            Value::Number(text) => text.parse().ok(),
            _ => None,
        }
    }
}

/// RFC 8785 section 3.2.3: member names sort by their UTF-16 code units.
fn utf16_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// What the text is, for messages ("config JSON").
    what: &'static str,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::invalid_argument(format!("invalid {} at byte {}: {what}", self.what, self.pos))
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect_literal(&mut self, literal: &str, value: Value) -> Result<Value> {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            Ok(value)
        } else {
            Err(self.error("unknown literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested deeper than 128 levels"));
        }
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.expect_literal("true", Value::Bool(true)),
            Some(b'f') => self.expect_literal("false", Value::Bool(false)),
            Some(b'n') => self.expect_literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value> {
        self.pos += 1;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a member name"));
            }
            let name = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':' after a member name"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            members.push((name, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
        members.sort_by(|a, b| utf16_order(&a.0, &b.0));
        if let Some(pair) = members.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::invalid_argument(format!(
                "invalid {}: duplicate member name \"{}\"",
                self.what, pair[0].0
            )));
        }
        Ok(Value::Object(members))
    }

    fn array(&mut self, depth: usize) -> Result<Value> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u16::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("bad \\u escape"))?;
        self.pos += 4;
        Ok(digits)
    }

    fn string(&mut self) -> Result<String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input is a &str, so any run of plain bytes is valid UTF-8.
            out.push_str(std::str::from_utf8(&self.bytes[start..self.pos]).expect("input is UTF-8"));
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escape = self.peek().ok_or_else(|| self.error("unterminated escape"))?;
                    self.pos += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.error("unknown escape")),
                    }
                }
                Some(_) => return Err(self.error("unescaped control character in a string")),
            }
        }
    }

    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return Err(self.error("lone surrogate in \\u escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone surrogate in \\u escape"));
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone surrogate in \\u escape")),
            _ => u32::from(first),
        };
        char::from_u32(code).ok_or_else(|| self.error("bad \\u escape"))
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("bad number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("bad number: no digits after '.'"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("bad number: no digits in the exponent"));
            }
            self.digits();
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).expect("ASCII digits");
        match number::canonical(text) {
            Ok(canonical) => Ok(Value::Number(canonical)),
            Err(number::OutOfDoubleRange) => Err(self.error("number out of the IEEE 754 double range")),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(n),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (name, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(name, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

/// RFC 8785 section 3.2.2.2: only '"', '\\' and control characters are escaped.
pub(crate) fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::{canonicalize, parse, to_canonical, Value};
    use crate::error::Status;

    fn canon(s: &str) -> String {
        canonicalize(s).unwrap()
    }

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        assert_eq!(canon(" { \"b\" : 1 , \"a\" : [ true , null ] } "), r#"{"a":[true,null],"b":1}"#);
    }

    #[test]
    fn sorts_by_utf16_code_units() {
        // U+1F600 (surrogates D83D..) sorts before U+FB01 in UTF-16, after it in UTF-8.
        assert_eq!(canon("{\"\u{fb01}\":1,\"\u{1f600}\":2}"), "{\"\u{1f600}\":2,\"\u{fb01}\":1}");
    }

    #[test]
    fn numbers_take_the_ecmascript_form_of_their_exact_value() {
        assert_eq!(canon("[1.0, 1e2, -0, 0.000001, 1e-7, 1e21, 123456789012345678901, 4.50]"),
            "[1,100,0,0.000001,1e-7,1e+21,123456789012345678901,4.5]");
    }

    #[test]
    fn numbers_that_one_double_would_merge_stay_apart() {
        for (a, b) in [
            ("1700000000000000001", "1700000000000000000"),
            ("9007199254740993", "9007199254740992"),
            ("1e-400", "0"),
            ("0.30000000000000001", "0.3"),
        ] {
            assert_ne!(canon(&format!("{{\"as_of_ns\":{a}}}")), canon(&format!("{{\"as_of_ns\":{b}}}")), "{a} vs {b}");
        }
        assert_eq!(canon(r#"{"as_of_ns": 1700000000000000001}"#), r#"{"as_of_ns":1700000000000000001}"#);
        assert_eq!(canon("[1e-400, -1e-400]"), "[1e-400,-1e-400]");
        assert_eq!(canon("[1, 1.0, 1e0, 10e-1, -0, 0.0e7]"), "[1,1,1,1,0,0]");
    }

    #[test]
    fn huge_exponents_are_exact_or_refused_without_overflow() {
        assert_eq!(canon("1e-99999999999999999999"), "1e-99999999999999999999");
        assert_eq!(canon("0e99999999999999999999"), "0");
        let err = canonicalize("1e99999999999999999999").unwrap_err();
        assert!(err.message().contains("double range"), "{}", err.message());
    }

    /// An entry's key as its Parquet footer holds it reads back through the
    /// same parser, with typed access to each part.
    #[test]
    fn parses_a_footer_shaped_key() {
        let footer = r#"{"config":{"as_of_ns":1700000000000000001,"window":20},"end_date":19722,"feature_set":"ret\"urns","start_date":-3,"symbol":"AAPL"}"#;
        let value = parse(footer).unwrap();
        assert_eq!(to_canonical(&value), footer);
        assert_eq!(value.get("symbol").and_then(Value::as_str), Some("AAPL"));
        assert_eq!(value.get("feature_set").and_then(Value::as_str), Some("ret\"urns"));
        assert_eq!(value.get("start_date").and_then(Value::as_i64), Some(-3));
        assert_eq!(value.get("end_date").and_then(Value::as_i64), Some(19722));
        let config = value.get("config").unwrap();
        assert_eq!(to_canonical(config), r#"{"as_of_ns":1700000000000000001,"window":20}"#);
        assert_eq!(config.get("as_of_ns").and_then(Value::as_i64), Some(1_700_000_000_000_000_001));
        assert_eq!(config.get("window").and_then(Value::as_str), None, "a number is not a string");
        assert!(value.get("missing").is_none());
        assert!(value.get("symbol").unwrap().get("x").is_none(), "a string has no members");
        // Parsed text need not be canonical; its value is.
        let spaced = parse(r#" { "symbol" : "AAPL" , "end_date" : 1.9722e4 } "#).unwrap();
        assert_eq!(spaced.get("end_date").and_then(Value::as_i64), Some(19722));
        assert_eq!(to_canonical(&spaced), r#"{"end_date":19722,"symbol":"AAPL"}"#);
    }

    #[test]
    fn as_i64_is_for_exact_integers_in_range() {
        for (text, want) in [
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("1.5", None),
            ("1e21", None),
            ("2.0", Some(2)),
            ("-0", Some(0)),
            ("\"7\"", None),
            ("null", None),
        ] {
            assert_eq!(parse(text).unwrap().as_i64(), want, "{text}");
        }
    }

    #[test]
    fn parse_refuses_what_canonicalize_refuses() {
        let err = parse(r#"{"symbol":"A","symbol":"B"}"#).unwrap_err();
        assert_eq!(err.status(), Status::InvalidArgument);
        assert_eq!(err.message(), "invalid JSON: duplicate member name \"symbol\"");
        assert!(parse("[1,").unwrap_err().message().starts_with("invalid JSON at byte 3"));
    }

    #[test]
    fn get_finds_names_in_utf16_order() {
        let value = parse("{\"\u{fb01}\":1,\"\u{1f600}\":2,\"a\":3,\"\":4}").unwrap();
        assert_eq!(value.get("\u{fb01}").and_then(Value::as_i64), Some(1));
        assert_eq!(value.get("\u{1f600}").and_then(Value::as_i64), Some(2));
        assert_eq!(value.get("a").and_then(Value::as_i64), Some(3));
        assert_eq!(value.get("").and_then(Value::as_i64), Some(4));
    }

    #[test]
    fn strings_use_minimal_escapes() {
        assert_eq!(canon(r#""\u0041\/\u00e9\u001f\n""#), "\"A/\u{e9}\\u001f\\n\"");
        assert_eq!(canon(r#""\ud83d\ude00""#), "\"\u{1f600}\"");
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        for (bad, why) in [
            ("", "end of input"),
            ("{\"a\":1,\"a\":2}", "duplicate member name \"a\""),
            ("{\"a\":1,}", "member name"),
            ("[1,]", "expected a JSON value"),
            ("01", "after the JSON value"),
            ("1e400", "double range"),
            ("\"\\ud800\"", "lone surrogate"),
            ("\"a\nb\"", "control character"),
            ("nul", "literal"),
            ("{} x", "after the JSON value"),
        ] {
            let err = canonicalize(bad).unwrap_err();
            assert_eq!(err.status(), Status::InvalidArgument, "{bad}");
            assert!(err.message().contains(why), "{bad}: {}", err.message());
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(canonicalize(&deep).unwrap_err().message().contains("deeper"));
    }
}
