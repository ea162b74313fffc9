//! Route patterns: `/`, `/users/:id`, `/static/...`.
//!
//! A pattern is a list of segments, each a literal or a `:param`, optionally ending in a `...`
//! wildcard that matches zero or more remaining segments. When several patterns match a path, the
//! most specific wins: compared segment by segment, a literal beats a parameter, a parameter beats
//! the wildcard, and ending exactly beats a wildcard ([`RoutePattern::specificity`]). Two patterns
//! with the same shape (equal up to parameter names) are a conflict.

use std::fmt;

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// Matches any one non-empty segment and binds it to this name.
    Param(String),
}

/// A parsed, valid route pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutePattern {
    segments: Vec<Segment>,
    wildcard: bool,
}

/// Why a route pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The pattern does not start with `/`.
    #[error("must start with '/'")]
    NoLeadingSlash,
    /// Two slashes in a row, or a trailing slash after a segment.
    #[error("has an empty segment (\"//\" or a trailing '/')")]
    EmptySegment,
    /// `...` somewhere other than the last segment.
    #[error("'...' may only be the last segment")]
    WildcardNotLast,
    /// A `:param` whose name is empty or has characters other than letters, digits, `_` and `-`.
    #[error("parameter `{0}` must be ':' followed by letters, digits, '_' or '-'")]
    BadParam(String),
    /// The same parameter name twice.
    #[error("parameter `:{0}` appears twice")]
    DuplicateParam(String),
    /// A literal segment with characters that never appear in a decoded path segment.
    #[error("segment `{0}` has characters not allowed in a path ('?', '#', '*' or whitespace)")]
    BadLiteral(String),
}

/// The result of matching a path against a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteMatch {
    /// `(name, value)` for each `:param`, in pattern order.
    pub params: Vec<(String, String)>,
    /// The part of the path matched by a trailing `...` (starting with `/`, or empty).
    pub rest: Option<String>,
}

impl RoutePattern {
    /// Parses a pattern.
    ///
    /// # Errors
    /// [`RouteError`] naming the first thing wrong with it.
    pub fn parse(s: &str) -> Result<Self, RouteError> {
        let Some(rest) = s.strip_prefix('/') else {
            return Err(RouteError::NoLeadingSlash);
        };
        let mut segments = Vec::new();
        let mut wildcard = false;
        if rest.is_empty() {
            return Ok(Self { segments, wildcard });
        }
        let parts: Vec<&str> = rest.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() {
                return Err(RouteError::EmptySegment);
            }
            if *part == "..." {
                if i + 1 != parts.len() {
                    return Err(RouteError::WildcardNotLast);
                }
                wildcard = true;
            } else if let Some(name) = part.strip_prefix(':') {
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    return Err(RouteError::BadParam((*part).to_owned()));
                }
                if segments
                    .iter()
                    .any(|s| matches!(s, Segment::Param(n) if n == name))
                {
                    return Err(RouteError::DuplicateParam(name.to_owned()));
                }
                segments.push(Segment::Param(name.to_owned()));
            } else {
                if part
                    .chars()
                    .any(|c| c == '?' || c == '#' || c == '*' || c.is_whitespace())
                {
                    return Err(RouteError::BadLiteral((*part).to_owned()));
                }
                segments.push(Segment::Literal((*part).to_owned()));
            }
        }
        Ok(Self { segments, wildcard })
    }

    /// The pattern's segments, without the wildcard.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the pattern ends in `...`.
    pub fn has_wildcard(&self) -> bool {
        self.wildcard
    }

    /// Matches a request path (without query). Returns the bound parameters on a match.
    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let path = path.strip_prefix('/')?;
        let mut parts = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect::<Vec<_>>()
        };
        // A single trailing slash is tolerated: `/users/` matches `/users`.
        if parts.last() == Some(&"") {
            parts.pop();
        }
        if parts.len() < self.segments.len()
            || (!self.wildcard && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut m = RouteMatch::default();
        for (seg, part) in self.segments.iter().zip(&parts) {
            match seg {
                Segment::Literal(lit) if lit == part => {}
                Segment::Param(name) if !part.is_empty() => {
                    m.params.push((name.clone(), (*part).to_owned()));
                }
                _ => return None,
            }
        }
        if self.wildcard {
            let rest = &parts[self.segments.len()..];
            m.rest = Some(if rest.is_empty() {
                String::new()
            } else {
                format!("/{}", rest.join("/"))
            });
        }
        Some(m)
    }

    /// A key that orders patterns by specificity: the larger key wins when both match a path.
    pub fn specificity(&self) -> Vec<u8> {
        const WILDCARD: u8 = 1;
        const PARAM: u8 = 2;
        const LITERAL: u8 = 3;
        const END: u8 = 4;
        let mut key: Vec<u8> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => LITERAL,
                Segment::Param(_) => PARAM,
            })
            .collect();
        key.push(if self.wildcard { WILDCARD } else { END });
        key
    }

    /// The pattern with parameter names erased: two patterns with the same shape conflict.
    pub fn shape(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(_) => out.push(':'),
            }
        }
        if self.wildcard {
            out.push_str("/...");
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() && !self.wildcard {
            return f.write_str("/");
        }
        for s in &self.segments {
            match s {
                Segment::Literal(l) => write!(f, "/{l}")?,
                Segment::Param(p) => write!(f, "/:{p}")?,
            }
        }
        if self.wildcard {
            f.write_str("/...")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
