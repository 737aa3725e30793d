//! The corosync.conf syntax: nested `name {` … `}` sections of `key: value` lines, `#`
//! comments. Parsed into a tree that keeps every item's line, so every later error can say
//! file, line and reason (corosync says only "parse error in config").
//!
//! Accepted like corosync: leading/trailing blanks, blank lines, `#` comments on their own
//! line, values running to the end of the line (trimmed; `:` allowed inside a value),
//! a value-less `key:`. Refused with a precise error: a `{` after something other than a bare
//! name (corosync: "Extra characters after opening bracket"), an unmatched `}`, an unclosed
//! section at the end of the file, a line that is neither, and a file that is not UTF-8.

use alloc::fmt;

/// One item of a section: a `key: value` pair or a nested section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `key: value`.
    Pair {
        /// The key, as written.
        key: String,
        /// The value, trimmed (may be empty).
        value: String,
        /// 1-based line number.
        line: u32,
    },
    /// `name { ... }`.
    Section(Section),
}

/// A named section and its items, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// The section's name (empty for the file's top level).
    pub name: String,
    /// Line of the opening `{` (0 for the top level).
    pub line: u32,
    /// Items in file order.
    pub items: Vec<Item>,
}

impl Section {
    /// The sub-sections called `name`, in order.
    pub fn sections<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Self> + 'a {
        self.items.iter().filter_map(move |i| match i {
            Item::Section(s) if s.name == name => Some(s),
            _ => None,
        })
    }

    /// The pairs of this section, in order: (key, value, line).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str, u32)> + '_ {
        self.items.iter().filter_map(|i| match i {
            Item::Pair { key, value, line } => Some((key.as_str(), value.as_str(), *line)),
            Item::Section(_) => None,
        })
    }
}

/// A syntax error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: u32,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Parses a whole file's text.
///
/// # Errors
/// The first [`SyntaxError`].
pub fn parse(text: &str) -> Result<Section, SyntaxError> {
    // A stack of open sections; the top level is the bottom.
    let mut stack: Vec<Section> = vec![Section::default()];
    for (idx, raw) in text.lines().enumerate() {
        let line = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let err = |reason: String| SyntaxError { line, reason };
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l == "}" {
            if stack.len() == 1 {
                return Err(err("'}' without a section to close".into()));
            }
            // The stack has at least two entries here.
            let done = stack.pop().unwrap_or_default();
            if let Some(parent) = stack.last_mut() {
                parent.items.push(Item::Section(done));
            }
            continue;
        }
        if let Some(name) = l.strip_suffix('{') {
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(err(format!(
                    "'{{' must follow a bare section name, found {name:?} (one item per line)"
                )));
            }
            stack.push(Section {
                name: name.to_owned(),
                line,
                items: Vec::new(),
            });
            continue;
        }
        if l.contains('{') {
            // corosync: "Extra characters after opening bracket '{'".
            return Err(err(
                "extra characters after the section's opening '{' (one item per line)".into(),
            ));
        }
        let Some((key, value)) = l.split_once(':') else {
            return Err(err(format!(
                "expected 'key: value', 'name {{' or '}}', found {l:?}"
            )));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(err(format!("bad key {key:?}")));
        }
        if let Some(top) = stack.last_mut() {
            top.items.push(Item::Pair {
                key: key.to_owned(),
                value: value.trim().to_owned(),
                line,
            });
        }
    }
    if stack.len() > 1 {
        let open = stack.last().map_or(0, |s| s.line);
        let name = stack.last().map(|s| s.name.clone()).unwrap_or_default();
        return Err(SyntaxError {
            line: open,
            reason: format!("section '{name}' is never closed"),
        });
    }
    Ok(stack.pop().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_sections_with_lines() {
        let text = "# comment\ntotem {\n  version: 2\n  interface {\n    mcastport: 5405\n  }\n}\nnodelist {\n node {\n  ring0_addr: 10.213.0.1\n  nodeid: 1\n }\n}\n";
        let top = parse(text).unwrap();
        let totem = top.sections("totem").next().unwrap();
        assert_eq!(totem.line, 2);
        assert_eq!(totem.pairs().collect::<Vec<_>>(), [("version", "2", 3)]);
        let iface = totem.sections("interface").next().unwrap();
        assert_eq!(iface.pairs().next(), Some(("mcastport", "5405", 5)));
        let node = top
            .sections("nodelist")
            .next()
            .unwrap()
            .sections("node")
            .next()
            .unwrap();
        assert_eq!(node.pairs().count(), 2);
    }

    #[test]
    fn values_keep_colons_and_may_be_empty() {
        let top = parse("a {\n addr: fd13:213::1\n empty:\n}\n").unwrap();
        let a = top.sections("a").next().unwrap();
        assert_eq!(
            a.pairs().collect::<Vec<_>>(),
            [("addr", "fd13:213::1", 2), ("empty", "", 3)]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(parse("a {\n").unwrap_err().line, 1);
        assert_eq!(parse("}\n").unwrap_err().line, 1);
        assert_eq!(parse("a {\n junk\n}\n").unwrap_err().line, 2);
        let e = parse("node { name: n1\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(
            e.reason.contains("bare section name") || e.reason.contains("opening"),
            "{e}"
        );
        assert!(parse("a b {\n}\n").is_err());
        assert!(parse("a {\n bad key: 1\n}\n").is_err());
    }
}
