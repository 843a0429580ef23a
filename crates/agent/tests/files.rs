//! The agent's atomic writer: it never writes through a symbolic link, and leaves no temporary
//! file behind.

use std::os::unix::fs::MetadataExt;

use keyplane_agent::fsutil::write_atomic;
use keyplane_agent::ssh_state::apply_ssh_state;
use keyplane_agent::FileError as Error;

#[tokio::test]
async fn atomic_writer_refuses_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), "original").unwrap();

    // The target is a symlink: refused, the link target untouched.
    std::os::unix::fs::symlink(outside.join("victim"), dir.join("authorized_keys")).unwrap();
    let err = write_atomic(&dir, "authorized_keys", b"evil", 0o600, None).unwrap_err();
    assert!(matches!(err, Error::SymlinkRefused(_)), "{err}");
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "original"
    );

    // The directory is a symlink: refused.
    std::os::unix::fs::symlink(&outside, tmp.path().join("linkdir")).unwrap();
    let err =
        write_atomic(&tmp.path().join("linkdir"), "victim", b"evil", 0o600, None).unwrap_err();
    assert!(matches!(err, Error::SymlinkRefused(_)), "{err}");
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "original"
    );

    // The agent's subdirectory replaced by a symlink: refused, nothing written outside.
    let ssh_dir = tmp.path().join("etc-ssh");
    std::fs::create_dir(&ssh_dir).unwrap();
    std::os::unix::fs::symlink(&outside, ssh_dir.join("keyplane")).unwrap();
    assert!(apply_ssh_state(&ssh_dir, &["ssh-ed25519 AAAA k".into()], false).is_err());
    assert!(!outside.join("authorized_keys").exists());

    // A plain write: content, mode, no temp file left behind.
    write_atomic(&dir, "plain", b"hello\n", 0o600, None).unwrap();
    let meta = std::fs::metadata(dir.join("plain")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(dir.join("plain")).unwrap(),
        "hello\n"
    );
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
