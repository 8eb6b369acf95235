//! An API token's secret: drawn once, shown once, stored and compared only as its SHA-256.

use crate::web::auth::{random_token, token_hash};

/// The prefix every token carries, so a leaked one is recognisable in logs and secret scanners.
const PREFIX: &str = "mit_";

/// A token's secret as handed to its holder.
pub struct ApiSecret(String);

impl ApiSecret {
    /// A new secret: 32 random bytes (256 bits) as hex, after the prefix (as session tokens).
    pub fn draw() -> ApiSecret {
        ApiSecret(format!("{PREFIX}{}", random_token()))
    }

    /// A secret as a caller presented it.
    pub fn presented(text: &str) -> ApiSecret {
        ApiSecret(text.trim().to_string())
    }

    /// What the store keys the token by. A plain SHA-256 is enough: the secret has 256 bits
    /// of entropy, so there is nothing for a slow hash to protect against guessing.
    pub fn hash(&self) -> String {
        token_hash(&self.0)
    }

    /// The secret itself: printed once by `tokens add`, never logged.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::ApiSecret;

    #[test]
    fn drawn_secrets_differ_and_hash_the_same_when_presented_again() {
        let one = ApiSecret::draw();
        let two = ApiSecret::draw();
        assert_ne!(one.expose(), two.expose());
        assert!(one.expose().starts_with("mit_") && one.expose().len() == 68);
        let again = ApiSecret::presented(&format!(" {}\n", one.expose()));
        assert_eq!(again.hash(), one.hash());
        assert_ne!(one.hash(), two.hash());
        assert!(!format!("{one:?}").contains(one.expose()));
    }
}
