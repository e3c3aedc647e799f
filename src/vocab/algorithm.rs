//! The JWS algorithms the gateway can verify (configuration and token headers name them). A
//! leaf.

/// Asymmetric JWS algorithms the gateway can verify. HMAC and `none` are deliberately absent:
/// with public JWKS they would let anyone holding the public key forge tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Algorithm> {
        use Algorithm::*;
        Some(match s {
            "RS256" => RS256,
            "RS384" => RS384,
            "RS512" => RS512,
            "PS256" => PS256,
            "PS384" => PS384,
            "PS512" => PS512,
            "ES256" => ES256,
            "ES384" => ES384,
            "EdDSA" => EdDSA,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use Algorithm::*;
        match self {
            RS256 => "RS256",
            RS384 => "RS384",
            RS512 => "RS512",
            PS256 => "PS256",
            PS384 => "PS384",
            PS512 => "PS512",
            ES256 => "ES256",
            ES384 => "ES384",
            EdDSA => "EdDSA",
        }
    }
}
