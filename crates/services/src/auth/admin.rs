//! The admin operations on a project's users (the control API's `/v1/users`): list, find,
//! disable or enable, delete, end sessions.

use updraft_store::{UserRecord, now_ms};

use super::users::{UserView, user_view};
use super::{Auth, AuthError};

impl Auth {
    /// Users of `project`, oldest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_users(
        &self,
        project: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<UserView>, AuthError> {
        Ok(self
            .store
            .users(project, limit, offset)
            .await?
            .iter()
            .map(user_view)
            .collect())
    }

    /// User `id` of `project` (by id, or by email if `id` has an `@`).
    ///
    /// # Errors
    /// `404 user_not_found`.
    pub async fn find_user(&self, project: &str, id: &str) -> Result<UserRecord, AuthError> {
        let found = if id.contains('@') {
            self.store
                .user_by_email(project, &id.trim().to_ascii_lowercase())
                .await?
        } else {
            self.store.user(project, id).await?
        };
        found.ok_or_else(|| AuthError::new(404, "user_not_found", format!("no user `{id}`")))
    }

    /// Disables (or enables) a user; disabling ends its sessions.
    ///
    /// # Errors
    /// `404 user_not_found`; storage errors.
    pub async fn set_disabled(
        &self,
        project: &str,
        id: &str,
        disabled: bool,
    ) -> Result<UserView, AuthError> {
        let mut user = self.find_user(project, id).await?;
        user.disabled = disabled;
        user.updated_at = now_ms();
        self.store.update_user(&user).await?;
        if disabled {
            self.store
                .end_sessions(project, &user.id, None, None)
                .await?;
        }
        Ok(user_view(&user))
    }

    /// Deletes a user with its sessions.
    ///
    /// # Errors
    /// `404 user_not_found`; storage errors.
    pub async fn delete_user(&self, project: &str, id: &str) -> Result<(), AuthError> {
        let user = self.find_user(project, id).await?;
        self.store.delete_user(project, &user.id).await?;
        Ok(())
    }

    /// Ends every session of a user; returns how many.
    ///
    /// # Errors
    /// `404 user_not_found`; storage errors.
    pub async fn revoke_sessions(&self, project: &str, id: &str) -> Result<usize, AuthError> {
        let user = self.find_user(project, id).await?;
        Ok(self
            .store
            .end_sessions(project, &user.id, None, None)
            .await?)
    }

    /// Forgets what it keeps in memory of `project` (it was deleted).
    pub fn forget_project(&self, project: &str) {
        self.keys.forget(project);
    }
}
