//! JWT bearer tokens: one pinned algorithm (HS256 with a shared secret, or RS256/ES256 with a
//! PEM public key or a JWKS file), `exp`, `iss`, `aud` and `sub` required, `nbf` checked, a
//! small leeway for clock skew. Built on `jsonwebtoken` (>= 10.3: string-typed `exp`/`nbf`
//! are refused, CVE-2026-25537).

use std::path::Path;

use anyhow::{bail, Context};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::config::{Config, JwtAlg};

/// Shortest HS256 secret accepted: RFC 7518 section 3.2 asks for a key at least as long as
/// the hash output.
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest `sub` accepted (it becomes the owner key of sessions in the store).
pub const MAX_SUB_BYTES: usize = 256;

/// The identity a valid token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    /// Unix seconds.
    pub exp: u64,
    /// The claims `--context-claims` names that the token has: given to the model as the
    /// caller's identity (PROTOCOL 1.2).
    pub context: Map<String, Value>,
}

/// Why a token was refused. Logged at debug with its kind only: the token itself never is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Checks tokens against the configured key(s).
pub struct Verifier {
    validation: Validation,
    keys: Keys,
    /// `--context-claims`: the claims copied into [`Claims::context`].
    context_claims: Vec<String>,
}

enum Keys {
    One(DecodingKey),
    /// From a JWKS file: `(kid, key)`; a token names its key with `kid` unless there is one.
    Set(Vec<(Option<String>, DecodingKey)>),
}

impl JwtAlg {
    fn algorithm(self) -> Algorithm {
        match self {
            JwtAlg::Hs256 => Algorithm::HS256,
            JwtAlg::Rs256 => Algorithm::RS256,
            JwtAlg::Es256 => Algorithm::ES256,
        }
    }
}

impl Verifier {
    /// The verifier the config asks for, or `None` when no key is configured (anonymous mode).
    /// Every inconsistency is a start-up error, never a silent fallback.
    pub fn from_config(cfg: &Config) -> anyhow::Result<Option<Verifier>> {
        let sources = [
            cfg.auth_hs256_secret.is_some(),
            cfg.auth_public_key.is_some(),
            cfg.auth_jwks.is_some(),
        ];
        let (alg, keys) = match sources {
            [false, false, false] => {
                if cfg.auth_alg.is_some()
                    || cfg.auth_issuer.is_some()
                    || cfg.auth_audience.is_some()
                {
                    bail!("--auth-alg/--auth-issuer/--auth-audience need a key: --auth-hs256-secret, --auth-public-key or --auth-jwks");
                }
                return Ok(None);
            }
            [true, false, false] => {
                let alg = cfg.auth_alg.unwrap_or(JwtAlg::Hs256);
                if alg != JwtAlg::Hs256 {
                    bail!("--auth-hs256-secret verifies HS256 tokens only, not {alg:?}");
                }
                let secret = cfg
                    .auth_hs256_secret
                    .as_ref()
                    .map(|s| s.expose())
                    .unwrap_or_default();
                if secret.len() < MIN_SECRET_BYTES {
                    bail!("the HS256 secret must be at least {MIN_SECRET_BYTES} bytes");
                }
                (alg, Keys::One(DecodingKey::from_secret(secret.as_bytes())))
            }
            [false, true, false] => {
                let alg = asymmetric_alg(cfg, "--auth-public-key")?;
                let path = cfg.auth_public_key.as_deref().unwrap_or(Path::new(""));
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading the public key {}", path.display()))?;
                let key = match alg {
                    JwtAlg::Rs256 => DecodingKey::from_rsa_pem(&pem),
                    _ => DecodingKey::from_ec_pem(&pem),
                }
                .with_context(|| format!("{} is not a PEM {alg:?} public key", path.display()))?;
                (alg, Keys::One(key))
            }
            [false, false, true] => {
                let alg = asymmetric_alg(cfg, "--auth-jwks")?;
                let path = cfg.auth_jwks.as_deref().unwrap_or(Path::new(""));
                (alg, Keys::Set(load_jwks(path, alg)?))
            }
            _ => bail!(
                "configure exactly one of --auth-hs256-secret, --auth-public-key, --auth-jwks"
            ),
        };
        let issuer = non_empty(&cfg.auth_issuer, "--auth-issuer")?;
        let audience = non_empty(&cfg.auth_audience, "--auth-audience")?;
        let mut validation = Validation::new(alg.algorithm());
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        // Off by default in jsonwebtoken: a token that is not valid yet must be refused too.
        validation.validate_nbf = true;
        validation.leeway = cfg.auth_leeway_secs;
        let context_claims = cfg
            .models
            .context_claims
            .iter()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        Ok(Some(Verifier {
            validation,
            keys,
            context_claims,
        }))
    }

    /// Verify signature and claims; the `sub` must be a usable owner id.
    pub fn verify(&self, token: &str) -> Result<Claims, Refused> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Refused(format!("malformed token header: {e}")))?;
        let key = match &self.keys {
            Keys::One(k) => k,
            Keys::Set(set) => pick(set, header.kid.as_deref())?,
        };
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation)
            .map_err(|e| Refused(format!("{:?}", e.kind())))?;
        let sub = match data.claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_SUB_BYTES => s.clone(),
            _ => {
                return Err(Refused(format!(
                    "`sub` must be a string of 1 to {MAX_SUB_BYTES} bytes"
                )))
            }
        };
        // Sessions made in anonymous (development) mode belong to this name; a token must not
        // inherit them.
        if sub == super::Principal::ANONYMOUS {
            return Err(Refused("reserved `sub`".into()));
        }
        let exp = match data.claims.get("exp") {
            Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
            _ => None,
        }
        .ok_or_else(|| Refused("`exp` must be a number".into()))?;
        let context = self
            .context_claims
            .iter()
            .filter_map(|c| Some((c.clone(), data.claims.get(c)?.clone())))
            .collect();
        Ok(Claims { sub, exp, context })
    }
}

fn asymmetric_alg(cfg: &Config, flag: &str) -> anyhow::Result<JwtAlg> {
    match cfg.auth_alg {
        Some(a @ (JwtAlg::Rs256 | JwtAlg::Es256)) => Ok(a),
        Some(JwtAlg::Hs256) => {
            bail!("{flag} verifies RS256 or ES256 tokens; HS256 needs --auth-hs256-secret")
        }
        None => bail!("{flag} needs --auth-alg RS256 or ES256"),
    }
}

fn non_empty(v: &Option<String>, flag: &str) -> anyhow::Result<String> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s.to_owned()),
        _ => bail!(
            "authentication needs {flag}: tokens are only accepted for a known issuer and audience"
        ),
    }
}

/// The keys of a JWKS file usable with `alg`; keys for other algorithms, curves or uses are
/// left out, and a file with none left is an error.
fn load_jwks(path: &Path, alg: JwtAlg) -> anyhow::Result<Vec<(Option<String>, DecodingKey)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the JWKS {}", path.display()))?;
    let set: JwkSet = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JWKS document", path.display()))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        if jwk
            .common
            .key_algorithm
            .is_some_and(|a| a.to_string() != format!("{:?}", alg.algorithm()))
        {
            continue;
        }
        let fits = match (&jwk.algorithm, alg) {
            (AlgorithmParameters::RSA(_), JwtAlg::Rs256) => true,
            (AlgorithmParameters::EllipticCurve(p), JwtAlg::Es256) => {
                p.curve == EllipticCurve::P256
            }
            _ => false,
        };
        if !fits {
            continue;
        }
        let key = DecodingKey::from_jwk(jwk)
            .with_context(|| format!("a key of {} is unusable", path.display()))?;
        keys.push((jwk.common.key_id.clone(), key));
    }
    if keys.is_empty() {
        bail!("{} holds no {alg:?} signing key", path.display());
    }
    if keys.len() > 1 && keys.iter().any(|(kid, _)| kid.is_none()) {
        bail!(
            "{}: with several keys, every key needs a `kid`",
            path.display()
        );
    }
    Ok(keys)
}

fn pick<'a>(
    set: &'a [(Option<String>, DecodingKey)],
    kid: Option<&str>,
) -> Result<&'a DecodingKey, Refused> {
    match kid {
        Some(kid) => set
            .iter()
            .find(|(k, _)| k.as_deref() == Some(kid))
            .map(|(_, key)| key)
            .ok_or_else(|| Refused("unknown `kid`".into())),
        None if set.len() == 1 => Ok(&set[0].1),
        None => Err(Refused("the token names no `kid`".into())),
    }
}
