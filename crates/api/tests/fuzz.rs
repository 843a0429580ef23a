//! Randomized, correctly signed requests in every dialect (CVM API 3.0 over TC3 and v1, the
//! legacy v2 API, Lighthouse, CloudAudit, ECS over RPC and ACS3, ActionTrail) carrying wrong types, huge arrays and
//! strings, bad UTF-8 and duplicate parameters. Every answer must be in its dialect's envelope
//! with a code from the vendor's list, none may be HTTP 5xx, and nothing may panic.
//!
//! The seed is printed; `KEYPLANE_FUZZ_SEED=N` replays a run and `KEYPLANE_FUZZ_REQUESTS=N`
//! sets the number of requests per dialect (default 1500).

mod support;

#[path = "fuzz/envelopes.rs"]
mod envelopes;
#[path = "fuzz/requests.rs"]
mod requests;
#[path = "fuzz/values.rs"]
mod values;

use axum::body::{to_bytes, Body};
use axum::http::Request;
use envelopes::{check, lists};
use keyplane_core::account::{Account, Secret};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use requests::{request, DIALECTS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

const SECRET_ID: &str = "AKIDfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz";
const SECRET_KEY: &str = "fuzzSecretKey0123456789abcdefghij";
const AK: &str = "LTAIfuzzfuzzfuzzfuzzfuzz";
const AK_SECRET: &str = "fuzzAccessKeySecret0123456789abc";
const NOW: i64 = 1_800_000_000;
const HOST: &str = "127.0.0.1:8787";
/// Requests in flight at once (some valid calls wait for operations that no worker runs).
const IN_FLIGHT: usize = 64;
/// The longest query string sent (a request line must fit hyper's 64 KiB URI); longer
/// parameters go in a form body.
const MAX_QUERY: usize = 60_000;

static NONCE: AtomicU64 = AtomicU64::new(1);

fn nonce() -> u64 {
    NONCE.fetch_add(1, Ordering::SeqCst)
}

/// The account every request is signed for.
fn fuzz_account() -> Account {
    let mut account = Account::generate("fuzz", false, 0);
    account.secret_id = SECRET_ID.into();
    account.secret_key = Secret::new(SECRET_KEY);
    account.access_key_id = AK.into();
    account.access_key_secret = Secret::new(AK_SECRET);
    account
}

/// Count every panic from now on (in any task: a panicking handler may not fail the request).
fn count_panics() -> Arc<AtomicUsize> {
    let panics = Arc::new(AtomicUsize::new(0));
    let default_hook = std::panic::take_hook();
    let counted = panics.clone();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    panics
}

fn seed() -> u64 {
    match std::env::var("KEYPLANE_FUZZ_SEED") {
        Ok(s) => s.parse().expect("KEYPLANE_FUZZ_SEED must be a number"),
        Err(_) => rand::rngs::OsRng.gen(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_signed_requests_get_their_dialects_envelopes() {
    let seed = seed();
    println!("fuzz seed {seed} (replay with KEYPLANE_FUZZ_SEED={seed})");
    eprintln!("fuzz seed {seed} (replay with KEYPLANE_FUZZ_SEED={seed})");
    let per_dialect: usize = std::env::var("KEYPLANE_FUZZ_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let panics = count_panics();
    let server = support::server(fuzz_account(), NOW, 0).await;
    let lists = Arc::new(lists());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut jobs = tokio::task::JoinSet::new();
    let mut failures = Vec::new();
    let mut refused: HashMap<requests::Dialect, usize> = HashMap::new();
    for i in 0..per_dialect * DIALECTS.len() {
        let d = DIALECTS[i % DIALECTS.len()];
        let req = request(&mut rng, d);
        let (app, lists) = (server.app.clone(), lists.clone());
        jobs.spawn(async move {
            let resp = app.oneshot(req).await.expect("the router answers");
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = to_bytes(resp.into_body(), 64 << 20).await.unwrap();
            let outcome = check(d, status, &ct, &body, &lists).map_err(|why| {
                format!(
                    "request {i} ({d:?}): {why}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(400)])
                )
            });
            (d, outcome)
        });
        while jobs.len() >= IN_FLIGHT {
            let done = jobs.join_next().await.expect("a job");
            tally(done.expect("no task panics"), &mut failures, &mut refused);
        }
    }
    while let Some(done) = jobs.join_next().await {
        tally(done.expect("no task panics"), &mut failures, &mut refused);
    }
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a panic (seed {seed})");
    assert!(
        failures.is_empty(),
        "{} of {} answers broke their envelope (seed {seed}); first: {:#?}",
        failures.len(),
        per_dialect * DIALECTS.len(),
        &failures[..failures.len().min(5)]
    );
    eprintln!("signatures refused per dialect (of {per_dialect} each): {refused:?}");
    // The requests really were signed right: most got past the signature check.
    for d in DIALECTS {
        let n = refused.get(&d).copied().unwrap_or(0);
        assert!(
            n * 10 < per_dialect,
            "{d:?}: {n} of {per_dialect} signatures refused (seed {seed})"
        );
    }
    // Still up: an ordinary request is served.
    let health = Request::builder()
        .uri("/healthz")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        server.app.clone().oneshot(health).await.unwrap().status(),
        200
    );
}

/// Codes that say the signature (or the credential) was refused.
const SIGNATURE_REFUSALS: &[&str] = &[
    "AuthFailure.SignatureFailure",
    "AuthFailure.SecretIdNotFound",
    "AuthFailure.SignatureExpire",
    "InvalidParameter.SignatureFailure",
    "InvalidParameter.SecretIdNotFound",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId.NotFound",
];

/// Count one answer: a failure, or (when its code says so) a refused signature.
fn tally(
    (d, outcome): (requests::Dialect, Result<Option<String>, String>),
    failures: &mut Vec<String>,
    refused: &mut HashMap<requests::Dialect, usize>,
) {
    match outcome {
        Err(f) => failures.push(f),
        Ok(Some(code)) if SIGNATURE_REFUSALS.contains(&code.as_str()) => {
            *refused.entry(d).or_default() += 1
        }
        Ok(_) => {}
    }
}
