//! Signed, expiring tokens for embedding Kelpie in other apps (JupyterHub, Coder, portals).
//!
//! Format: `v1.<base64url(user)>.<expiry unix seconds>.<base64url(HMAC-SHA256)>`, the MAC
//! covering `v1.<user>.<expiry>`. Stateless: any Kelpie with the secret can check it, and
//! the expiry bounds a leaked link's usefulness.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("user name must be 1-64 characters of A-Z a-z 0-9 . _ @ -")]
    BadUser,
}

/// Mints and checks tokens with one secret.
pub struct TokenKey(hmac::Key);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<secret>)")
    }
}

pub fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

impl TokenKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    pub fn mint(&self, user: &str, expires_unix: u64) -> Result<String, TokenError> {
        if !valid_user(user) {
            return Err(TokenError::BadUser);
        }
        let body = format!("v1.{}.{expires_unix}", URL_SAFE_NO_PAD.encode(user));
        let tag = hmac::sign(&self.0, body.as_bytes());
        Ok(format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
    }

    /// Checks a token at time `now_unix`; returns its user.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<String, TokenError> {
        if token.len() > 512 {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let mut parts = body.split('.');
        let (Some("v1"), Some(user_b64), Some(expiry), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        // ring compares in constant time.
        hmac::verify(&self.0, body.as_bytes(), &tag).map_err(|_| TokenError::BadSignature)?;
        let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        if now_unix >= expiry {
            return Err(TokenError::Expired);
        }
        let user = URL_SAFE_NO_PAD.decode(user_b64).map_err(|_| TokenError::Malformed)?;
        String::from_utf8(user).ok().filter(|u| valid_user(u)).ok_or(TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_verifies_until_it_expires() {
        let k = TokenKey::new(b"secret");
        let t = k.mint("alice", 1000).unwrap();
        assert_eq!(k.verify(&t, 999), Ok("alice".into()));
        assert_eq!(k.verify(&t, 1000), Err(TokenError::Expired));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let k = TokenKey::new(b"secret");
        let t = k.mint("alice", 1000).unwrap();
        let forged = t.replacen(".1000.", ".9999.", 1);
        assert_eq!(k.verify(&forged, 1), Err(TokenError::BadSignature));
        assert_eq!(TokenKey::new(b"other").verify(&t, 1), Err(TokenError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let k = TokenKey::new(b"secret");
        for g in ["", ".", "v1", "v1.a.b", "v1.a.b.c.d", "v2.YQ.5.AAAA", "v1.!!.5.AAAA", &"x".repeat(10_000)] {
            assert!(k.verify(g, 1).is_err(), "{g:?}");
        }
    }

    #[test]
    fn user_names_are_restricted() {
        let k = TokenKey::new(b"s");
        assert_eq!(k.mint("a b", 5), Err(TokenError::BadUser));
        assert_eq!(k.mint("", 5), Err(TokenError::BadUser));
        assert!(k.mint("jo.doe@uni-x.edu", 5).is_ok());
    }
}
