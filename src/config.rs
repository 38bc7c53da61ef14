//! Optional configuration: a TOML file (path from `P11CARD_CONFIG`, else the
//! platform's usual place) and the `P11CARD_LOG` / `P11CARD_LOG_FILE` /
//! `P11CARD_CACHE` / `P11CARD_CACHE_DIR` environment variables. Without either, the module uses its defaults and
//! logs nothing (a module inside a browser must not write to stderr).

use crate::cache::CacheStore;
use crate::profile::ProfileSet;
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The configuration file's contents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Extra directories of `*.toml` card profiles.
    #[serde(default)]
    pub profile_dirs: Vec<PathBuf>,
    /// Profile names to leave out of card matching.
    #[serde(default)]
    pub disabled_profiles: Vec<String>,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`); off if unset.
    #[serde(default)]
    pub log_level: Option<String>,
    /// Log file; stderr if unset.
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// Keep the cards' public data (certificates) in a per-user disk cache
    /// (default on; `P11CARD_CACHE=off` turns it off).
    #[serde(default)]
    pub cache: Option<bool>,
    /// The cache directory (default: the platform's per-user cache
    /// directory; `P11CARD_CACHE_DIR` overrides).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Hours after which a cache entry is read from the card again
    /// (default 24).
    #[serde(default)]
    pub cache_max_age_hours: Option<u64>,
}

/// Where the configuration file is looked for when `P11CARD_CONFIG` is unset.
pub fn default_path() -> Option<PathBuf> {
    #[cfg(windows)]
    {
        std::env::var_os("APPDATA").map(|dir| Path::new(&dir).join("p11card").join("p11card.toml"))
    }
    #[cfg(not(windows))]
    {
        let user = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))
            .map(|dir| dir.join("p11card").join("p11card.toml"));
        match user {
            Some(path) if path.exists() => Some(path),
            _ => Some(PathBuf::from("/etc/p11card/p11card.toml")),
        }
    }
}

impl Config {
    /// Reads the configuration; a missing or invalid file gives the
    /// defaults (an invalid one is reported in the log once logging runs).
    pub fn load() -> Config {
        let path = std::env::var_os("P11CARD_CONFIG")
            .map(PathBuf::from)
            .or_else(default_path);
        let mut config = path
            .as_deref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| toml::from_str::<Config>(&text).ok())
            .unwrap_or_default();
        if let Some(level) = std::env::var_os("P11CARD_LOG") {
            config.log_level = Some(level.to_string_lossy().into_owned());
        }
        if let Some(file) = std::env::var_os("P11CARD_LOG_FILE") {
            config.log_file = Some(PathBuf::from(file));
        }
        if let Some(switch) = std::env::var_os("P11CARD_CACHE") {
            let switch = switch.to_string_lossy().to_ascii_lowercase();
            config.cache = Some(!matches!(switch.as_str(), "0" | "off" | "no" | "false"));
        }
        if let Some(dir) = std::env::var_os("P11CARD_CACHE_DIR").filter(|d| !d.is_empty()) {
            config.cache_dir = Some(PathBuf::from(dir));
        }
        config
    }

    /// The disk cache of public card data, unless it is switched off or
    /// there is no place for it.
    pub fn cache_store(&self) -> Option<CacheStore> {
        if self.cache == Some(false) {
            return None;
        }
        let dir = self.cache_dir.clone().or_else(CacheStore::default_dir)?;
        let max_age = self
            .cache_max_age_hours
            .map_or(CacheStore::DEFAULT_MAX_AGE, |hours| {
                Duration::from_secs(hours.saturating_mul(3600))
            });
        Some(CacheStore::at(dir, max_age))
    }

    /// Applies the profile settings: extra directories, disabled profiles.
    pub fn apply_to(&self, profiles: &mut ProfileSet) {
        for dir in &self.profile_dirs {
            for (file, reason) in profiles.add_dir(dir) {
                log::warn!("card profile {file} ignored: {reason}");
            }
        }
        profiles.retain(|profile| !self.disabled_profiles.contains(&profile.name));
    }

    /// Starts logging if a level is configured (once per process).
    pub fn start_logging(&self) {
        let Some(level) = self
            .log_level
            .as_deref()
            .and_then(|l| l.parse::<log::LevelFilter>().ok())
        else {
            return;
        };
        let sink: Box<dyn Write + Send> = match &self.log_file {
            Some(path) => match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(file) => Box::new(file),
                Err(_) => return,
            },
            None => Box::new(std::io::stderr()),
        };
        let logger = Box::leak(Box::new(Logger {
            sink: Mutex::new(sink),
        }));
        if log::set_logger(logger).is_ok() {
            log::set_max_level(level);
        }
    }
}

/// A minimal logger: one line per record. APDU traces reach it with PINs
/// already redacted by the APDU layer.
struct Logger {
    sink: Mutex<Box<dyn Write + Send>>,
}

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            sink,
            "p11card {} {}: {}",
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {
        let _ = self.sink.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
}
