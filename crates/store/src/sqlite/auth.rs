//! The SQLite backend's [`AuthStore`].

use crate::{
    AuthStore, MailRecord, OtpRecord, Refreshed, SessionRecord, SigningKeyRecord, Store,
    StoreError, UserRecord,
};

use super::own;

#[async_trait::async_trait]
impl AuthStore for Store {
    async fn create_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let u = user.clone();
        self.run(move |s| s.create_user(&u)).await
    }

    async fn update_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let u = user.clone();
        self.run(move |s| s.update_user(&u)).await
    }

    async fn user(&self, project: &str, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let (p, i) = (own(project), own(id));
        self.run(move |s| s.user(&p, &i)).await
    }

    async fn user_by_email(
        &self,
        project: &str,
        email: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let (p, e) = (own(project), own(email));
        self.run(move |s| s.user_by_email(&p, &e)).await
    }

    async fn users(
        &self,
        project: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let p = own(project);
        self.run(move |s| s.users(&p, limit, offset)).await
    }

    async fn delete_user(&self, project: &str, id: &str) -> Result<bool, StoreError> {
        let (p, i) = (own(project), own(id));
        self.run(move |s| s.delete_user(&p, &i)).await
    }

    async fn create_session(
        &self,
        project: &str,
        session: &SessionRecord,
        refresh_sha256: &str,
    ) -> Result<(), StoreError> {
        let (p, s2, r) = (own(project), session.clone(), own(refresh_sha256));
        self.run(move |s| s.create_session(&p, &s2, &r)).await
    }

    async fn refresh(
        &self,
        project: &str,
        presented: &str,
        next: &str,
        grace_ms: i64,
        now: i64,
    ) -> Result<Refreshed, StoreError> {
        let (p, a, b) = (own(project), own(presented), own(next));
        self.run(move |s| s.refresh(&p, &a, &b, grace_ms, now))
            .await
    }

    async fn session(&self, project: &str, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let (p, i) = (own(project), own(id));
        self.run(move |s| s.session(&p, &i)).await
    }

    async fn end_sessions(
        &self,
        project: &str,
        user_id: &str,
        only: Option<&str>,
        keep: Option<&str>,
    ) -> Result<usize, StoreError> {
        let (p, u) = (own(project), own(user_id));
        let (o, k) = (only.map(own), keep.map(own));
        self.run(move |s| s.end_sessions(&p, &u, o.as_deref(), k.as_deref()))
            .await
    }

    async fn signing_keys(&self, project: &str) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let p = own(project);
        self.run(move |s| s.signing_keys(&p)).await
    }

    async fn rotate_signing_key(
        &self,
        project: &str,
        key: &SigningKeyRecord,
    ) -> Result<(), StoreError> {
        let (p, k) = (own(project), key.clone());
        self.run(move |s| s.rotate_signing_key(&p, &k)).await
    }

    async fn drop_retired_keys(&self, project: &str, before_ms: i64) -> Result<usize, StoreError> {
        let p = own(project);
        self.run(move |s| s.drop_retired_keys(&p, before_ms)).await
    }

    async fn create_otp(&self, otp: &OtpRecord) -> Result<(), StoreError> {
        let o = otp.clone();
        self.run(move |s| s.create_otp(&o)).await
    }

    async fn take_otp(
        &self,
        project: &str,
        sha256: &str,
        kinds: &[&str],
        now: i64,
    ) -> Result<Option<OtpRecord>, StoreError> {
        let (p, h) = (own(project), own(sha256));
        let k: Vec<String> = kinds.iter().map(|k| own(k)).collect();
        self.run(move |s| {
            let kinds: Vec<&str> = k.iter().map(String::as_str).collect();
            s.take_otp(&p, &h, &kinds, now)
        })
        .await
    }

    async fn identity_user(
        &self,
        project: &str,
        provider: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        let (p, v, s2) = (own(project), own(provider), own(subject));
        self.run(move |s| s.identity_user(&p, &v, &s2)).await
    }

    async fn link_identity(
        &self,
        project: &str,
        provider: &str,
        subject: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let (p, v, s2, u) = (own(project), own(provider), own(subject), own(user_id));
        self.run(move |s| s.link_identity(&p, &v, &s2, &u)).await
    }

    async fn push_mail(&self, mail: &MailRecord) -> Result<i64, StoreError> {
        let m = mail.clone();
        self.run(move |s| s.push_mail(&m)).await
    }

    async fn mails(
        &self,
        project: &str,
        to: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MailRecord>, StoreError> {
        let (p, t) = (own(project), to.map(own));
        self.run(move |s| s.mails(&p, t.as_deref(), limit)).await
    }
}
