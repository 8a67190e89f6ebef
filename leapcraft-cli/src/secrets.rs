//! Secrets kept in files (a key file, a config file holding a key, the broker's password):
//! read only from a file no one but its owner can read (as ssh does for private keys), and
//! never shown.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use secrecy::SecretString;

use crate::error::Failure;

/// The longest key file read: far more than any key.
const MAX_KEY_FILE: u64 = 4096;

/// The text of a regular file, and whether only its owner can read it.
pub struct FileText {
    /// Its text.
    pub text: String,
    /// `Ok` when no one but its owner can read or change it; otherwise why, and how to fix it.
    pub private: Result<(), String>,
}

/// The text of the regular file `path`, refused when longer than `max` bytes or not UTF-8.
pub fn read_text(path: &Path, max: u64) -> Result<FileText, String> {
    let file = File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?;
    if !metadata.is_file() {
        return Err("not a regular file".to_owned());
    }
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read it as text: {e}"))?;
    if text.len() as u64 > max {
        return Err(format!("longer than {max} bytes"));
    }
    Ok(FileText {
        text,
        private: only_its_owner_reads(&metadata),
    })
}

/// The API key in `path`: its first line, trimmed. Refused when the file is readable by its
/// group or others, or is not a regular file. `named_by` says what named the file, for
/// messages: `--api-key-file`, a profile's `api-key-file`.
pub fn read_key_file(path: &Path, named_by: &str) -> Result<SecretString, Failure> {
    let fail = |why: String| Failure::Usage(format!("{named_by} {}: {why}", path.display()));
    let file = read_text(path, MAX_KEY_FILE).map_err(fail)?;
    file.private.map_err(fail)?;
    let key = file.text.lines().next().unwrap_or_default().trim();
    if key.is_empty() {
        return Err(fail("its first line is empty".to_owned()));
    }
    Ok(SecretString::from(key.to_owned()))
}

#[cfg(unix)]
fn only_its_owner_reads(metadata: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "others than its owner can read or change it (mode {mode:03o}); \
             chmod 600 it, as ssh asks of private keys"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn only_its_owner_reads(_: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}
