//! SCRAM-SHA-256 (RFC 5802 with SHA-256, RFC 7677), without channel
//! binding. Both sides, as small state machines over whole messages.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::SaslError;
use crate::store::ScramKeys;

/// RFC 7677 section 4: at least 4096 iterations.
pub const MIN_ITERATIONS: u32 = 4096;
/// A client refuses more than this, so a server cannot make it spin.
pub const MAX_ITERATIONS: u32 = 10_000_000;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this never fails.
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

/// The verifiers stored for a password.
pub fn derive_keys(password: &str, salt: &[u8], iterations: u32) -> ScramKeys {
    let salted = salted_password(password, salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    ScramKeys {
        iterations,
        salt: salt.to_vec(),
        stored_key: Sha256::digest(client_key).to_vec(),
        server_key: hmac(&salted, b"Server Key").to_vec(),
    }
}

fn malformed(what: &str) -> SaslError {
    SaslError::Malformed(format!("SCRAM: {what}"))
}

/// A nonce: 18 random octets in base64 (no comma can occur).
fn new_nonce() -> String {
    STANDARD.encode(rand::random::<[u8; 18]>())
}

/// `saslname` decoding: `=2C` is `,` and `=3D` is `=`.
fn decode_name(text: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(malformed("bad escape in user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn encode_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The `x=value` attribute `key` at the start of `part`.
fn attribute(part: Option<&str>, key: char) -> Result<&str, SaslError> {
    part.and_then(|p| p.strip_prefix(key))
        .and_then(|p| p.strip_prefix('='))
        .ok_or_else(|| malformed(&format!("expected attribute `{key}`")))
}

/// The server's view of the client-first message.
#[derive(Debug, Clone)]
pub struct ClientFirst {
    /// The user to authenticate.
    pub username: String,
    gs2_header: String,
    bare: String,
    nonce: String,
}

impl ClientFirst {
    /// Parses `gs2-header client-first-bare`.
    pub fn parse(message: &[u8]) -> Result<ClientFirst, SaslError> {
        let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
        let mut parts = text.splitn(3, ',');
        let (Some(binding), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("client-first message too short"));
        };
        match binding {
            "n" | "y" => {}
            _ if binding.starts_with("p=") => {
                return Err(malformed("channel binding is not supported"));
            }
            _ => return Err(malformed("bad GS2 channel binding flag")),
        }
        let mut fields = bare.split(',');
        let username = decode_name(attribute(fields.next(), 'n')?)?;
        let nonce = attribute(fields.next(), 'r')?;
        if nonce.is_empty() || !nonce.chars().all(|c| c.is_ascii_graphic() && c != ',') {
            return Err(malformed("bad client nonce"));
        }
        if fields.any(|field| field.starts_with("m=")) {
            return Err(malformed("mandatory extensions are not supported"));
        }
        if !authzid.is_empty() && decode_name(attribute(Some(authzid), 'a')?)? != username {
            return Err(SaslError::Failed);
        }
        if username.is_empty() {
            return Err(malformed("empty user name"));
        }
        Ok(ClientFirst {
            username,
            gs2_header: format!("{binding},{authzid},"),
            bare: bare.to_owned(),
            nonce: nonce.to_owned(),
        })
    }
}

/// The server between its first message and the client's proof.
pub struct ServerExchange {
    first: ClientFirst,
    server_first: String,
    nonce: String,
    keys: ScramKeys,
}

impl std::fmt::Debug for ServerExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerExchange")
            .field("username", &self.first.username)
            .finish_non_exhaustive()
    }
}

impl ServerExchange {
    /// Answers the client-first message with the user's verifiers (for an
    /// unknown user, pass made-up keys: the exchange then fails at the
    /// proof, like a wrong password). Returns the server-first message.
    pub fn start(first: ClientFirst, keys: ScramKeys) -> (ServerExchange, String) {
        let nonce = format!("{}{}", first.nonce, new_nonce());
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&keys.salt),
            keys.iterations
        );
        let reply = server_first.clone();
        (
            ServerExchange {
                first,
                server_first,
                nonce,
                keys,
            },
            reply,
        )
    }

    /// Checks the client-final message; on success returns the
    /// server-final message (`v=...`).
    pub fn finish(&self, message: &[u8]) -> Result<String, SaslError> {
        let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| malformed("missing proof"))?;
        let mut fields = without_proof.split(',');
        let binding = attribute(fields.next(), 'c')?;
        if STANDARD.decode(binding).ok().as_deref() != Some(self.first.gs2_header.as_bytes()) {
            return Err(malformed("channel binding data does not match"));
        }
        if attribute(fields.next(), 'r')? != self.nonce {
            return Err(SaslError::Failed);
        }
        let proof = STANDARD.decode(proof).map_err(|_| SaslError::BadBase64)?;
        if proof.len() != 32 {
            return Err(SaslError::Failed);
        }
        let auth_message = format!("{},{},{without_proof}", self.first.bare, self.server_first);
        let signature = hmac(&self.keys.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        let stored_key = Sha256::digest(&client_key);
        if !bool::from(stored_key.as_slice().ct_eq(&self.keys.stored_key)) {
            return Err(SaslError::Failed);
        }
        let server_signature = hmac(&self.keys.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)))
    }

    /// The user this exchange authenticates.
    pub fn username(&self) -> &str {
        &self.first.username
    }
}

/// The client side.
pub struct ClientExchange {
    password: String,
    bare: String,
    nonce: String,
    expected_server_signature: Option<[u8; 32]>,
}

impl std::fmt::Debug for ClientExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientExchange").finish_non_exhaustive()
    }
}

impl ClientExchange {
    /// Starts an exchange; returns the client-first message.
    pub fn start(username: &str, password: &str) -> (ClientExchange, String) {
        let nonce = new_nonce();
        let bare = format!("n={},r={nonce}", encode_name(username));
        let first = format!("n,,{bare}");
        (
            ClientExchange {
                password: password.to_owned(),
                bare,
                nonce,
                expected_server_signature: None,
            },
            first,
        )
    }

    /// Answers the server-first message with the client-final message.
    pub fn respond(&mut self, server_first: &[u8]) -> Result<String, SaslError> {
        let text = std::str::from_utf8(server_first).map_err(|_| malformed("not UTF-8"))?;
        let mut fields = text.split(',');
        let nonce = attribute(fields.next(), 'r')?;
        let salt = STANDARD
            .decode(attribute(fields.next(), 's')?)
            .map_err(|_| SaslError::BadBase64)?;
        let iterations: u32 = attribute(fields.next(), 'i')?
            .parse()
            .map_err(|_| malformed("bad iteration count"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(malformed(
                "the server nonce does not extend the client nonce",
            ));
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(malformed("iteration count out of range"));
        }
        let salted = salted_password(&self.password, &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(client_key);
        let without_proof = format!("c={},r={nonce}", STANDARD.encode("n,,"));
        let auth_message = format!("{},{text},{without_proof}", self.bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.expected_server_signature =
            Some(hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }

    /// Checks the server-final message: the server knew the verifiers.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), SaslError> {
        let text = std::str::from_utf8(server_final).map_err(|_| malformed("not UTF-8"))?;
        if let Some(error) = text.strip_prefix("e=") {
            return Err(SaslError::Malformed(format!("server error {error}")));
        }
        let signature = STANDARD
            .decode(attribute(Some(text), 'v')?)
            .map_err(|_| SaslError::BadBase64)?;
        match &self.expected_server_signature {
            Some(expected) if bool::from(expected.as_slice().ct_eq(&signature)) => Ok(()),
            _ => Err(SaslError::ServerNotAuthenticated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let keys = derive_keys("pencil", b"salty", MIN_ITERATIONS);
        let (mut client, first) = ClientExchange::start("us,er", "pencil");
        let parsed = ClientFirst::parse(first.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.username, "us,er");
        let (server, server_first) = ServerExchange::start(parsed, keys.clone());
        let client_final = client
            .respond(server_first.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let server_final = server
            .finish(client_final.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client.verify(server_final.as_bytes()), Ok(()));

        let (mut wrong, first) = ClientExchange::start("user", "wrong");
        let parsed = ClientFirst::parse(first.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let (server, server_first) = ServerExchange::start(parsed, keys);
        let client_final = wrong
            .respond(server_first.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            server.finish(client_final.as_bytes()),
            Err(SaslError::Failed)
        );
    }

    /// RFC 7677 section 3 test vector.
    #[test]
    fn rfc7677_vector() {
        let salt = STANDARD
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap_or_default();
        let keys = derive_keys("pencil", &salt, 4096);
        let first = ClientFirst::parse(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut exchange = ServerExchange::start(first, keys).0;
        exchange.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
        exchange.server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".into();
        let reply = exchange.finish(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(
            reply.as_deref(),
            Ok("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        );
    }
}
