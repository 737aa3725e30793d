//! Just enough JSON for `target/<tool>/cluster.json`, the record of a running test cluster:
//! a value tree, a writer with stable key order, and a reader for what the writer produces
//! (objects, arrays, strings, integers, booleans, null). xtask has no dependencies (its
//! `Cargo.toml` says why), so this stands in for serde_json; other tools (`jq`) read the
//! file as ordinary JSON.

use alloc::collections::BTreeMap;
use core::fmt::{self, Write as _};

/// A JSON value. Numbers are integers: the state file holds ids, PIDs and milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Self>),
    /// Keys in sorted order, so the file is stable from one write to the next.
    Object(BTreeMap<String, Self>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub(crate) fn object<const N: usize>(pairs: [(&str, Self); N]) -> Self {
        Self::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// `obj[key]`, or `Null` when this is not an object or has no such key.
    pub(crate) fn get(&self, key: &str) -> &Self {
        match self {
            Self::Object(map) => map.get(key).unwrap_or(&Self::Null),
            _ => &Self::Null,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> &[Self] {
        match self {
            Self::Array(items) => items,
            _ => &[],
        }
    }

    /// Parses a whole document.
    ///
    /// # Errors
    /// Malformed or unsupported input (floats, `\u` escapes), with the byte offset.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut p = Parser {
            bytes: text.as_bytes(),
            pos: 0,
        };
        let value = p.value()?;
        p.skip_ws();
        if p.pos != p.bytes.len() {
            return Err(p.error("trailing characters"));
        }
        Ok(value)
    }
}

impl fmt::Display for Json {
    /// Pretty-printed, two-space indent (alternate flag) or compact (default).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_value(f, self, 0, f.alternate())
    }
}

fn write_value(f: &mut fmt::Formatter<'_>, v: &Json, depth: usize, pretty: bool) -> fmt::Result {
    let newline = |f: &mut fmt::Formatter<'_>, depth: usize| -> fmt::Result {
        if pretty {
            f.write_char('\n')?;
            for _ in 0..depth {
                f.write_str("  ")?;
            }
        }
        Ok(())
    };
    match v {
        Json::Null => f.write_str("null"),
        Json::Bool(b) => write!(f, "{b}"),
        Json::Int(n) => write!(f, "{n}"),
        Json::Str(s) => write_str(f, s),
        Json::Array(items) if items.is_empty() => f.write_str("[]"),
        Json::Object(map) if map.is_empty() => f.write_str("{}"),
        Json::Array(items) => {
            f.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                newline(f, depth + 1)?;
                write_value(f, item, depth + 1, pretty)?;
            }
            newline(f, depth)?;
            f.write_char(']')
        }
        Json::Object(map) => {
            f.write_char('{')?;
            for (i, (key, value)) in map.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                newline(f, depth + 1)?;
                write_str(f, key)?;
                f.write_str(if pretty { ": " } else { ":" })?;
                write_value(f, value, depth + 1, pretty)?;
            }
            newline(f, depth)?;
            f.write_char('}')
        }
    }
}

fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// A recursive-descent reader over the document's bytes.
struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn skip_ws(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(u8::is_ascii_whitespace)
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", byte as char)))
        }
    }

    fn keyword(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unknown literal"))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(map));
                }
                loop {
                    let key = self.string()?;
                    self.expect(b':')?;
                    map.insert(key, self.value()?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(map));
                        }
                        _ => return Err(self.error("expected `,` or `}`")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.error("expected `,` or `]`")),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.keyword("true", Json::Bool(true)),
            Some(b'f') => self.keyword("false", Json::Bool(false)),
            Some(b'n') => self.keyword("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                self.pos += 1;
                while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    self.pos += 1;
                }
                core::str::from_utf8(&self.bytes[start..self.pos])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map(Json::Int)
                    .ok_or_else(|| self.error("bad integer"))
            }
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&esc) = self.bytes.get(self.pos) else {
                        return Err(self.error("unterminated escape"));
                    };
                    self.pos += 1;
                    out.push(match esc {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'n' => b'\n',
                        b't' => b'\t',
                        _ => return Err(self.error("unsupported escape")),
                    });
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_pretty_and_compact() {
        let v = Json::object([
            ("mode", Json::Str("netns".into())),
            ("token", Json::Int(1000)),
            ("pid", Json::Null),
            ("up", Json::Bool(true)),
            (
                "nodes",
                Json::Array(vec![
                    Json::object([("id", Json::Int(1)), ("dir", Json::Str("a \"b\"\\".into()))]),
                    Json::Array(vec![]),
                ]),
            ),
        ]);
        for text in [format!("{v}"), format!("{v:#}")] {
            assert_eq!(Json::parse(&text), Ok(v.clone()), "{text}");
        }
        assert_eq!(v.get("token").as_int(), Some(1000));
        assert_eq!(v.get("nodes").as_array().len(), 2);
        assert_eq!(v.get("missing"), &Json::Null);
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"x", "1.5", "tru", "{} x"] {
            assert!(Json::parse(bad).is_err(), "{bad}");
        }
    }
}
