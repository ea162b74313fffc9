//! Project secrets as functions receive them. The registry never opens a secret: a
//! [`SecretSource`] (the server's, which holds the key) turns names into values when a
//! version's runtime is prepared, and the values go only into the environment of the
//! functions whose manifest lists them (`secrets = ["STRIPE_KEY"]`).
//!
//! Setting a secret replaces the runtimes of every function granted it (their next request
//! starts an instance with the new value); a secret any kept version uses can't be deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use updraft_api::Code;
use updraft_dispatch::BoxFuture;
use updraft_manifest::Function as Spec;
use updraft_store::FunctionRecord;

use crate::{Error, Registry};

/// Opens a project's secrets.
pub trait SecretSource: Send + Sync + 'static {
    /// The values of those of `names` that `project` has (a missing one is left out).
    ///
    /// # Errors
    /// Why they could not be read or opened.
    fn values<'a>(
        &'a self,
        project: &'a str,
        names: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, String>>;
}

/// A source with no secrets (for a registry whose functions use none).
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn values<'a>(
        &'a self,
        _: &'a str,
        _: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, String>> {
        Box::pin(async { Ok(BTreeMap::new()) })
    }
}

/// Whether a kept (not deleted) version of `record` lists secret `name`.
fn uses(record: &FunctionRecord, name: &str) -> bool {
    record
        .versions
        .iter()
        .filter(|v| v.deleted_at.is_none())
        .any(|v| v.spec.secrets.iter().any(|s| s == name))
}

impl Registry {
    /// The values of every secret `specs` list, from `project`.
    ///
    /// # Errors
    /// [`Code::BadRequest`] naming a secret the project does not have; an internal error if
    /// they can't be opened.
    pub(crate) async fn secret_values<'a>(
        &self,
        project: &str,
        specs: impl IntoIterator<Item = &'a Spec>,
    ) -> Result<BTreeMap<String, String>, Error> {
        let names: BTreeSet<String> = specs
            .into_iter()
            .flat_map(|s| s.secrets.iter().cloned())
            .collect();
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let values = self
            .stores
            .secrets
            .values(project, &names)
            .await
            .map_err(|e| Error::internal("opening secrets", e))?;
        if let Some(missing) = names.iter().find(|n| !values.contains_key(*n)) {
            return Err(Error::new(
                Code::BadRequest,
                format!(
                    "secret `{missing}` is not set in project `{project}` \
                     (`updraft secret set {missing}`)"
                ),
            ));
        }
        Ok(values)
    }

    /// Functions of `project` a kept version of which lists secret `name`, by name.
    pub async fn secret_users(&self, project: &str, name: &str) -> Vec<String> {
        let deployed = self.deployed.lock().await;
        let mut users: Vec<String> = deployed
            .entries
            .get(project)
            .into_iter()
            .flat_map(HashMap::values)
            .filter(|e| uses(&e.record, name))
            .map(|e| e.record.name.clone())
            .collect();
        users.sort();
        users
    }

    /// Stores secret `name` of `project` (`sealed` by the caller's key) and gives the functions
    /// granted it new runtimes that see the new value. Returns whether it is new and those
    /// functions.
    ///
    /// # Errors
    /// [`Code::ProjectNotFound`]; the store's errors.
    pub async fn set_secret(
        &self,
        project: &str,
        name: &str,
        sealed: &[u8],
    ) -> Result<(bool, Vec<String>), Error> {
        let mut deployed = self.deployed.lock().await;
        deployed.of(project)?;
        let created = self
            .stores
            .metadata
            .put_secret(project, name, sealed)
            .await?;
        let users: Vec<FunctionRecord> = deployed
            .of(project)?
            .values()
            .filter(|e| uses(&e.record, name))
            .map(|e| (*e.record).clone())
            .collect();
        if users.is_empty() {
            return Ok((created, Vec::new()));
        }
        let mut next = deployed.entries.clone();
        let mut restarted = Vec::new();
        for record in users {
            let fname = record.name.clone();
            let previous = deployed.entry(project, &fname)?.clone();
            let renew = |spec: &Spec| spec.secrets.iter().any(|s| s == name);
            let rebuilt = self
                .entry_renewing(record, Some(&previous), None, &renew)
                .await;
            next.entry(project.to_owned())
                .or_default()
                .insert(fname.clone(), rebuilt);
            self.event(
                project,
                &fname,
                &format!("secret {name} changed: new instances see the new value"),
            );
            restarted.push(fname);
        }
        self.publish(&mut deployed, next, Vec::new()).await?;
        restarted.sort();
        Ok((created, restarted))
    }

    /// Deletes secret `name` of `project`, unless a kept version of a function lists it.
    ///
    /// # Errors
    /// [`Code::ProjectNotFound`], [`Code::Conflict`] naming the functions using it,
    /// [`Code::SecretNotFound`].
    pub async fn delete_secret(&self, project: &str, name: &str) -> Result<(), Error> {
        let deployed = self.deployed.lock().await;
        let mut users: Vec<&str> = deployed
            .of(project)?
            .values()
            .filter(|e| uses(&e.record, name))
            .map(|e| e.record.name.as_str())
            .collect();
        if !users.is_empty() {
            users.sort_unstable();
            return Err(Error::new(
                Code::Conflict,
                format!(
                    "secret `{name}` is used by {}; deploy them without it first",
                    users.join(", ")
                ),
            ));
        }
        if !self.stores.metadata.delete_secret(project, name).await? {
            return Err(Error::new(
                Code::SecretNotFound,
                format!("no secret named `{name}`"),
            ));
        }
        Ok(())
    }
}
