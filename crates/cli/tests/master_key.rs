//! The master key with the real binary: created 0600 on first use, the database files hold no
//! secret in clear, `account credentials` still prints them, and a wrong or lost key stops
//! `keyplane serve` at start with a message saying so.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keyplane");

/// Run `keyplane ARGS`, without the caller's KEYPLANE_* settings; killed past a deadline.
fn keyplane(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("KEYPLANE_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().expect("start keyplane");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("keyplane {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON credentials")
}

fn in_files(dir: &Path, needle: &str) -> bool {
    ["keyplane.db", "keyplane.db-wal"].iter().any(|f| {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

fn write_key(path: &Path) {
    let key = keyplane_core::sealing::MasterKey::generate();
    std::fs::write(path, key.to_text().as_bytes()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn secrets_are_encrypted_at_rest_and_still_printed_to_the_user() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    let alice = ok(&keyplane(&["account", "create", "alice", "--data-dir", d]));
    let bob = ok(&keyplane(&["account", "create", "bob", "--data-dir", d]));
    let key = dir.join("master.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is private");
    for creds in [&alice, &bob] {
        for field in ["secret_key", "access_key_secret"] {
            let secret = creds[field].as_str().unwrap();
            assert!(secret.len() >= 30, "{creds}");
            assert!(
                !in_files(&dir, secret),
                "{field} of {} in clear",
                creds["account"]
            );
        }
        assert!(in_files(&dir, creds["secret_id"].as_str().unwrap()));
    }
    let again = ok(&keyplane(&[
        "account",
        "credentials",
        "alice",
        "--data-dir",
        d,
    ]));
    assert_eq!(again["secret_key"], alice["secret_key"]);
    assert_eq!(again["access_key_secret"], alice["access_key_secret"]);
}

#[test]
fn a_wrong_or_lost_key_stops_the_server_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    ok(&keyplane(&["account", "create", "alice", "--data-dir", d]));
    let other = tmp.path().join("other.key");
    write_key(&other);
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--data-dir", d, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        keyplane(&args)
    };
    let out = serve(&["--master-key-file", other.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("does not match this database"), "{err}");
    assert!(!err.contains("listening on"), "{err}");
    let out = keyplane(&[
        "account",
        "credentials",
        "alice",
        "--data-dir",
        d,
        "--master-key-file",
        other.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing printed with the wrong key");

    // The key file lost: no new key is made that could never open the secrets.
    let key = dir.join("master.key");
    let original = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let out = serve(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no master key at"), "{err}");
    assert!(!key.exists(), "no useless key left behind");
    std::fs::write(&key, original).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let creds = ok(&keyplane(&[
        "account",
        "credentials",
        "alice",
        "--data-dir",
        d,
    ]));
    assert_eq!(creds["account"], "alice", "the original key works again");
}

#[test]
fn a_database_with_secrets_in_clear_is_encrypted_on_first_start() {
    use keyplane_core::store::Store;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    // What a version without encryption left: accounts with their secrets in clear.
    let old = keyplane_core::account::Account::generate("legacy", false, 1);
    {
        let store = keyplane_store::SqliteStore::open(&dir.join("keyplane.db")).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(store.insert_account(&old)).unwrap();
    }
    assert!(in_files(&dir, old.secret_key.expose()));
    let d = dir.to_str().unwrap();
    let out = keyplane(&["account", "credentials", "legacy", "--data-dir", d]);
    let creds = ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("encrypted the secrets of 1 account"));
    assert_eq!(creds["secret_key"], old.secret_key.expose());
    assert_eq!(creds["access_key_secret"], old.access_key_secret.expose());
    assert!(!in_files(&dir, old.secret_key.expose()));
    assert!(!in_files(&dir, old.access_key_secret.expose()));
}
