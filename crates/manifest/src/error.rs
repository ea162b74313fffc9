//! Manifest errors that point at the file, line and key.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `functions[1].http[0].route`; empty for whole-file problems.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Why a manifest could not be loaded: one or more [`Problem`]s in the named file.
///
/// Displays one line per problem: `updraft.toml:12: functions[1].http[0].route: must start with '/'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The file name as the user gave it.
    pub file: String,
    /// Everything found wrong, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", self.file)?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
            if !p.key.is_empty() {
                write!(f, "{}: ", p.key)?;
            }
            f.write_str(&p.message)?;
        }
        Ok(())
    }
}

/// A step in a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// Renders a key path as `functions[1].http[0].route`.
pub(crate) fn render_path(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The parsed TOML document with spans, used to turn key paths into lines and spans into key
/// paths.
pub(crate) struct Locator<'a> {
    text: &'a str,
    root: Option<Spanned<DeTable<'a>>>,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            root: DeTable::parse(text).ok(),
        }
    }

    /// 1-based line number of a byte offset.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// The line of the value at `path`, or of its nearest ancestor that exists.
    pub(crate) fn line_of_path(&self, path: &[Step]) -> Option<usize> {
        let root = self.root.as_ref()?;
        let mut span = None;
        let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        for step in path {
            let next = match (step, table, value) {
                (Step::Key(k), Some(t), _) => {
                    // Prefer the key's own span: it is where a reader looks.
                    if let Some((key, v)) = t.get_key_value(k.as_str()) {
                        span = Some(key.span());
                        Some(v)
                    } else {
                        None
                    }
                }
                (Step::Index(i), _, Some(v)) => v.get_ref().get(*i).inspect(|v| {
                    span = Some(v.span());
                }),
                _ => None,
            };
            let Some(next) = next else { break };
            value = Some(next);
            table = next.get_ref().as_table();
        }
        span.map(|s| self.line_of(s.start))
    }

    /// The key path of the innermost key or value whose span contains `target`.
    pub(crate) fn path_at(&self, target: &Range<usize>) -> Vec<Step> {
        let mut path = Vec::new();
        if let Some(root) = &self.root {
            walk_table(root.get_ref(), target, &mut path);
        }
        path
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Depth-first search for the key or scalar value whose span contains `target`. Spans of
/// array-of-tables items cover only their `[[header]]`, so every child is searched rather than
/// pruning by the parent's span.
fn walk_table(table: &DeTable<'_>, target: &Range<usize>, path: &mut Vec<Step>) -> bool {
    for (key, value) in table {
        path.push(Step::Key(key.get_ref().to_string()));
        if contains(&key.span(), target) || walk_value(value, target, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn walk_value(value: &Spanned<DeValue<'_>>, target: &Range<usize>, path: &mut Vec<Step>) -> bool {
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, target, path),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(Step::Index(i));
                if walk_value(item, target, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => contains(&value.span(), target),
    }
}
