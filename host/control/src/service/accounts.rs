//! Accounts and authentication (PLAIN and SCRAM), managed by the operator.

use crate::names::{DnsName, check_user_name};
use crate::sasl::credentials;
use crate::store::{Account, Change, ScramKeys, now_unix};

use super::{Principal, Service, ServiceError, not_found};

impl Service {
    /// Checks a user name and password (PLAIN). Unknown users cost the
    /// same time as wrong passwords.
    pub async fn authenticate_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Principal, ServiceError> {
        let account = self.store.account(username).await?;
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let _slot = self
            .password_checks
            .acquire()
            .await
            .map_err(|_| ServiceError::Store("shutting down".into()))?;
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || match hash {
            Some(hash) => credentials::verify_password(&password, &hash),
            None => {
                credentials::verify_password(&password, credentials::dummy_hash());
                false
            }
        })
        .await
        .unwrap_or(false);
        if matches && account.is_some() {
            Ok(Principal::User(username.to_owned()))
        } else {
            Err(ServiceError::AuthenticationFailed)
        }
    }

    /// The SCRAM verifiers of a user; made-up but stable ones for an unknown
    /// user, so that the exchange fails only at the proof.
    pub async fn scram_keys(&self, username: &str) -> Result<(ScramKeys, bool), ServiceError> {
        if let Some(account) = self.store.account(username).await? {
            return Ok((account.scram, true));
        }
        use sha2::Digest as _;
        let mut digest = sha2::Sha256::new();
        digest.update(self.unknown_user_secret);
        digest.update(username.as_bytes());
        let salt = digest.finalize()[..16].to_vec();
        let keys = ScramKeys {
            iterations: self
                .policy
                .scram_iterations
                .max(crate::sasl::scram::MIN_ITERATIONS),
            salt,
            stored_key: rand::random::<[u8; 32]>().to_vec(),
            server_key: rand::random::<[u8; 32]>().to_vec(),
        };
        Ok((keys, false))
    }

    fn require_operator(principal: &Principal) -> Result<(), ServiceError> {
        match principal {
            Principal::Operator => Ok(()),
            _ => Err(ServiceError::PermissionDenied(
                "only the operator manages accounts".into(),
            )),
        }
    }

    async fn make_account(
        &self,
        name: &str,
        password: &str,
        created_unix: u64,
    ) -> Result<Account, ServiceError> {
        check_user_name(name)
            .map_err(|e| ServiceError::InvalidArgument(format!("invalid user name: {e}")))?;
        if password.is_empty() {
            return Err(ServiceError::InvalidArgument(
                "the password must not be empty".into(),
            ));
        }
        let password = password.to_owned();
        let iterations = self.policy.scram_iterations;
        let (password_hash, scram) =
            tokio::task::spawn_blocking(move || credentials::derive(&password, iterations))
                .await
                .map_err(|e| ServiceError::Store(e.to_string()))?
                .map_err(|e| ServiceError::Store(e.to_string()))?;
        Ok(Account {
            name: name.to_owned(),
            password_hash,
            scram,
            created_unix,
        })
    }

    /// Creates an account.
    pub async fn add_user(
        &self,
        principal: &Principal,
        name: &str,
        password: &str,
    ) -> Result<(), ServiceError> {
        Self::require_operator(principal)?;
        let account = self.make_account(name, password, now_unix()).await?;
        Ok(self.store.apply(Change::CreateAccount(account)).await?)
    }

    /// Sets a new password.
    pub async fn set_password(
        &self,
        principal: &Principal,
        name: &str,
        password: &str,
    ) -> Result<(), ServiceError> {
        Self::require_operator(principal)?;
        let existing = self
            .store
            .account(name)
            .await?
            .ok_or_else(|| not_found("account", name))?;
        let account = self
            .make_account(name, password, existing.created_unix)
            .await?;
        Ok(self.store.apply(Change::ReplaceAccount(account)).await?)
    }

    /// Removes an account that owns no namespace.
    pub async fn remove_user(&self, principal: &Principal, name: &str) -> Result<(), ServiceError> {
        Self::require_operator(principal)?;
        Ok(self
            .store
            .apply(Change::DeleteAccount(name.to_owned()))
            .await?)
    }

    /// The accounts, with the namespaces each owns.
    pub async fn list_users(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(String, Vec<DnsName>)>, ServiceError> {
        Self::require_operator(principal)?;
        let namespaces = self.store.namespaces().await?;
        Ok(self
            .store
            .accounts()
            .await?
            .into_iter()
            .map(|account| {
                let owned = namespaces
                    .iter()
                    .filter(|ns| ns.owner == account.name)
                    .map(|ns| ns.name.clone())
                    .collect();
                (account.name, owned)
            })
            .collect())
    }
}
