//! Secrets kept in files (the API key, the broker's password): read only from a file no one
//! but its owner can read (as ssh does for private keys), and never shown.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::Failure;

/// The longest key file read: far more than any key.
const MAX_KEY_FILE: u64 = 4096;

/// The API key in `path` (`--api-key-file`): see [`read_secret_file`].
pub fn read_key_file(path: &Path) -> Result<String, Failure> {
    read_secret_file("--api-key-file", path)
}

/// The secret in `path`, given with `flag`: its first line, trimmed. Refused when the file
/// is readable by its group or others, or is not a regular file.
pub fn read_secret_file(flag: &str, path: &Path) -> Result<String, Failure> {
    let shown = path.display();
    let fail = |why: String| Failure::Usage(format!("{flag} {shown}: {why}"));
    let file = File::open(path).map_err(|e| fail(format!("cannot open it: {e}")))?;
    let metadata = file
        .metadata()
        .map_err(|e| fail(format!("cannot read it: {e}")))?;
    if !metadata.is_file() {
        return Err(fail("not a regular file".to_owned()));
    }
    only_its_owner_reads(&metadata).map_err(fail)?;
    let mut text = String::new();
    file.take(MAX_KEY_FILE)
        .read_to_string(&mut text)
        .map_err(|e| fail(format!("cannot read it as text: {e}")))?;
    let key = text.lines().next().unwrap_or_default().trim();
    if key.is_empty() {
        return Err(fail("its first line is empty".to_owned()));
    }
    Ok(key.to_owned())
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
