//! Projects: created, listed, given custom domains and deleted under the registry's lock, so
//! a deploy never lands in a project being deleted and a domain never serves two projects.

use updraft_api::{Code, DEFAULT_PROJECT, ProjectInfo};
use updraft_manifest::Name;
use updraft_store::ProjectRecord;

use crate::{Error, Registry};

/// Longest host name (RFC 1035).
const MAX_DOMAIN: usize = 253;

/// `d` trimmed and lower-cased, if it is a host name: dot-separated labels of 1 to 63 letters,
/// digits and '-' (not at either end), 253 characters in all; no port, wildcard or trailing
/// dot.
pub fn domain_name(d: &str) -> Option<String> {
    let d = d.trim().to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (d.len() <= MAX_DOMAIN && d.split('.').all(label_ok)).then_some(d)
}

/// A custom domain, lower-cased, or why it is not one.
fn domain(d: &str) -> Result<String, Error> {
    if let Some(d) = domain_name(d) {
        Ok(d)
    } else {
        let d = d.trim();
        Err(Error::new(
            Code::BadRequest,
            format!(
                "`{d}` is not a domain name: dot-separated labels of letters, digits and '-' \
                 (no port, scheme or wildcard)"
            ),
        ))
    }
}

/// An origin as browsers send it (`https://app.example.com`, `http://localhost:5173`),
/// lower-cased, or `*`.
fn origin(o: &str) -> Result<String, Error> {
    let o = o.trim().to_ascii_lowercase();
    if o == "*" {
        return Ok(o);
    }
    let bad = || {
        Error::new(
            Code::BadRequest,
            format!("`{o}` is not an origin: scheme://host[:port] (no path), or *"),
        )
    };
    let (scheme, rest) = o.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return Err(bad());
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) || domain(host).is_err() && host != "[::1]" {
        return Err(bad());
    }
    Ok(o)
}

fn info(p: &ProjectRecord, functions: usize) -> ProjectInfo {
    ProjectInfo {
        name: p.id.clone(),
        domains: p.domains.clone(),
        cors_origins: p.cors_origins.clone(),
        functions,
        created_at: p.created_at,
    }
}

impl Registry {
    /// Every project (only `only`, if given), by name.
    pub async fn projects(&self, only: Option<&str>) -> Vec<ProjectInfo> {
        let deployed = self.deployed.lock().await;
        deployed
            .projects
            .values()
            .filter(|p| only.is_none_or(|o| o == p.id))
            .map(|p| info(p, deployed.entries.get(&p.id).map_or(0, |e| e.len())))
            .collect()
    }

    /// Creates project `name` with custom `domains`.
    ///
    /// # Errors
    /// [`Code::BadRequest`] for a bad name or domain, [`Code::Conflict`] if it exists or a
    /// domain serves another project.
    pub async fn create_project(
        &self,
        name: &str,
        domains: &[String],
    ) -> Result<ProjectInfo, Error> {
        Name::new(name).map_err(|e| Error::new(Code::BadRequest, format!("project: {e}")))?;
        let mut deployed = self.deployed.lock().await;
        if deployed.projects.contains_key(name) {
            return Err(Error::new(
                Code::Conflict,
                format!("project `{name}` already exists"),
            ));
        }
        let record = ProjectRecord {
            id: name.to_owned(),
            domains: check_domains(&deployed.projects, name, domains)?,
            cors_origins: Vec::new(),
            created_at: updraft_store::now_ms(),
        };
        if !self.stores.metadata.create_project(&record).await? {
            return Err(Error::new(
                Code::Conflict,
                format!("project `{name}` already exists"),
            ));
        }
        // Telemetry left by an earlier project of this name is not this one's.
        self.stores.telemetry.forget_project(name).await?;
        deployed.projects.insert(name.to_owned(), record.clone());
        let mut next = deployed.entries.clone();
        next.insert(name.to_owned(), Default::default());
        self.publish(&mut deployed, next, Vec::new()).await?;
        tracing::info!(project = name, "project created");
        Ok(info(&record, 0))
    }

    /// Replaces the custom domains of project `name`.
    ///
    /// # Errors
    /// [`Code::ProjectNotFound`], [`Code::BadRequest`] for a bad domain, [`Code::Conflict`]
    /// for a domain of another project.
    pub async fn set_domains(&self, name: &str, domains: &[String]) -> Result<ProjectInfo, Error> {
        let mut deployed = self.deployed.lock().await;
        let Some(current) = deployed.projects.get(name).cloned() else {
            return Err(Error::project_not_found(name));
        };
        let domains = check_domains(&deployed.projects, name, domains)?;
        if !self
            .stores
            .metadata
            .set_project_domains(name, &domains)
            .await?
        {
            return Err(Error::project_not_found(name));
        }
        let record = ProjectRecord { domains, ..current };
        deployed.projects.insert(name.to_owned(), record.clone());
        let next = deployed.entries.clone();
        self.publish(&mut deployed, next, Vec::new()).await?;
        let functions = deployed.entries.get(name).map_or(0, |e| e.len());
        Ok(info(&record, functions))
    }

    /// Replaces the origins browsers may call project `name` from (`*`: any).
    ///
    /// # Errors
    /// [`Code::ProjectNotFound`], [`Code::BadRequest`] for an origin that is not
    /// `scheme://host[:port]`.
    pub async fn set_cors(&self, name: &str, origins: &[String]) -> Result<ProjectInfo, Error> {
        let mut checked: Vec<String> = Vec::new();
        for o in origins {
            let o = origin(o)?;
            if !checked.contains(&o) {
                checked.push(o);
            }
        }
        let mut deployed = self.deployed.lock().await;
        let Some(current) = deployed.projects.get(name).cloned() else {
            return Err(Error::project_not_found(name));
        };
        if !self
            .stores
            .metadata
            .set_project_cors(name, &checked)
            .await?
        {
            return Err(Error::project_not_found(name));
        }
        let record = ProjectRecord {
            cors_origins: checked,
            ..current
        };
        deployed.projects.insert(name.to_owned(), record.clone());
        let next = deployed.entries.clone();
        self.publish(&mut deployed, next, Vec::new()).await?;
        let functions = deployed.entries.get(name).map_or(0, |e| e.len());
        Ok(info(&record, functions))
    }

    /// Deletes project `name`, which must have no functions, with its keys and stored
    /// telemetry.
    ///
    /// # Errors
    /// [`Code::ProjectNotFound`], [`Code::BadRequest`] for `default`, [`Code::Conflict`] while
    /// it has functions.
    pub async fn delete_project(&self, name: &str) -> Result<(), Error> {
        if name == DEFAULT_PROJECT {
            return Err(Error::new(
                Code::BadRequest,
                "the `default` project cannot be deleted",
            ));
        }
        let mut deployed = self.deployed.lock().await;
        let functions = deployed.of(name)?.len();
        if functions > 0 {
            return Err(Error::new(
                Code::Conflict,
                format!(
                    "project `{name}` still has {functions} function(s); delete them first \
                     (`updraft --project {name} functions`)"
                ),
            ));
        }
        if !self.stores.metadata.delete_project(name).await? {
            return Err(Error::project_not_found(name));
        }
        deployed.projects.remove(name);
        let mut next = deployed.entries.clone();
        next.remove(name);
        self.publish(&mut deployed, next, Vec::new()).await?;
        if let Err(e) = self.stores.telemetry.forget_project(name).await {
            // The project is gone; its old lines are only wasted space (and are forgotten
            // again if the name is reused).
            tracing::warn!(project = name, error = %e, "could not delete a project's telemetry");
        }
        tracing::info!(project = name, "project deleted");
        Ok(())
    }
}

/// `domains` validated and lower-cased, none serving a project other than `name`, no
/// duplicates.
fn check_domains(
    projects: &std::collections::BTreeMap<String, ProjectRecord>,
    name: &str,
    domains: &[String],
) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for d in domains {
        let d = domain(d)?;
        // Which project it serves is not the caller's business.
        if projects
            .values()
            .any(|p| p.id != name && p.domains.contains(&d))
        {
            return Err(Error::new(
                Code::Conflict,
                format!("domain `{d}` already serves another project"),
            ));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}
