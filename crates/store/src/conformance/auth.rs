//! The [`AuthStore`] suite.

use super::{AuthSubject, Found, Outcome};
use crate::{MailRecord, OtpRecord, Refreshed, SessionRecord, SigningKeyRecord, UserRecord};

fn user(project: &str, id: &str, email: Option<&str>) -> UserRecord {
    UserRecord {
        project: project.to_owned(),
        id: id.to_owned(),
        email: email.map(str::to_owned),
        role: "authenticated".to_owned(),
        app_metadata: "{}".to_owned(),
        user_metadata: "{}".to_owned(),
        created_at: 1,
        updated_at: 1,
        ..Default::default()
    }
}

fn session(id: &str, user_id: &str) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        created_at: 1_000,
        refreshed_at: 1_000,
    }
}

/// Users are per project, an email is taken once per project, and they survive a reopen.
pub async fn users_are_kept_per_project_with_unique_emails(subject: &dyn AuthSubject) -> Outcome {
    let store = subject.fresh().await;
    assert!(
        store
            .create_user(&user("a", "u1", Some("x@example.com")))
            .await?
    );
    assert!(
        !store
            .create_user(&user("a", "u2", Some("x@example.com")))
            .await?
    );
    // Another project may have the same email; anonymous users have none.
    assert!(
        store
            .create_user(&user("b", "u1", Some("x@example.com")))
            .await?
    );
    assert!(store.create_user(&user("a", "u3", None)).await?);
    assert!(store.create_user(&user("a", "u4", None)).await?);
    let store = subject.reopen(store).await;
    let found = store.user_by_email("a", "x@example.com").await?.found()?;
    assert_eq!(found.id, "u1");
    assert!(store.user_by_email("c", "x@example.com").await?.is_none());
    assert_eq!(store.users("a", 10, 0).await?.len(), 3);
    assert_eq!(store.users("a", 1, 1).await?.len(), 1);
    // Taking another user's email is refused; a change is kept.
    let mut anon = store.user("a", "u3").await?.found()?;
    anon.email = Some("x@example.com".to_owned());
    assert!(!store.update_user(&anon).await?);
    anon.email = Some("y@example.com".to_owned());
    anon.disabled = true;
    assert!(store.update_user(&anon).await?);
    let back = store.user("a", "u3").await?.found()?;
    assert!(back.disabled);
    assert_eq!(back.email.as_deref(), Some("y@example.com"));
    assert!(store.user("b", "u3").await?.is_none());
    Ok(())
}

/// A refresh token works once; within the grace window a reuse still rotates; after it the
/// whole session is revoked.
pub async fn refresh_tokens_rotate_and_reuse_revokes_the_session(
    subject: &dyn AuthSubject,
) -> Outcome {
    let store = subject.fresh().await;
    store
        .create_user(&user("p", "u", Some("u@example.com")))
        .await?;
    store.create_session("p", &session("s1", "u"), "t0").await?;
    let grace = 10_000;
    let rotated = Refreshed::Rotated {
        session_id: "s1".to_owned(),
        user_id: "u".to_owned(),
    };
    assert_eq!(store.refresh("p", "t0", "t1", grace, 2_000).await?, rotated);
    // Another project can't use it.
    assert_eq!(
        store.refresh("q", "t1", "tx", grace, 2_500).await?,
        Refreshed::Unknown
    );
    // t0 again within the grace window (a second tab): still rotates.
    assert_eq!(
        store.refresh("p", "t0", "t1b", grace, 3_000).await?,
        rotated
    );
    assert_eq!(store.refresh("p", "t1", "t2", grace, 4_000).await?, rotated);
    // t0 again long after: theft; the session and every token of it go.
    assert_eq!(
        store.refresh("p", "t0", "t9", grace, 60_000).await?,
        Refreshed::Reused
    );
    assert!(store.session("p", "s1").await?.is_none());
    assert_eq!(
        store.refresh("p", "t2", "t3", grace, 61_000).await?,
        Refreshed::Unknown
    );
    assert_eq!(
        store.refresh("p", "never", "t4", grace, 61_000).await?,
        Refreshed::Unknown
    );
    Ok(())
}

/// Sessions end one at a time, all but one, or all; deleting a user ends them too.
pub async fn sessions_end_one_others_or_all(subject: &dyn AuthSubject) -> Outcome {
    let store = subject.fresh().await;
    store
        .create_user(&user("p", "u", Some("u@example.com")))
        .await?;
    for (s, t) in [("s1", "a"), ("s2", "b"), ("s3", "c")] {
        store.create_session("p", &session(s, "u"), t).await?;
    }
    assert_eq!(store.end_sessions("p", "u", Some("s1"), None).await?, 1);
    assert!(store.session("p", "s1").await?.is_none());
    assert_eq!(
        store.refresh("p", "a", "a2", 10_000, 2_000).await?,
        Refreshed::Unknown
    );
    assert_eq!(store.end_sessions("p", "u", None, Some("s2")).await?, 1);
    assert!(store.session("p", "s2").await?.is_some());
    assert!(store.session("p", "s3").await?.is_none());
    store.link_identity("p", "idp", "sub-1", "u").await?;
    store.link_identity("p", "idp", "sub-1", "u").await?;
    assert_eq!(
        store.identity_user("p", "idp", "sub-1").await?.as_deref(),
        Some("u")
    );
    assert!(store.identity_user("q", "idp", "sub-1").await?.is_none());
    assert!(store.delete_user("p", "u").await?);
    assert!(store.session("p", "s2").await?.is_none());
    assert!(store.identity_user("p", "idp", "sub-1").await?.is_none());
    assert!(!store.delete_user("p", "u").await?);
    Ok(())
}

/// A new signing key retires the others, which are dropped once old enough.
pub async fn signing_keys_rotate_and_retired_ones_go(subject: &dyn AuthSubject) -> Outcome {
    let store = subject.fresh().await;
    let key = |kid: &str, at: i64| SigningKeyRecord {
        kid: kid.to_owned(),
        sealed: vec![1, 2, 3],
        public_jwk: "{}".to_owned(),
        created_at: at,
        retired_at: None,
    };
    store.rotate_signing_key("p", &key("k1", 1_000)).await?;
    store.rotate_signing_key("p", &key("k2", 2_000)).await?;
    let keys = store.signing_keys("p").await?;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].retired_at, Some(2_000));
    assert_eq!(keys[1].retired_at, None);
    assert!(store.signing_keys("q").await?.is_empty());
    assert_eq!(store.drop_retired_keys("p", 1_500).await?, 0);
    assert_eq!(store.drop_retired_keys("p", 2_500).await?, 1);
    let store = subject.reopen(store).await;
    assert_eq!(store.signing_keys("p").await?[0].kid, "k2");
    Ok(())
}

/// A one-time token works once, by its link or its code, for its kinds only, until it
/// expires; a new one replaces the user's unused one. The mailbox keeps messages per project.
pub async fn one_time_tokens_work_once_and_mail_is_kept(subject: &dyn AuthSubject) -> Outcome {
    let store = subject.fresh().await;
    let otp = |link: &str, code: &str, expires_at: i64| OtpRecord {
        project: "p".to_owned(),
        token_sha256: link.to_owned(),
        code_sha256: code.to_owned(),
        user_id: "u".to_owned(),
        kind: "recovery".to_owned(),
        created_at: 1_000,
        expires_at,
    };
    store.create_otp(&otp("l1", "c1", 10_000)).await?;
    assert!(
        store
            .take_otp("p", "l1", &["magiclink"], 2_000)
            .await?
            .is_none()
    );
    assert!(
        store
            .take_otp("q", "l1", &["recovery"], 2_000)
            .await?
            .is_none()
    );
    assert_eq!(
        store
            .take_otp("p", "c1", &["recovery"], 2_000)
            .await?
            .found()?
            .user_id,
        "u"
    );
    assert!(
        store
            .take_otp("p", "l1", &["recovery"], 2_000)
            .await?
            .is_none(),
        "used twice"
    );
    store.create_otp(&otp("l2", "c2", 10_000)).await?;
    store.create_otp(&otp("l3", "c3", 10_000)).await?;
    assert!(
        store
            .take_otp("p", "l2", &["recovery"], 2_000)
            .await?
            .is_none(),
        "replaced"
    );
    assert!(
        store
            .take_otp("p", "l3", &["recovery"], 20_000)
            .await?
            .is_none(),
        "expired"
    );
    for to in ["a@example.com", "b@example.com"] {
        let m = MailRecord {
            id: 0,
            project: "p".to_owned(),
            to: to.to_owned(),
            subject: "s".to_owned(),
            body: "b".to_owned(),
            created_at: 1,
        };
        store.push_mail(&m).await?;
    }
    assert_eq!(store.mails("p", None, 10).await?.len(), 2);
    assert_eq!(
        store.mails("p", Some("b@example.com"), 10).await?[0].to,
        "b@example.com"
    );
    assert!(store.mails("q", None, 10).await?.is_empty());
    Ok(())
}
