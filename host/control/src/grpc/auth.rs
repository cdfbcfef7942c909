//! Who is calling: the `authorization` metadata (operator token or Basic
//! credentials), with FNAP's throttling of failed logins.

use std::net::IpAddr;

use base64::Engine as _;
use subtle::ConstantTimeEq as _;
use tonic::{Request, Status};

use super::ControlApi;
use super::convert::status;
use crate::service::{Principal, ServiceError};

impl ControlApi {
    /// The caller, from the `authorization` metadata. Credentials are
    /// checked with FNAP's throttling of failed logins per address.
    pub(super) async fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        if self.local_operator {
            return Ok(Principal::Operator);
        }
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization metadata"))?
            .to_str()
            .map_err(|_| Status::unauthenticated("malformed authorization metadata"))?;
        let peer = request.remote_addr().map(|address| address.ip());
        if let Some(token) = header.strip_prefix("Bearer ") {
            self.refuse_if_throttled(peer)?;
            return match &self.admin_token {
                Some(expected)
                    if bool::from(expected.as_bytes().ct_eq(token.trim().as_bytes())) =>
                {
                    Ok(Principal::Operator)
                }
                _ => Err(self
                    .login_failed(peer, "Bearer", "invalid operator token")
                    .await),
            };
        }
        if let Some(encoded) = header.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| Status::unauthenticated("malformed Basic credentials"))?;
            let text = String::from_utf8(decoded)
                .map_err(|_| Status::unauthenticated("malformed Basic credentials"))?;
            let (user, password) = text
                .split_once(':')
                .ok_or_else(|| Status::unauthenticated("malformed Basic credentials"))?;
            self.refuse_if_throttled(peer)?;
            return match self.service.authenticate_password(user, password).await {
                Ok(principal) => Ok(principal),
                Err(error @ ServiceError::AuthenticationFailed) => {
                    Err(self.login_failed(peer, "Basic", &error.to_string()).await)
                }
                Err(error) => Err(status(error)),
            };
        }
        Err(Status::unauthenticated(
            "authorization must be Bearer or Basic",
        ))
    }

    /// `resource_exhausted` while `peer` has failed too often.
    fn refuse_if_throttled(&self, peer: Option<IpAddr>) -> Result<(), Status> {
        match peer {
            Some(address) if self.throttle.is_blocked(address) => Err(Status::resource_exhausted(
                "too many failed logins from your address, try again later",
            )),
            _ => Ok(()),
        }
    }

    /// Counts a failed login, waits `login_failure_delay_ms` and says
    /// `unauthenticated`.
    async fn login_failed(&self, peer: Option<IpAddr>, scheme: &str, text: &str) -> Status {
        tracing::info!(peer = ?peer, scheme, "failed gRPC login");
        if let Some(address) = peer {
            self.throttle.record_failure(address);
        }
        tokio::time::sleep(self.throttle.failure_delay()).await;
        Status::unauthenticated(text)
    }
}
