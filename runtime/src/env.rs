//! Reading configuration from the environment with Phoenix's parsing rules.
//!
//! Phoenix (`src/phoenix/config.py`) strips whitespace, accepts only `true`/`false` (any case)
//! for booleans and fails start-up on anything it cannot parse. Every error here names the
//! variable and the rule it broke, in one line, and never echoes a secret's value.

use std::collections::HashMap;
use std::time::Duration;

/// A configuration value that breaks a rule; `Display` is the one line printed at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error for `var` with a human-readable `reason`.
    pub fn new(var: &str, reason: impl Into<String>) -> Self {
        Self { var: var.to_owned(), reason: reason.into() }
    }
}

/// A snapshot of environment variables, so configuration is read once and tests can pass their
/// own map instead of mutating the process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// Snapshot of the process environment (variables that are not valid UTF-8 are skipped).
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment made of exactly these pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// Sets one variable (builder style, for tests).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.vars.insert(key.to_owned(), value.into());
        self
    }

    /// The whitespace-stripped value; `None` when unset or blank.
    pub fn string(&self, var: &str) -> Option<String> {
        self.vars.get(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// Every variable whose name starts with `prefix`, as (name, stripped value).
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars.iter().filter(move |(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.as_str(), v.trim()))
    }

    /// A boolean: `true`/`false` in any case, else an error (Phoenix asserts the same).
    pub fn bool(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.string(var) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(ConfigError::new(var, "must be true or false")),
        }
    }

    /// An unsigned integer in `min..=max`.
    pub fn u64_in(&self, var: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let Some(raw) = self.string(var) else { return Ok(default) };
        let value: u64 = raw.parse().map_err(|_| ConfigError::new(var, "must be a whole number"))?;
        if value < min || value > max {
            return Err(ConfigError::new(var, format!("must be between {min} and {max}")));
        }
        Ok(value)
    }

    /// A TCP port (1..=65535).
    pub fn port(&self, var: &str, default: u16) -> Result<u16, ConfigError> {
        let Some(raw) = self.string(var) else { return Ok(default) };
        match raw.parse::<u16>() {
            Ok(0) | Err(_) => Err(ConfigError::new(var, "must be a port number between 1 and 65535")),
            Ok(port) => Ok(port),
        }
    }

    /// `PHOENIX_ROOT_URL`: the public URL browsers use (scheme, host, optional sub-path), without
    /// a trailing `/`. Phoenix requires a scheme and a host; ashgate also requires http(s) and no
    /// credentials, query or fragment, since links built from it are mailed to users.
    pub fn root_url(&self) -> Result<Option<String>, ConfigError> {
        const VAR: &str = "PHOENIX_ROOT_URL";
        let Some(raw) = self.string(VAR) else { return Ok(None) };
        let bad = || ConfigError::new(VAR, "must be an absolute http(s) URL with a host");
        let url = url::Url::parse(&raw).map_err(|_| bad())?;
        let plain = url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none();
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() || !plain {
            return Err(bad());
        }
        Ok(Some(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// A positive number of minutes (Phoenix's token expiries are floats > 0).
    pub fn minutes(&self, var: &str, default_minutes: f64) -> Result<Duration, ConfigError> {
        let minutes = match self.string(var) {
            None => default_minutes,
            Some(raw) => {
                raw.parse::<f64>().map_err(|_| ConfigError::new(var, "must be a number of minutes"))?
            }
        };
        // Upper bound keeps Duration arithmetic from overflowing (100 years is plenty).
        if !minutes.is_finite() || minutes <= 0.0 || minutes > 100.0 * 365.0 * 24.0 * 60.0 {
            return Err(ConfigError::new(var, "must be a number of minutes greater than 0"));
        }
        Ok(Duration::from_secs_f64(minutes * 60.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_phoenix() {
        let env = Env::from_pairs([("A", " TRUE "), ("B", "False"), ("C", "1"), ("D", "")]);
        assert_eq!(env.bool("A", false), Ok(true));
        assert_eq!(env.bool("B", true), Ok(false));
        assert_eq!(env.bool("C", false).unwrap_err().to_string(), "C: must be true or false");
        assert_eq!(env.bool("D", true), Ok(true));
        assert_eq!(env.bool("UNSET", false), Ok(false));
    }

    #[test]
    fn numbers_are_checked() {
        let env = Env::from_pairs([("P", "0"), ("Q", "70000"), ("M", "-1"), ("N", "1.5"), ("X", "abc")]);
        assert!(env.port("P", 1).is_err());
        assert!(env.port("Q", 1).is_err());
        assert_eq!(env.port("UNSET", 4317), Ok(4317));
        assert_eq!(env.minutes("M", 1.0).unwrap_err().reason, "must be a number of minutes greater than 0");
        assert_eq!(env.minutes("N", 1.0), Ok(Duration::from_secs(90)));
        assert_eq!(env.u64_in("X", 1, 0, 10).unwrap_err().reason, "must be a whole number");
        assert_eq!(env.u64_in("Q", 1, 0, 10).unwrap_err().reason, "must be between 0 and 10");
    }

    #[test]
    fn root_urls_are_absolute_http_urls() {
        let root = |v: &str| Env::from_pairs([("PHOENIX_ROOT_URL", v)]).root_url();
        assert_eq!(
            root("https://ashgate.example/phoenix/"),
            Ok(Some("https://ashgate.example/phoenix".into()))
        );
        assert_eq!(root("http://127.0.0.1:6006"), Ok(Some("http://127.0.0.1:6006".into())));
        assert_eq!(Env::default().root_url(), Ok(None));
        for bad in [
            "ashgate.example",
            "ftp://ashgate.example",
            "https://u:p@ashgate.example",
            "https://a.example/?x=1",
        ] {
            assert_eq!(
                root(bad).unwrap_err().to_string(),
                "PHOENIX_ROOT_URL: must be an absolute http(s) URL with a host",
                "{bad}"
            );
        }
    }
}
