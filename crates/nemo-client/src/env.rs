//! The environment every frontend reads (PROTOCOL.md §1), in one place:
//! `NEMO_API_URL`, `NEMO_WEB_URL`, `NEMO_TOKEN`, `NEMO_CLIENT_ID`,
//! `NEMO_CONFIG_DIR`, `NEMO_TIME_SCALE`. Values are trimmed; an empty one
//! counts as unset.

use std::path::PathBuf;

use nemo_core::secret::Secret;

use crate::client::ClientBuilder;
use crate::file::FileStore;

/// The environment variables a frontend honours, read once.
///
/// ```
/// use nemo_client::Env;
///
/// let env = Env::from_vars(|name| match name {
///     "NEMO_API_URL" => Some("http://127.0.0.1:8080/ ".into()),
///     "NEMO_TIME_SCALE" => Some("0.01".into()),
///     _ => None,
/// });
/// assert_eq!(env.api_url.as_deref(), Some("http://127.0.0.1:8080/"));
/// assert_eq!(env.time_scale, Some(0.01));
/// assert!(env.token.is_none());
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Env {
    /// `NEMO_API_URL`: the API (default: the service's).
    pub api_url: Option<String>,
    /// `NEMO_WEB_URL`: the web app, for project links.
    pub web_url: Option<String>,
    /// `NEMO_TOKEN`: a user's own token (never printed: [`Secret`]).
    pub token: Option<Secret>,
    /// `NEMO_CLIENT_ID`: a fixed client id instead of the store's.
    pub client_id: Option<String>,
    /// `NEMO_CONFIG_DIR`: where the [`FileStore`] lives.
    pub config_dir: Option<PathBuf>,
    /// `NEMO_TIME_SCALE`: real seconds per second of the client's waits
    /// (a positive number; anything else is ignored).
    pub time_scale: Option<f64>,
}

impl Env {
    /// The process's environment.
    pub fn from_env() -> Env {
        Env::from_vars(|name| std::env::var(name).ok())
    }

    /// The environment as `var` gives it (tests, a config file, a web
    /// server's settings).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Env {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Env {
            api_url: get("NEMO_API_URL"),
            web_url: get("NEMO_WEB_URL"),
            token: get("NEMO_TOKEN").map(Secret::new),
            client_id: get("NEMO_CLIENT_ID"),
            config_dir: get("NEMO_CONFIG_DIR").map(PathBuf::from),
            time_scale: get("NEMO_TIME_SCALE")
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0),
        }
    }

    /// The config folder: `NEMO_CONFIG_DIR`, else the platform's
    /// ([`FileStore::default_dir`]); `None` when there is neither.
    pub fn config_dir(&self) -> Option<PathBuf> {
        self.config_dir.clone().or_else(FileStore::default_dir)
    }
}

impl ClientBuilder {
    /// Applies what `env` sets: the API and web URLs, the user's token, a
    /// fixed client id, the time scale. What it does not set keeps the
    /// builder's value.
    pub fn env(mut self, env: &Env) -> Self {
        if let Some(url) = &env.api_url {
            self = self.api_url(url);
        }
        if let Some(url) = &env.web_url {
            self = self.web_url(url);
        }
        if let Some(token) = &env.token {
            self = self.user_token(token.clone());
        }
        if let Some(id) = &env.client_id {
            self = self.client_id(id);
        }
        if let Some(scale) = env.time_scale {
            self = self.time_scale(scale);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_bad_values_count_as_unset_and_the_token_never_shows() {
        let env = Env::from_vars(|name| match name {
            "NEMO_API_URL" => Some("   ".into()),
            "NEMO_TOKEN" => Some(" nmv_usr_secret\n".into()),
            "NEMO_TIME_SCALE" => Some("-1".into()),
            "NEMO_CONFIG_DIR" => Some("/tmp/nemo-cfg".into()),
            _ => None,
        });
        assert_eq!(env.api_url, None);
        assert_eq!(env.time_scale, None);
        assert_eq!(
            env.token.as_ref().map(Secret::expose),
            Some("nmv_usr_secret")
        );
        assert!(!format!("{env:?}").contains("nmv_usr_secret"));
        assert_eq!(env.config_dir(), Some(PathBuf::from("/tmp/nemo-cfg")));
        for bad in ["NaN", "inf", "0", "fast"] {
            let env = Env::from_vars(|n| (n == "NEMO_TIME_SCALE").then(|| bad.to_owned()));
            assert_eq!(env.time_scale, None, "{bad}");
        }
    }
}
