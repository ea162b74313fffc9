//! Access rules: one CEL expression per operation of a collection, compiled when the app is
//! deployed and evaluated per document. A rule sees `auth` (the verified user's claims with
//! `uid`, or `null` for an anonymous caller), `id` (the document's id), `doc` (the stored
//! document, `null` on create) and `newDoc` (the document as it would be written, `null` on
//! get, list and delete). Anything but `true` (`false`, an error, a non-boolean) denies.

use std::collections::BTreeMap;

use serde_json::Value;
use updraft_manifest::Collection;

/// A collection's compiled rules.
pub(crate) struct Rules {
    programs: BTreeMap<String, cel::Program>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.programs.keys()).finish()
    }
}

impl Rules {
    /// Compiles `collection`'s rules; the error names the rule and what is wrong with it.
    pub(crate) fn compile(collection: &Collection) -> Result<Self, String> {
        let mut programs = BTreeMap::new();
        for (op, source) in &collection.rules {
            let program = cel::Program::compile(source).map_err(|e| {
                format!(
                    "collection `{}`: rule `{op}` is not a valid CEL expression: {}",
                    collection.name,
                    e.to_string().trim()
                )
            })?;
            programs.insert(op.clone(), program);
        }
        Ok(Self { programs })
    }

    /// Whether the collection has a rule for `op`.
    pub(crate) fn has(&self, op: &str) -> bool {
        self.programs.contains_key(op)
    }

    /// Whether the rule for `op` allows it (no rule: it does not).
    pub(crate) fn allows(
        &self,
        op: &str,
        auth: &Value,
        id: &str,
        doc: Option<&Value>,
        new_doc: Option<&Value>,
    ) -> bool {
        let Some(program) = self.programs.get(op) else {
            return false;
        };
        let mut ctx = cel::Context::default();
        let vars = [
            ("auth", auth.clone()),
            ("id", Value::String(id.to_owned())),
            ("doc", doc.cloned().unwrap_or(Value::Null)),
            ("newDoc", new_doc.cloned().unwrap_or(Value::Null)),
        ];
        for (name, value) in vars {
            if ctx.add_variable(name, value).is_err() {
                return false;
            }
        }
        matches!(program.execute(&ctx), Ok(cel::Value::Bool(true)))
    }
}
