//! Errors of the agent's file writing (shared with the sandbox driver, which lays out the same
//! files).

use std::io;
use std::path::PathBuf;

/// What can go wrong writing the SSH state.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A public key line contains a line break or NUL, or is empty.
    #[error("invalid authorized key line #{0}")]
    InvalidKey(usize),
    /// The target of an atomic write is a symbolic link (refused, never followed).
    #[error("refusing to write {0:?}: it is a symbolic link")]
    SymlinkRefused(PathBuf),
    /// An I/O error, with what we were doing.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Result of the file functions.
pub type FileResult<T, E = FileError> = std::result::Result<T, E>;

/// Attaches a context string to I/O errors.
pub(crate) trait IoContext<T> {
    /// Wraps the error in [`FileError::Io`] with `context` computed lazily.
    fn ctx(self, context: impl FnOnce() -> String) -> FileResult<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn ctx(self, context: impl FnOnce() -> String) -> FileResult<T> {
        self.map_err(|e| FileError::Io {
            context: context(),
            source: e.into(),
        })
    }
}
