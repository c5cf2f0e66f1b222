//! Installing a certificate and its key so that no failure, and no crash, leaves a
//! half-written file or a certificate paired with the wrong key.
//!
//! The strategy is a small redo journal:
//! 1. every new file is written beside its target as `.<name>.mayfly-new`, with its final
//!    mode (keys 0600), and fsynced; any error here removes the temporary files and leaves
//!    the installed ones byte-identical;
//! 2. the list of (temporary, target) pairs is written to the journal, which is fsynced: from
//!    this point the new set is committed;
//! 3. each temporary file is renamed over its target (the key last), and each directory is
//!    fsynced;
//! 4. the journal is removed.
//!
//! [`recover`] runs before anything else reads the files: if a journal exists, the previous
//! run stopped inside step 3, and the remaining renames are done (roll forward), because
//! every file they need was complete before the journal was written. So after a crash the
//! files are either all old or all new. Between two renames of step 3 a concurrent reader
//! could see a new certificate with the old key for an instant; the post_renew hook, which
//! is what makes a server reload, only runs after step 4.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Mode of private keys, the account file and the state file.
pub const PRIVATE: u32 = 0o600;
/// Mode of certificates: public.
pub const PUBLIC: u32 = 0o644;

/// One file to install.
#[derive(Clone, Debug)]
pub struct Output {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    renames: Vec<Rename>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Rename {
    temp: PathBuf,
    target: PathBuf,
}

/// Install `outputs` as one unit, using `journal` as the commit record (see the module doc).
/// Outputs are renamed in the order given: put the key last.
pub fn install(journal: &Path, outputs: &[Output]) -> io::Result<()> {
    let mut renames = Vec::with_capacity(outputs.len());
    for output in outputs {
        let temp = temp_path(&output.path);
        renames.push(Rename {
            temp: temp.clone(),
            target: output.path.clone(),
        });
        if let Err(e) = write_synced(&temp, &output.contents, output.mode) {
            for rename in &renames {
                let _ = fs::remove_file(&rename.temp);
            }
            return Err(annotate(e, "writing", &temp));
        }
    }
    let journal_text = serde_json::to_vec_pretty(&Journal { renames })
        .map_err(|e| io::Error::other(e.to_string()))?;
    if let Err(e) = write_atomic(journal, &journal_text, PRIVATE) {
        for output in outputs {
            let _ = fs::remove_file(temp_path(&output.path));
        }
        return Err(e);
    }
    recover(journal).map(|_| ())
}

/// Finish an install that a crash interrupted. Returns whether there was one.
pub fn recover(journal: &Path) -> io::Result<bool> {
    let text = match fs::read(journal) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(annotate(e, "reading", journal)),
    };
    let parsed: Journal = serde_json::from_slice(&text).map_err(|e| {
        io::Error::other(format!(
            "the install journal {} is damaged ({e}); check the files it names and remove it",
            journal.display()
        ))
    })?;
    for rename in &parsed.renames {
        // A rename already done in the interrupted run left no temporary file behind.
        if rename.temp.exists() {
            fs::rename(&rename.temp, &rename.target)
                .map_err(|e| annotate(e, "renaming into", &rename.target))?;
            sync_parent(&rename.target)?;
        }
    }
    fs::remove_file(journal).map_err(|e| annotate(e, "removing", journal))?;
    sync_parent(journal)?;
    Ok(true)
}

/// Replace one file atomically: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let temp = temp_path(path);
    if let Err(e) = write_synced(&temp, contents, mode) {
        let _ = fs::remove_file(&temp);
        return Err(annotate(e, "writing", &temp));
    }
    fs::rename(&temp, path).map_err(|e| annotate(e, "renaming into", path))?;
    sync_parent(path)
}

/// `.<name>.mayfly-new` in the same directory, so the rename never crosses file systems.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.mayfly-new"))
}

fn write_synced(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    // `mode` only applies to a new file; a leftover temporary file may have another.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| annotate(e, "syncing", parent))
}

fn annotate(error: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("{action} {}: {error}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(dir: &Path, tag: &str) -> Vec<Output> {
        ["cert.pem", "fullchain.pem", "key.pem"]
            .iter()
            .map(|name| Output {
                path: dir.join("out").join(name),
                contents: format!("{tag} {name}").into_bytes(),
                mode: if *name == "key.pem" { PRIVATE } else { PUBLIC },
            })
            .collect()
    }

    fn read(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join("out").join(name)).unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn install_writes_everything_with_modes_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("j.journal");
        install(&journal, &outputs(dir.path(), "old")).unwrap();
        install(&journal, &outputs(dir.path(), "new")).unwrap();
        assert_eq!(read(dir.path(), "cert.pem"), "new cert.pem");
        assert_eq!(read(dir.path(), "key.pem"), "new key.pem");
        assert_eq!(mode(&dir.path().join("out/key.pem")), 0o600);
        assert_eq!(mode(&dir.path().join("out/cert.pem")), 0o644);
        assert!(!journal.exists());
        let names: Vec<_> = fs::read_dir(dir.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn a_failed_staging_leaves_the_old_files_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("j.journal");
        install(&journal, &outputs(dir.path(), "old")).unwrap();
        let new = outputs(dir.path(), "new");
        // A directory where a file's temporary copy must go: writing it fails.
        let blocked = dir.path().join("out").join(".key.pem.mayfly-new");
        fs::create_dir(&blocked).unwrap();
        assert!(install(&journal, &new).is_err());
        for name in ["cert.pem", "fullchain.pem", "key.pem"] {
            assert_eq!(read(dir.path(), name), format!("old {name}"));
        }
        assert!(!dir.path().join("out/.cert.pem.mayfly-new").exists());
        assert!(!journal.exists());
        fs::remove_dir(&blocked).unwrap();
        install(&journal, &new).unwrap();
        assert_eq!(read(dir.path(), "key.pem"), "new key.pem");
    }

    #[test]
    fn recover_rolls_an_interrupted_install_forward() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("j.journal");
        install(&journal, &outputs(dir.path(), "old")).unwrap();
        // Simulate a crash after the journal and the first rename of step 3.
        let new = outputs(dir.path(), "new");
        let mut renames = Vec::new();
        for output in &new {
            let temp = temp_path(&output.path);
            write_synced(&temp, &output.contents, output.mode).unwrap();
            renames.push(Rename {
                temp,
                target: output.path.clone(),
            });
        }
        let text = serde_json::to_vec(&Journal { renames }).unwrap();
        fs::write(&journal, text).unwrap();
        fs::rename(temp_path(&new[0].path), &new[0].path).unwrap();
        assert_eq!(
            read(dir.path(), "key.pem"),
            "old key.pem",
            "mismatched mid-crash"
        );

        assert!(recover(&journal).unwrap());
        for name in ["cert.pem", "fullchain.pem", "key.pem"] {
            assert_eq!(read(dir.path(), name), format!("new {name}"));
        }
        assert!(!journal.exists());
        assert!(!recover(&journal).unwrap(), "nothing left to recover");
    }

    #[test]
    fn write_atomic_sets_the_mode_of_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new", PRIVATE).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o600);
    }
}
