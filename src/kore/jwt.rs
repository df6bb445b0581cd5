//! The token every request carries in its `auth` header: HS256, signed with the client secret,
//! minted fresh per request (a retried request gets a new one).

use serde::Serialize;

use super::KoreError;
use crate::config::Credentials;

#[derive(Serialize)]
struct Claims<'a> {
    #[serde(rename = "appId")]
    app_id: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Mints a fresh HS256 token issued at `iat` (Unix seconds): `appId`, `sub`, `iat`, `exp` 5
/// minutes ahead, random `jti`.
pub(crate) fn mint(creds: &Credentials, iat: i64) -> Result<String, KoreError> {
    let claims = Claims {
        app_id: &creds.client_id,
        sub: "kore-notify",
        iat,
        exp: iat + 300,
        jti: crate::fingerprint::random_id(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(creds.client_secret.as_bytes()),
    )
    .map_err(KoreError::Jwt)
}
