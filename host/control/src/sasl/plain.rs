//! PLAIN (RFC 4616): `[authzid] NUL authcid NUL password`.

use super::SaslError;

/// Credentials sent with PLAIN.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Parses the client's message. An authorization identity other than the
/// user itself is refused: acting for another account is not offered.
pub fn parse(message: &[u8]) -> Result<PlainCredentials, SaslError> {
    let text = std::str::from_utf8(message)
        .map_err(|_| SaslError::Malformed("PLAIN message is not UTF-8".into()))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(username), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed(
            "PLAIN message must be [authzid] NUL user NUL password".into(),
        ));
    };
    if username.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed(
            "PLAIN user and password must not be empty".into(),
        ));
    }
    if !authzid.is_empty() && authzid != username {
        return Err(SaslError::Failed);
    }
    Ok(PlainCredentials {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// The client's message for `username` and `password`.
pub fn message(username: &str, password: &str) -> Vec<u8> {
    format!("\0{username}\0{password}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thesis_credentials() {
        let decoded = crate::sasl::decode("AHRlc3QAdGVzdA==").unwrap_or_default();
        assert_eq!(
            parse(&decoded),
            Ok(PlainCredentials {
                username: "test".into(),
                password: "test".into()
            })
        );
        assert_eq!(
            crate::sasl::encode(&message("test", "test")),
            "AHRlc3QAdGVzdA=="
        );
        assert!(parse(b"test\0test").is_err());
        assert_eq!(parse(b"other\0test\0test"), Err(SaslError::Failed));
    }
}
