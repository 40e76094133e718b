//! Signed, expiring tokens for embedding Kelpie in other apps (JupyterHub, Coder, portals)
//! and for the links owners share from the page.
//!
//! Format: `v2.<base64url(user)>.<expiry unix seconds>.<role>.<base64url(desktop)>.<base64url(HMAC-SHA256)>`,
//! the MAC covering everything before it. Stateless: any Kelpie with the secret can check
//! it, the expiry bounds a leaked link's usefulness, the role says what its holder may do,
//! and the desktop id keeps a token for one desktop from opening another that shares
//! the secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;

use super::Role;

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
    #[error("token is for another desktop")]
    OtherDesktop,
    #[error("token format v1 is no longer accepted (it names no role or desktop): mint a new one with `kelpie token`")]
    OldFormat,
}

/// What a valid token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub user: String,
    pub role: Role,
    /// The desktop id (`--desktop-id`) the token opens.
    pub desktop: String,
    pub expires_unix: u64,
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

    pub fn mint(&self, claims: &Claims) -> Result<String, TokenError> {
        if !valid_user(&claims.user) {
            return Err(TokenError::BadUser);
        }
        let body = format!(
            "v2.{}.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(&claims.user),
            claims.expires_unix,
            claims.role,
            URL_SAFE_NO_PAD.encode(&claims.desktop)
        );
        let tag = hmac::sign(&self.0, body.as_bytes());
        Ok(format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
    }

    /// Checks a token for `desktop` at time `now_unix`; returns what it says.
    pub fn verify(&self, token: &str, now_unix: u64, desktop: &str) -> Result<Claims, TokenError> {
        if token.len() > 1024 {
            return Err(TokenError::Malformed);
        }
        if token.starts_with("v1.") {
            return Err(TokenError::OldFormat);
        }
        let (body, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let parts: Vec<&str> = body.split('.').collect();
        let ["v2", user_b64, expiry, role, desktop_b64] = parts.as_slice() else {
            return Err(TokenError::Malformed);
        };
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        // ring compares in constant time.
        hmac::verify(&self.0, body.as_bytes(), &tag).map_err(|_| TokenError::BadSignature)?;
        let expires_unix: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        if now_unix >= expires_unix {
            return Err(TokenError::Expired);
        }
        let text = |b64: &str| {
            URL_SAFE_NO_PAD.decode(b64).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(TokenError::Malformed)
        };
        let user = text(user_b64).and_then(|u| if valid_user(&u) { Ok(u) } else { Err(TokenError::Malformed) })?;
        let token_desktop = text(desktop_b64)?;
        if token_desktop != desktop {
            return Err(TokenError::OtherDesktop);
        }
        let role = role.parse().map_err(|_| TokenError::Malformed)?;
        Ok(Claims { user, role, desktop: token_desktop, expires_unix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(user: &str, role: Role, expires_unix: u64) -> Claims {
        Claims { user: user.into(), role, desktop: "/".into(), expires_unix }
    }

    #[test]
    fn minted_token_verifies_with_its_role_until_it_expires() {
        let k = TokenKey::new(b"secret");
        let t = k.mint(&claims("alice", Role::Guest, 1000)).unwrap();
        assert_eq!(k.verify(&t, 999, "/"), Ok(claims("alice", Role::Guest, 1000)));
        assert_eq!(k.verify(&t, 1000, "/"), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_opens_only_its_own_desktop() {
        let k = TokenKey::new(b"secret");
        let t = k.mint(&Claims { desktop: "/user/alice/".into(), ..claims("alice", Role::Owner, 1000) }).unwrap();
        assert!(k.verify(&t, 1, "/user/alice/").is_ok());
        assert_eq!(k.verify(&t, 1, "/user/bob/"), Err(TokenError::OtherDesktop));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let k = TokenKey::new(b"secret");
        let t = k.mint(&claims("alice", Role::Viewer, 1000)).unwrap();
        assert_eq!(k.verify(&t.replacen(".1000.", ".9999.", 1), 1, "/"), Err(TokenError::BadSignature));
        assert_eq!(k.verify(&t.replacen(".viewer.", ".owner.", 1), 1, "/"), Err(TokenError::BadSignature));
        assert_eq!(TokenKey::new(b"other").verify(&t, 1, "/"), Err(TokenError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let k = TokenKey::new(b"secret");
        for g in [
            "",
            ".",
            "v2",
            "v2.a.b",
            "v2.a.b.c.d.e.f",
            "v3.YQ.5.owner.Lw.AAAA",
            "v2.!!.5.owner.Lw.AAAA",
            &"x".repeat(10_000),
        ] {
            assert!(k.verify(g, 1, "/").is_err(), "{g:?}");
        }
        assert_eq!(k.verify("v1.YQ.5.AAAA", 1, "/"), Err(TokenError::OldFormat));
    }

    #[test]
    fn user_names_are_restricted() {
        let k = TokenKey::new(b"s");
        assert_eq!(k.mint(&claims("a b", Role::Owner, 5)), Err(TokenError::BadUser));
        assert_eq!(k.mint(&claims("", Role::Owner, 5)), Err(TokenError::BadUser));
        assert!(k.mint(&claims("jo.doe@uni-x.edu", Role::Owner, 5)).is_ok());
    }
}
