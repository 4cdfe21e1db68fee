//! Function code: validating uploaded zips and unpacking them into a cache
//! directory per (account, CodeSha256), so instances of any replica can run a
//! function whose zip lives in the store.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::HostError;

/// Lambda's limit on a function's unzipped size (250 MB).
pub const MAX_UNZIPPED_BYTES: u64 = 262_144_000;

/// What the management API reports about a zip: `CodeSha256` (base64 of the
/// SHA-256) and `CodeSize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeInfo {
    pub sha256: String,
    pub size: u64,
}

/// Checks that `zip` is a readable archive within the unzipped-size limit and
/// returns its digest. Mirrors Lambda, which rejects unreadable zips at upload.
pub fn inspect(zip: &[u8]) -> Result<CodeInfo, HostError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|_| HostError::InvalidZip)?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|_| HostError::InvalidZip)?;
        total = total.saturating_add(entry.size());
    }
    if total > MAX_UNZIPPED_BYTES {
        return Err(HostError::CodeTooLarge(total));
    }
    Ok(CodeInfo {
        sha256: BASE64.encode(Sha256::digest(zip)),
        size: zip.len() as u64,
    })
}

/// The directory holding a tenant's unpacked code with this digest.
pub(crate) fn code_path(root: &Path, account_id: &str, sha256_b64: &str) -> Option<PathBuf> {
    // The digest comes from our own store, but it names a directory: only
    // accept exactly what `inspect` produces.
    let digest = BASE64.decode(sha256_b64).ok()?;
    if digest.len() != 32
        || account_id.is_empty()
        || !account_id.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(root.join(account_id).join(hex::encode(digest)))
}

/// Unpacks `zip` into `dest` (via a temporary sibling and a rename, so a
/// half-written directory is never used). File modes from the archive are
/// kept: `bootstrap` must stay executable.
pub(crate) fn unpack(zip: &[u8], dest: &Path) -> Result<(), HostError> {
    if dest.is_dir() {
        return Ok(());
    }
    let parent = dest
        .parent()
        .ok_or_else(|| HostError::Io(format!("no parent for {}", dest.display())))?;
    std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
    let staging = parent.join(format!(".unpack-{}", uuid::Uuid::new_v4().simple()));
    let result = unpack_into(zip, &staging);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    match std::fs::rename(&staging, dest) {
        Ok(()) => Ok(()),
        // Another invocation unpacked the same digest first: theirs is identical.
        Err(_) if dest.is_dir() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(io("rename", dest, e))
        }
    }
}

fn unpack_into(zip: &[u8], dir: &Path) -> Result<(), HostError> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|_| HostError::InvalidZip)?;
    let mut written: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|_| HostError::InvalidZip)?;
        // `enclosed_name` refuses absolute paths and `..`: no writing outside `dir`.
        let Some(relative) = entry.enclosed_name() else {
            return Err(HostError::InvalidZip);
        };
        let path = dir.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| io("create", &path, e))?;
            continue;
        }
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| io("create", p, e))?;
        }
        let mut data = Vec::with_capacity(entry.size().min(1 << 20) as usize);
        // Bounded read: the header's size is not trusted.
        (&mut entry)
            .take(MAX_UNZIPPED_BYTES - written + 1)
            .read_to_end(&mut data)
            .map_err(|_| HostError::InvalidZip)?;
        written += data.len() as u64;
        if written > MAX_UNZIPPED_BYTES {
            return Err(HostError::CodeTooLarge(written));
        }
        std::fs::write(&path, &data).map_err(|e| io("write", &path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Zips made on Windows carry no mode; Lambda then runs files as 0644.
            let mode = entry.unix_mode().map_or(0o644, |m| m & 0o777);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io("chmod", &path, e))?;
        }
    }
    Ok(())
}

fn io(what: &str, path: &Path, e: std::io::Error) -> HostError {
    HostError::Io(format!("cannot {what} {}: {e}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    /// A zip with `(name, mode, contents)` entries, as a test's upload.
    pub fn make_zip(files: &[(&str, u32, &str)]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut out);
            for (name, mode, body) in files {
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .unix_permissions(*mode);
                w.start_file(*name, opts).unwrap();
                w.write_all(body.as_bytes()).unwrap();
            }
            w.finish().unwrap();
        }
        out.into_inner()
    }

    #[test]
    fn inspect_digests_and_rejects_garbage() {
        let zip = make_zip(&[("bootstrap", 0o755, "#!/bin/sh\n")]);
        let info = inspect(&zip).unwrap();
        assert_eq!(info.size, zip.len() as u64);
        assert_eq!(info.sha256, BASE64.encode(Sha256::digest(&zip)));
        assert!(matches!(inspect(b"not a zip"), Err(HostError::InvalidZip)));
    }

    #[test]
    fn unpack_keeps_modes_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let zip = make_zip(&[
            ("bootstrap", 0o755, "#!/bin/sh\n"),
            ("lib/x.txt", 0o644, "x"),
        ]);
        let dest = dir.path().join("a");
        unpack(&zip, &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("lib/x.txt")).unwrap(),
            "x"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dest.join("bootstrap"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755);
        }
        let evil = make_zip(&[("../evil", 0o644, "x")]);
        assert!(matches!(
            unpack(&evil, &dir.path().join("b")),
            Err(HostError::InvalidZip)
        ));
        assert!(!dir.path().join("evil").exists());
        assert!(!dir.path().join("b").exists());
    }

    #[test]
    fn code_path_accepts_only_real_digests() {
        let root = Path::new("/cache");
        let sha = BASE64.encode([7u8; 32]);
        assert_eq!(
            code_path(root, "123456789012", &sha).unwrap(),
            root.join("123456789012").join(hex::encode([7u8; 32]))
        );
        assert!(code_path(root, "123456789012", "../../etc").is_none());
        assert!(code_path(root, "../x", &sha).is_none());
    }
}
