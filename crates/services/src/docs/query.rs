//! Query parameters as the HTTP API takes them: `where=<field> <op> <JSON value>` (repeated;
//! ops `==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `prefix`), `order=<field>[:desc]`, `limit=`,
//! `cursor=` (from the previous page). Only declared fields (`indexes`) may be filtered or
//! sorted on, so every query is served from an index.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use updraft_manifest::Collection;
use updraft_store::{DocQuery, Filter, FilterOp, MAX_IN_VALUES};

use super::{DocConfig, DocError};

/// Longest document id, in bytes.
const MAX_ID_BYTES: usize = 256;

/// Checks a client-chosen document id.
pub(super) fn check_id(id: &str) -> Result<(), DocError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.chars().any(|c| c.is_control() || c == '/') {
        return Err(DocError::Invalid(format!(
            "a document id is 1 to {MAX_ID_BYTES} bytes with no `/` or control characters"
        )));
    }
    Ok(())
}

/// A query's parameters.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    /// `where` filters.
    #[serde(default, rename = "where")]
    pub filters: Vec<String>,
    /// `order=<field>[:desc]`.
    pub order: Option<String>,
    /// Page size.
    pub limit: Option<usize>,
    /// Where the page starts.
    pub cursor: Option<String>,
}

fn op(s: &str) -> Option<FilterOp> {
    Some(match s {
        "==" | "=" => FilterOp::Eq,
        "!=" => FilterOp::Ne,
        "<" => FilterOp::Lt,
        "<=" => FilterOp::Le,
        ">" => FilterOp::Gt,
        ">=" => FilterOp::Ge,
        "in" => FilterOp::In,
        "prefix" => FilterOp::Prefix,
        _ => return None,
    })
}

fn indexed(spec: &Collection, field: &str) -> Result<(), DocError> {
    if spec.indexes.iter().any(|i| i == field) {
        Ok(())
    } else {
        Err(DocError::Invalid(format!(
            "`{field}` is not an indexed field of collection `{}` (declared: {}); add it to its \
             `indexes`",
            spec.name,
            if spec.indexes.is_empty() {
                "none".to_owned()
            } else {
                spec.indexes.join(", ")
            }
        )))
    }
}

/// The value at a dotted `path` of `doc`.
fn at<'a>(doc: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(doc, |v, k| v.get(k).unwrap_or(&Value::Null))
}

/// The cursor after `doc` (with id `id`) in `query`'s order.
pub(super) fn cursor(query: &DocQuery, doc: &Value, id: &str) -> String {
    let value = query
        .order
        .as_ref()
        .map_or(Value::Null, |(f, _)| at(doc, f).clone());
    URL_SAFE_NO_PAD.encode(Value::Array(vec![value, Value::String(id.to_owned())]).to_string())
}

impl Params {
    /// The store query, checked against the collection's declared fields and the limits.
    pub(super) fn to_query(
        &self,
        spec: &Collection,
        config: &DocConfig,
    ) -> Result<DocQuery, DocError> {
        let mut filters = Vec::new();
        for w in &self.filters {
            let bad = || {
                DocError::Invalid(format!(
                    "`where={w}` is not `<field> <op> <JSON value>` with op one of ==, !=, <, \
                     <=, >, >=, in, prefix (e.g. `status == \"paid\"`, `total >= 10`)"
                ))
            };
            let mut parts = w.trim().splitn(3, ' ');
            let (Some(field), Some(o), Some(value)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let o = op(o).ok_or_else(bad)?;
            let value: Value = serde_json::from_str(value.trim()).map_err(|_| bad())?;
            indexed(spec, field)?;
            match (o, &value) {
                (FilterOp::In, Value::Array(list)) if list.len() <= MAX_IN_VALUES => {}
                (FilterOp::In, _) => {
                    return Err(DocError::Invalid(format!(
                        "`in` takes a JSON list of at most {MAX_IN_VALUES} values"
                    )));
                }
                (FilterOp::Prefix, Value::String(_)) => {}
                (FilterOp::Prefix, _) => {
                    return Err(DocError::Invalid("`prefix` takes a JSON string".into()));
                }
                (_, Value::Array(_) | Value::Object(_)) => {
                    return Err(DocError::Invalid(format!(
                        "`{field}` can be compared with a string, number, boolean or null"
                    )));
                }
                _ => {}
            }
            filters.push(Filter {
                field: field.to_owned(),
                op: o,
                value,
            });
        }
        let order = match &self.order {
            None => None,
            Some(o) => {
                let (field, desc) = match o.rsplit_once(':') {
                    Some((f, "desc")) => (f, true),
                    Some((f, "asc")) => (f, false),
                    Some(_) => {
                        return Err(DocError::Invalid(format!(
                            "`order={o}` is `<field>`, `<field>:asc` or `<field>:desc`"
                        )));
                    }
                    None => (o.as_str(), false),
                };
                indexed(spec, field)?;
                Some((field.to_owned(), desc))
            }
        };
        let limit = self.limit.unwrap_or(config.page);
        if limit == 0 || limit > config.max_page {
            return Err(DocError::Invalid(format!(
                "`limit` is 1 to {} (`[documents] max_page`)",
                config.max_page
            )));
        }
        let after = match &self.cursor {
            None => None,
            Some(c) => {
                let bad = || DocError::Invalid("`cursor` is not one this API returned".into());
                let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
                match serde_json::from_slice::<Value>(&bytes).map_err(|_| bad())? {
                    Value::Array(mut v) if v.len() == 2 => match v.pop() {
                        Some(Value::String(id)) => Some((v.pop().unwrap_or(Value::Null), id)),
                        _ => return Err(bad()),
                    },
                    _ => return Err(bad()),
                }
            }
        };
        Ok(DocQuery {
            filters,
            order,
            after,
            limit,
            composites: spec.composite_indexes.clone(),
        })
    }
}

/// Whether `doc` passes every filter (for change streams, which filter in memory).
pub(super) fn matches(filters: &[Filter], doc: &Value) -> bool {
    filters.iter().all(|f| {
        let v = at(doc, &f.field);
        match f.op {
            FilterOp::Eq => same(v, &f.value),
            FilterOp::Ne => !v.is_null() && !same(v, &f.value),
            FilterOp::In => f
                .value
                .as_array()
                .is_some_and(|list| list.iter().any(|x| same(v, x))),
            FilterOp::Prefix => match (v, &f.value) {
                (Value::String(s), Value::String(p)) => s.starts_with(p.as_str()),
                _ => false,
            },
            op => match order(v, &f.value) {
                Some(o) => match op {
                    FilterOp::Lt => o.is_lt(),
                    FilterOp::Le => o.is_le(),
                    FilterOp::Gt => o.is_gt(),
                    _ => o.is_ge(),
                },
                None => false,
            },
        }
    })
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}
