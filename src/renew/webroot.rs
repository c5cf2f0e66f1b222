//! http-01 (RFC 8555 §8.3) through an existing web server: the key authorization is written
//! to `<webroot>/.well-known/acme-challenge/<token>` and removed after the order.

use std::path::{Path, PathBuf};

use super::files;

/// Token files written so far, removed by [`Webroot::cleanup`].
pub struct Webroot {
    root: PathBuf,
    written: Vec<PathBuf>,
}

impl Webroot {
    pub fn new(root: &Path) -> Self {
        Webroot {
            root: root.to_owned(),
            written: Vec::new(),
        }
    }

    pub fn provision(&mut self, token: &str, key_authorization: &str) -> Result<(), String> {
        // A token is base64url (RFC 8555 §8.1); anything else could climb out of the webroot.
        if token.is_empty()
            || !token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "http-01: the server sent an unsafe token {token:?}"
            ));
        }
        let path = self
            .root
            .join(".well-known")
            .join("acme-challenge")
            .join(token);
        files::write_atomic(&path, key_authorization.as_bytes(), files::PUBLIC)
            .map_err(|e| format!("http-01 webroot: {e}"))?;
        self.written.push(path);
        Ok(())
    }

    pub fn cleanup(&mut self) {
        for path in self.written.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Webroot {
    fn drop(&mut self) {
        self.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_removes_token_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut webroot = Webroot::new(dir.path());
        webroot.provision("abc_-1", "abc_-1.thumb").unwrap();
        let path = dir.path().join(".well-known/acme-challenge/abc_-1");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abc_-1.thumb");
        assert!(webroot.provision("../../etc/passwd", "x").is_err());
        webroot.cleanup();
        assert!(!path.exists());
    }
}
