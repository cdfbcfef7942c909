//! TSIG keys (RFC 8945): read from `tsig-keygen` output or from the config.
//! The secret never appears in `Debug` output or logs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use crate::store::RegistryError;

/// Largest clock difference accepted between this host and the DNS server,
/// in seconds (the RFC 8945 recommended fudge).
pub const TSIG_FUDGE_SECS: u16 = 300;

/// HMAC algorithms usable for TSIG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
pub enum TsigAlgorithmName {
    /// HMAC-SHA256, what `tsig-keygen` generates by default.
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    /// HMAC-SHA384.
    #[serde(rename = "hmac-sha384")]
    HmacSha384,
    /// HMAC-SHA512.
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

impl TsigAlgorithmName {
    fn to_hickory(self) -> TsigAlgorithm {
        match self {
            TsigAlgorithmName::HmacSha256 => TsigAlgorithm::HmacSha256,
            TsigAlgorithmName::HmacSha384 => TsigAlgorithm::HmacSha384,
            TsigAlgorithmName::HmacSha512 => TsigAlgorithm::HmacSha512,
        }
    }

    /// The name BIND uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TsigAlgorithmName::HmacSha256 => "hmac-sha256",
            TsigAlgorithmName::HmacSha384 => "hmac-sha384",
            TsigAlgorithmName::HmacSha512 => "hmac-sha512",
        }
    }
}

impl FromStr for TsigAlgorithmName {
    type Err = RegistryError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "hmac-sha256" => Ok(TsigAlgorithmName::HmacSha256),
            "hmac-sha384" => Ok(TsigAlgorithmName::HmacSha384),
            "hmac-sha512" => Ok(TsigAlgorithmName::HmacSha512),
            other => Err(RegistryError::Key(format!(
                "algorithm `{other}` is not supported; use hmac-sha256 (tsig-keygen -a hmac-sha256), hmac-sha384 or hmac-sha512"
            ))),
        }
    }
}

/// A TSIG secret. Its `Debug` shows only its length; its schema is the
/// base64 text, marked write-only, and never has a default.
#[derive(Clone, PartialEq, Eq, JsonSchema)]
#[schemars(with = "String", extend("writeOnly" = true))]
pub struct TsigSecret(Vec<u8>);

impl TsigSecret {
    /// A secret from raw bytes.
    pub fn new(bytes: Vec<u8>) -> TsigSecret {
        TsigSecret(bytes)
    }

    /// A secret from its base64 text, as in named.conf.
    pub fn from_base64(text: &str) -> Result<TsigSecret, RegistryError> {
        BASE64
            .decode(text.trim())
            .map(TsigSecret)
            .map_err(|_| RegistryError::Key("the secret is not valid base64".to_owned()))
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for TsigSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TsigSecret(<{} bytes, redacted>)", self.0.len())
    }
}

impl<'de> Deserialize<'de> for TsigSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TsigSecret::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// A named TSIG key.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// Key name, as in named.conf (`fnaa-update`).
    pub name: String,
    /// HMAC algorithm.
    pub algorithm: TsigAlgorithmName,
    /// The shared secret.
    pub secret: TsigSecret,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret)
            .finish()
    }
}

impl TsigKey {
    /// Reads the first `key` statement of a BIND key file, such as the
    /// output of `tsig-keygen -a hmac-sha256 fnaa-update`.
    pub fn load(path: &Path) -> Result<TsigKey, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            RegistryError::Key(format!("cannot read {}: {error}", path.display()))
        })?;
        TsigKey::parse_bind(&text)
            .map_err(|error| RegistryError::Key(format!("{}: {error}", path.display())))
    }

    /// Parses the first `key "<name>" { algorithm <alg>; secret "<base64>"; };`
    /// statement of named.conf syntax.
    pub fn parse_bind(text: &str) -> Result<TsigKey, String> {
        let tokens = tokenize(text)?;
        let start = tokens
            .iter()
            .position(|token| token.eq_ignore_ascii_case("key"))
            .ok_or("no `key` statement (expected the output of tsig-keygen)")?;
        let mut tokens = tokens[start + 1..].iter().map(String::as_str);
        let name = tokens.next().ok_or("`key` without a name")?.to_owned();
        if tokens.next() != Some("{") {
            return Err(format!("`{{` expected after key \"{name}\""));
        }
        let mut algorithm = None;
        let mut secret = None;
        loop {
            match tokens.next() {
                Some("}") | None => break,
                Some(";") => {}
                Some(clause) => {
                    let value = tokens
                        .next()
                        .ok_or_else(|| format!("`{clause}` without a value"))?;
                    match clause.to_ascii_lowercase().as_str() {
                        "algorithm" => {
                            algorithm = Some(
                                TsigAlgorithmName::from_str(value)
                                    .map_err(|error| error.to_string())?,
                            );
                        }
                        "secret" => {
                            secret = Some(
                                TsigSecret::from_base64(value)
                                    .map_err(|error| error.to_string())?,
                            );
                        }
                        other => return Err(format!("unknown clause `{other}` in key \"{name}\"")),
                    }
                }
            }
        }
        Ok(TsigKey {
            algorithm: algorithm.ok_or_else(|| format!("key \"{name}\" has no algorithm"))?,
            secret: secret.ok_or_else(|| format!("key \"{name}\" has no secret"))?,
            name,
        })
    }

    /// The hickory signer of this key.
    pub(crate) fn signer(&self) -> Result<TSigner, RegistryError> {
        let name = crate::records::fqdn(self.name.strip_suffix('.').unwrap_or(&self.name))
            .map_err(|error| RegistryError::Key(format!("invalid key name: {error}")))?;
        TSigner::new(
            self.secret.expose().to_vec(),
            self.algorithm.to_hickory(),
            name,
            TSIG_FUDGE_SECS,
        )
        .map_err(|error| RegistryError::Key(error.to_string()))
    }
}

/// The TSIG key of `[dns.registry.tsig]`: a key file, or a name and secret.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TsigConfig {
    /// File written by `tsig-keygen -a hmac-sha256 <name>`: the
    /// `key "<name>" { algorithm ...; secret "..."; };` statement that
    /// named.conf also includes. Preferred: the secret stays out of
    /// fnaa.toml. Give either this or `name` and `secret`.
    pub key_file: Option<PathBuf>,
    /// Key name, as declared in named.conf (with `secret`).
    pub name: Option<String>,
    /// HMAC algorithm (with `secret`): `hmac-sha256` (default),
    /// `hmac-sha384` or `hmac-sha512`.
    pub algorithm: Option<TsigAlgorithmName>,
    /// Base64 secret (with `name`). Never logged.
    pub secret: Option<TsigSecret>,
}

impl TsigConfig {
    /// The key this configuration designates.
    pub fn key(&self) -> Result<TsigKey, RegistryError> {
        match (&self.key_file, &self.name, &self.secret) {
            (Some(path), None, None) => {
                let key = TsigKey::load(path)?;
                match self.algorithm {
                    Some(algorithm) if algorithm != key.algorithm => {
                        Err(RegistryError::Key(format!(
                            "{} is a {} key but `algorithm` says {}",
                            path.display(),
                            key.algorithm.as_str(),
                            algorithm.as_str()
                        )))
                    }
                    _ => Ok(key),
                }
            }
            (None, Some(name), Some(secret)) => Ok(TsigKey {
                name: name.clone(),
                algorithm: self.algorithm.unwrap_or_default(),
                secret: secret.clone(),
            }),
            _ => Err(RegistryError::Key(
                "give either `key_file` (from tsig-keygen) or both `name` and `secret`".to_owned(),
            )),
        }
    }
}

/// named.conf tokens: words, quoted strings (unquoted), `{`, `}` and `;`;
/// comments (`#`, `//`, `/* */`) dropped.
fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                loop {
                    match chars.next() {
                        Some('/') if previous == '*' => break,
                        Some(c) => previous = c,
                        None => return Err("unterminated /* comment".to_owned()),
                    }
                }
            }
            '{' | '}' | ';' => tokens.push(c.to_string()),
            '"' => {
                let mut quoted = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => quoted.push(c),
                        None => return Err("unterminated quoted string".to_owned()),
                    }
                }
                tokens.push(quoted);
            }
            c => {
                let mut word = c.to_string();
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || matches!(next, '{' | '}' | ';' | '"') {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                tokens.push(word);
            }
        }
    }
    Ok(tokens)
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYGEN_OUTPUT: &str = "key \"fnaa-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=\";\n};\n";

    #[test]
    fn reads_tsig_keygen_output() {
        let key = TsigKey::parse_bind(&format!("# generated\n{KEYGEN_OUTPUT}")).expect("key");
        assert_eq!(key.name, "fnaa-update");
        assert_eq!(key.algorithm, TsigAlgorithmName::HmacSha256);
        assert_eq!(key.secret.expose(), b"secret-secret-secret-secret-secr");
        assert!(key.signer().is_ok());
    }

    #[test]
    fn the_secret_is_never_in_debug_output() {
        let key = TsigKey::parse_bind(KEYGEN_OUTPUT).expect("key");
        let shown = format!("{key:?} {:?}", key.secret);
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(!shown.contains("secret-secret"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        let config: TsigConfig = toml::from_str(
            "name = \"k\"\nsecret = \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=\"",
        )
        .expect("config");
        let shown = format!("{config:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }

    #[test]
    fn bad_keys_say_why() {
        assert!(TsigKey::parse_bind("options { };").is_err());
        let md5 = "key \"k\" { algorithm hmac-md5; secret \"AAAA\"; };";
        let error = TsigKey::parse_bind(md5).err().unwrap_or_default();
        assert!(error.contains("hmac-md5"), "{error}");
        let no_secret = "key \"k\" { algorithm hmac-sha256; };";
        assert!(TsigKey::parse_bind(no_secret).is_err());
        let both = TsigConfig {
            key_file: Some(PathBuf::from("/x")),
            name: Some("k".into()),
            ..TsigConfig::default()
        };
        assert!(both.key().is_err());
    }
}
