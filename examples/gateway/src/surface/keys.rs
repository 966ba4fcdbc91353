//! API keys: each has a name and scopes (which surface, read or write); the key file is
//! re-read on SIGHUP without a restart, so a key removed from it is refused (401) from the
//! next request on.
//!
//! Key file (`--api-key-file`), one key per line, `#` comments:
//!
//! ```text
//! # name: key [scope ...]
//! ris:      9f2c64d1e0b3a7c5          hl7:write
//! viewer:   51ab0c7d2e9f8a6b          fhir:read dicomweb:read
//! modality: sha256:<64 hex digits>    mpps:write dicomweb:write
//! ops:      0d8e6f4a2b1c3e5f          *
//! ```
//!
//! A scope is `SURFACE:ACCESS` with SURFACE one of `fhir`, `hl7`, `mpps`, `dicomweb` or
//! `*`, and ACCESS `read`, `write` or `*`; `*` alone is every scope. A key without scopes
//! has every scope, as have the older forms (`name: key`, a bare key per line) and the
//! single key of `--api-key` / `XENRAD_API_KEY` or the generated one. A key may be written
//! as `sha256:` and the hex SHA-256 of the key, so the file need not hold the secret.
//! Keys are compared as SHA-256 digests, every key every time, in constant time.

use std::sync::{Arc, RwLock};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The surfaces a scope names.
pub const SURFACES: [&str; 4] = ["fhir", "hl7", "mpps", "dicomweb"];

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// GET/HEAD and searches.
    Read,
    /// Everything that stores or changes something.
    Write,
}

impl Access {
    /// The word used in scopes.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// A set of scopes, one bit per (surface, access).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope.
    pub const ALL: Scopes = Scopes(0xff);

    fn bit(surface: usize, access: Access) -> u8 {
        1 << (surface * 2 + usize::from(access == Access::Write))
    }

    /// Whether the set allows `access` on `surface` (a name of [`SURFACES`]).
    pub fn allows(self, surface: &str, access: Access) -> bool {
        SURFACES
            .iter()
            .position(|s| *s == surface)
            .is_some_and(|i| self.0 & Self::bit(i, access) != 0)
    }

    /// Parses one scope word (`fhir:read`, `dicomweb:*`, `*:read`, `*`).
    pub fn parse_one(word: &str) -> Result<Scopes, String> {
        if word == "*" {
            return Ok(Scopes::ALL);
        }
        let bad = || {
            format!(
                "unknown scope {word:?} (SURFACE:ACCESS with SURFACE fhir, hl7, mpps, dicomweb or *, ACCESS read, write or *; or *)"
            )
        };
        let (s, a) = word.split_once(':').ok_or_else(bad)?;
        let accesses: &[Access] = match a {
            "read" => &[Access::Read],
            "write" => &[Access::Write],
            "*" => &[Access::Read, Access::Write],
            _ => return Err(bad()),
        };
        let surfaces: Vec<usize> = if s == "*" {
            (0..SURFACES.len()).collect()
        } else {
            vec![SURFACES.iter().position(|x| *x == s).ok_or_else(bad)?]
        };
        let mut bits = 0;
        for i in surfaces {
            for &acc in accesses {
                bits |= Self::bit(i, acc);
            }
        }
        Ok(Scopes(bits))
    }

    /// The scope words, for logs (`*` for all).
    pub fn describe(self) -> String {
        if self == Scopes::ALL {
            return "*".into();
        }
        let mut out = Vec::new();
        for (i, s) in SURFACES.iter().enumerate() {
            for a in [Access::Read, Access::Write] {
                if self.0 & Self::bit(i, a) != 0 {
                    out.push(format!("{s}:{}", a.as_str()));
                }
            }
        }
        out.join(" ")
    }
}

/// One accepted key.
#[derive(Clone, Debug)]
pub struct ApiKey {
    /// Its name (for logs and the audit trail; never the key).
    pub name: Arc<str>,
    digest: [u8; 32],
    /// What it may do.
    pub scopes: Scopes,
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl ApiKey {
    /// A key given in clear.
    pub fn new(name: &str, key: &str, scopes: Scopes) -> Self {
        ApiKey {
            name: name.into(),
            digest: sha256(key.trim().as_bytes()),
            scopes,
        }
    }
}

/// Who a request was authenticated as.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key's name.
    pub name: Arc<str>,
    /// The key's scopes.
    pub scopes: Scopes,
}

/// Parses a key file (see the module documentation). Errors name the line.
pub fn parse_key_file(text: &str) -> Result<Vec<ApiKey>, String> {
    let mut out: Vec<ApiKey> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lineno = n + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.split_once(':') {
            // `name: key [scopes]`; a name has no spaces (else the colon belongs to a scope
            // or a sha256: key of a line without a name).
            Some((name, rest))
                if !name.trim().is_empty()
                    && !name.contains(char::is_whitespace)
                    && name != "sha256" =>
            {
                (name.trim().to_owned(), rest.trim())
            }
            _ => (format!("key-line-{lineno}"), line),
        };
        let mut words = rest.split_whitespace();
        let Some(key) = words.next() else {
            return Err(format!("line {lineno}: key {name:?} has no key"));
        };
        let digest = if let Some(hex) = key.strip_prefix("sha256:") {
            parse_hex32(hex)
                .ok_or_else(|| format!("line {lineno}: {name:?}: sha256: needs 64 hex digits"))?
        } else {
            sha256(key.as_bytes())
        };
        let mut scopes = Scopes::default();
        let mut any = false;
        for w in words {
            any = true;
            for part in w.split(',').filter(|p| !p.is_empty()) {
                scopes.0 |= Scopes::parse_one(part)
                    .map_err(|e| format!("line {lineno}: {e}"))?
                    .0;
            }
        }
        if !any {
            scopes = Scopes::ALL;
        }
        if out.iter().any(|k| *k.name == *name) {
            return Err(format!("line {lineno}: a second key named {name:?}"));
        }
        out.push(ApiKey {
            name: name.into(),
            digest,
            scopes,
        });
    }
    Ok(out)
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The accepted keys, replaceable while serving (SIGHUP).
#[derive(Clone, Default)]
pub struct ApiKeys(Arc<RwLock<Arc<Vec<ApiKey>>>>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("count", &self.snapshot().len())
            .finish()
    }
}

impl ApiKeys {
    /// Keys with every scope (empty strings are ignored), named `key-1`, `key-2`, ….
    pub fn new(keys: impl IntoIterator<Item = String>) -> Self {
        Self::from_keys(
            keys.into_iter()
                .filter(|k| !k.trim().is_empty())
                .enumerate()
                .map(|(i, k)| ApiKey::new(&format!("key-{}", i + 1), &k, Scopes::ALL))
                .collect(),
        )
    }

    /// These keys.
    pub fn from_keys(keys: Vec<ApiKey>) -> Self {
        ApiKeys(Arc::new(RwLock::new(Arc::new(keys))))
    }

    /// Replaces the keys: requests from now on are checked against `keys` only.
    pub fn replace(&self, keys: Vec<ApiKey>) {
        let mut g = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *g = Arc::new(keys);
    }

    fn snapshot(&self) -> Arc<Vec<ApiKey>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether no key is accepted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key `presented` is, if any. Every key's digest is compared (no early exit), so
    /// the time taken does not reveal which key, or how much of one, matched.
    pub fn check(&self, presented: &[u8]) -> Option<Caller> {
        let keys = self.snapshot();
        let d = sha256(presented);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, k) in keys.iter().enumerate() {
            let eq = k.digest.ct_eq(&d);
            index = u32::conditional_select(&index, &(i as u32), eq);
            found |= eq;
        }
        bool::from(found).then(|| {
            let k = &keys[index as usize];
            Caller {
                name: k.name.clone(),
                scopes: k.scopes,
            }
        })
    }

    /// Whether `presented` is one of the keys (any scope).
    pub fn accepts(&self, presented: &[u8]) -> bool {
        self.check(presented).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_forms_scopes_and_errors() {
        let digest = {
            let d = sha256(b"hashed-secret");
            d.iter().fold(String::new(), |mut s, b| {
                use std::fmt::Write as _;
                let _ = write!(s, "{b:02x}");
                s
            })
        };
        let text = format!(
            "# comment\n\nlegacy-bare-key\nold: old-key\nris: ris-key hl7:write\nviewer: v-key fhir:read,dicomweb:read\n\
             modality: sha256:{digest} mpps:* dicomweb:write\nops: ops-key *\nreaders: r-key *:read\n"
        );
        let keys = ApiKeys::from_keys(parse_key_file(&text).unwrap());
        assert_eq!(keys.len(), 7);
        let who = |k: &str| {
            keys.check(k.as_bytes())
                .map(|c| (c.name.to_string(), c.scopes))
        };
        assert_eq!(
            who("legacy-bare-key").unwrap(),
            ("key-line-3".into(), Scopes::ALL)
        );
        assert_eq!(who("old-key").unwrap(), ("old".into(), Scopes::ALL));
        let ris = who("ris-key").unwrap().1;
        assert!(ris.allows("hl7", Access::Write) && !ris.allows("fhir", Access::Read));
        let v = who("v-key").unwrap().1;
        assert!(v.allows("fhir", Access::Read) && v.allows("dicomweb", Access::Read));
        assert!(!v.allows("fhir", Access::Write) && !v.allows("mpps", Access::Read));
        let m = who("hashed-secret").unwrap();
        assert_eq!(m.0, "modality");
        assert!(m.1.allows("mpps", Access::Read) && m.1.allows("dicomweb", Access::Write));
        assert!(!m.1.allows("dicomweb", Access::Read));
        assert_eq!(m.1.describe(), "mpps:read mpps:write dicomweb:write");
        let r = who("r-key").unwrap().1;
        assert!(
            SURFACES
                .iter()
                .all(|s| r.allows(s, Access::Read) && !r.allows(s, Access::Write))
        );
        assert!(who("nope").is_none() && who("").is_none());
        // Replacing revokes at once.
        keys.replace(parse_key_file("ris: ris-key hl7:write").unwrap());
        assert!(who("old-key").is_none());
        assert!(who("ris-key").is_some());

        for (bad, want) in [
            ("a: k fhir:delete", "line 1: unknown scope"),
            ("\n\nb: k mllp:write", "line 3: unknown scope"),
            ("c:", "line 1: key \"c\" has no key"),
            (
                "d: sha256:abc",
                "line 1: \"d\": sha256: needs 64 hex digits",
            ),
            ("e: k1\ne: k2", "line 2: a second key named \"e\""),
        ] {
            let e = parse_key_file(bad).unwrap_err();
            assert!(e.starts_with(want), "{bad:?}: {e}");
        }
    }
}
