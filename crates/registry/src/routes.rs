//! The route table: request path and method → function.
//!
//! Built once per deploy and then only read. Lookup walks the routes in specificity order (most
//! specific first, see [`updraft_manifest::RoutePattern::specificity`]) and returns the first whose pattern and
//! methods match; if some pattern matched but no method did, the answer is 405 with the methods
//! that would have worked.

use std::sync::Arc;

use updraft_manifest::{HttpTrigger, RouteMatch};

use updraft_dispatch::Function;

/// One entry: a trigger and the function it invokes.
#[derive(Clone)]
pub struct Route {
    /// The trigger from the manifest.
    pub trigger: HttpTrigger,
    /// The function to invoke.
    pub function: Arc<Function>,
    /// The pattern as text, computed once (it is sent to the guest on every request).
    pub pattern: String,
    key: Vec<u8>,
}

/// Routes sorted by specificity.
#[derive(Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// Two routes that cannot coexist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "route `{route}` of function `{function}` conflicts with `{other_route}` of function `{other_function}`"
)]
pub struct RouteConflict {
    /// The route being added.
    pub route: String,
    /// Its function.
    pub function: String,
    /// The route already there.
    pub other_route: String,
    /// Its function.
    pub other_function: String,
}

/// The result of a lookup.
pub enum Lookup<'a> {
    /// A route matched.
    Found(&'a Route, RouteMatch),
    /// Routes matched the path but none accepts the method; these methods would.
    MethodNotAllowed(Vec<String>),
    /// Nothing matched.
    NotFound,
}

impl RouteTable {
    /// Builds a table, rejecting routes with the same shape and overlapping methods.
    ///
    /// # Errors
    /// The first [`RouteConflict`] found.
    pub fn new(
        entries: impl IntoIterator<Item = (HttpTrigger, Arc<Function>)>,
    ) -> Result<Self, RouteConflict> {
        let entries: Vec<(HttpTrigger, Arc<Function>)> = entries.into_iter().collect();
        Self::check(entries.iter().map(|(t, f)| (t, f.name.as_str())))?;
        let mut routes: Vec<Route> = Vec::new();
        for (trigger, function) in entries {
            let key = trigger.route.specificity();
            routes.push(Route {
                pattern: trigger.route.to_string(),
                trigger,
                function,
                key,
            });
        }
        // Stable sort: among equal keys (disjoint methods), file order is kept.
        routes.sort_by(|a, b| b.key.cmp(&a.key));
        Ok(Self { routes })
    }

    /// Checks that routes (each with its function's name) can coexist, without building a
    /// table.
    ///
    /// # Errors
    /// The first [`RouteConflict`] found.
    pub fn check<'a>(
        entries: impl IntoIterator<Item = (&'a HttpTrigger, &'a str)>,
    ) -> Result<(), RouteConflict> {
        let mut seen: Vec<(&HttpTrigger, &str)> = Vec::new();
        for (trigger, function) in entries {
            if let Some((other, other_function)) = seen.iter().find(|(r, _)| {
                r.route.shape() == trigger.route.shape() && r.methods_overlap(trigger)
            }) {
                return Err(RouteConflict {
                    route: trigger.route.to_string(),
                    function: function.to_owned(),
                    other_route: other.route.to_string(),
                    other_function: (*other_function).to_owned(),
                });
            }
            seen.push((trigger, function));
        }
        Ok(())
    }

    /// Finds the route for a request.
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_> {
        let mut allowed: Vec<String> = Vec::new();
        for route in &self.routes {
            let Some(m) = route.trigger.route.matches(path) else {
                continue;
            };
            if route.trigger.accepts(method) {
                return Lookup::Found(route, m);
            }
            allowed.extend(route.trigger.methods.iter().map(|m| m.as_str().to_owned()));
        }
        if allowed.is_empty() {
            Lookup::NotFound
        } else {
            allowed.sort();
            allowed.dedup();
            Lookup::MethodNotAllowed(allowed)
        }
    }

    /// Every route, most specific first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}
