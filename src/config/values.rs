//! Value types and parsers the flags share: booleans, secrets.

/// A boolean flag's value or variable: 1/0, yes/no, true/false, on/off, y/n, t/f, in any case
/// (what clap's `BoolishValueParser` accepts, with an error that says so); empty is off, as an
/// empty variable in a compose file means "not set".
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "f" | "off" | "" => Ok(false),
        _ => Err("expected 1/0, yes/no, true/false or on/off".into()),
    }
}

/// A secret (an API key, a token-verifying secret) that never shows in `Debug` output: the
/// config is logged at start-up.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// The upstream model's API key.
pub type ApiKey = Secret;

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
