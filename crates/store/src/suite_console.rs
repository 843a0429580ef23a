//! The web console's credentials and agents' last-seen times, on a real back end: a login is
//! exchanged for a session once (also when many try at the same time), both expire, neither
//! stands in for the other, and last-seen times are per instance, per account, and never go
//! back.

use crate::suite::instance;
use keyplane_core::account::Account;
use keyplane_core::store::{ConsoleAccount, ConsoleTokenKind, Store};
use std::sync::Arc;

/// Run the scenarios.
pub(crate) async fn run(store: Arc<dyn Store>) {
    logins_and_sessions(&*store).await;
    one_redeemer(store.clone()).await;
    agents_seen(&*store).await;
}

async fn logins_and_sessions(store: &dyn Store) {
    let a = Account::generate("suite-console", false, 95);
    store.insert_account(&a).await.unwrap();
    let me = ConsoleAccount {
        id: a.id.clone(),
        name: a.name.clone(),
    };
    let login = ConsoleTokenKind::Login;
    store
        .insert_console_token("login-1", login, &a.id, 1_600, 1_000)
        .await
        .unwrap();
    // A login is no session, and an unknown login redeems nothing.
    assert_eq!(store.console_session("login-1", 1_001).await.unwrap(), None);
    assert_eq!(
        store
            .redeem_console_login("login-x", "s-0", 9_000, 1_001)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .redeem_console_login("login-1", "session-1", 5_000, 1_002)
            .await
            .unwrap(),
        Some(me.clone())
    );
    // Used up.
    assert_eq!(
        store
            .redeem_console_login("login-1", "session-2", 5_000, 1_003)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.console_session("session-2", 1_004).await.unwrap(),
        None
    );
    // The session signs in until it expires, and is no login.
    assert_eq!(
        store.console_session("session-1", 4_999).await.unwrap(),
        Some(me.clone())
    );
    assert_eq!(
        store.console_session("session-1", 5_000).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .redeem_console_login("session-1", "s-3", 9_000, 1_005)
            .await
            .unwrap(),
        None
    );
    // An expired login redeems nothing, and is purged by the next insert.
    store
        .insert_console_token("login-2", login, &a.id, 2_000, 1_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .redeem_console_login("login-2", "s-4", 9_000, 2_000)
            .await
            .unwrap(),
        None
    );
    // Signing out ends a session at once.
    store
        .insert_console_token("session-5", ConsoleTokenKind::Session, &a.id, 9_000, 1_000)
        .await
        .unwrap();
    assert_eq!(
        store.console_session("session-5", 1_001).await.unwrap(),
        Some(me)
    );
    store.delete_console_token("session-5").await.unwrap();
    assert_eq!(
        store.console_session("session-5", 1_001).await.unwrap(),
        None
    );
    store.delete_console_token("session-5").await.unwrap();
}

/// Many redeem one login at once: exactly one gets a session.
async fn one_redeemer(store: Arc<dyn Store>) {
    let a = Account::generate("suite-console-race", false, 96);
    store.insert_account(&a).await.unwrap();
    store
        .insert_console_token("race-login", ConsoleTokenKind::Login, &a.id, 9_000, 1_000)
        .await
        .unwrap();
    let tries: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let session = format!("race-session-{n}");
                let got = store
                    .redeem_console_login("race-login", &session, 9_000, 1_001)
                    .await
                    .unwrap();
                got.map(|_| session)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tries {
        winners.extend(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    for n in 0..8 {
        let session = format!("race-session-{n}");
        let signed_in = store.console_session(&session, 1_002).await.unwrap();
        assert_eq!(signed_in.is_some(), winners.contains(&session), "{session}");
    }
}

async fn agents_seen(store: &dyn Store) {
    let (a, b) = (
        Account::generate("suite-seen-a", false, 97),
        Account::generate("suite-seen-b", false, 97),
    );
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    let (i1, i2, j1) = (
        instance(&a, 970, &[], 970),
        instance(&a, 971, &[], 971),
        instance(&b, 972, &[], 972),
    );
    store
        .insert_instances(&[i1.clone(), i2.clone(), j1.clone()], &[], None)
        .await
        .unwrap();
    // An instance that does not exist records nothing, and is no error.
    store.record_agent_seen("ins-nothere", 100).await.unwrap();
    assert_eq!(store.agents_seen(&a.id).await.unwrap(), vec![]);
    store.record_agent_seen(&i2.id, 100).await.unwrap();
    store.record_agent_seen(&i2.id, 90).await.unwrap();
    store.record_agent_seen(&i1.id, 50).await.unwrap();
    store.record_agent_seen(&j1.id, 70).await.unwrap();
    assert_eq!(
        store.agents_seen(&a.id).await.unwrap(),
        vec![(i1.id.clone(), 50), (i2.id.clone(), 100)]
    );
    store.record_agent_seen(&i1.id, 120).await.unwrap();
    store.delete_instance(&i2.id).await.unwrap();
    assert_eq!(
        store.agents_seen(&a.id).await.unwrap(),
        vec![(i1.id.clone(), 120)]
    );
    assert_eq!(store.agents_seen(&b.id).await.unwrap(), vec![(j1.id, 70)]);
}
