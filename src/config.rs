//! Optional configuration: a TOML file (path from `P11CARD_CONFIG`, else the
//! platform's usual place) and the `P11CARD_LOG` / `P11CARD_LOG_FILE` /
//! `P11CARD_CACHE` / `P11CARD_CACHE_DIR` environment variables. Without either, the module uses its defaults and
//! logs nothing (a module inside a browser must not write to stderr).
//!
//! A [`ProcessTrust::Privileged`] process (set-ID programs such as `su` and
//! `sudo`, which load the module for an ordinary user) takes nothing from
//! that user: no `P11CARD_*` variable, no `HOME`/`XDG_*`/`APPDATA`, no user
//! configuration and no disk cache. It reads only [`SYSTEM_PATH`], and only
//! when root alone can have written it.

use crate::audit::AuditConfig;
use crate::cache::CacheStore;
use crate::guarded_fs;
use crate::policy::{Policy, PolicyConfig, Preset};
use crate::process_trust::ProcessTrust;
use crate::profile::ProfileSet;
use serde::Deserialize;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The system-wide configuration file, the only one a privileged process
/// reads.
pub const SYSTEM_PATH: &str = "/etc/p11card/p11card.toml";

/// Who must own [`SYSTEM_PATH`] and its directory: root.
const SYSTEM_OWNER: u32 = 0;

/// Largest system configuration file read by a privileged process.
const MAX_SYSTEM_FILE_LEN: u64 = 1024 * 1024;

/// Looks up an environment variable (injectable for tests).
type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

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
    /// Present the logged-in user's PIN right before each operation with a
    /// key that wants the PIN before every use (`CKA_ALWAYS_AUTHENTICATE`:
    /// PIV 9C, an OpenPGP signature key), for programs that cannot do the
    /// context-specific login. Off by default: it lets any program of the
    /// logged-in user sign with such a key without the user's consent to
    /// each signature. A privileged process takes it from the system file
    /// only.
    #[serde(default)]
    pub pin_cache_ignore_user_consent: bool,
    /// The algorithm policy (`[policy]`: a preset and what changes it;
    /// default the `compatible` preset, which refuses nothing).
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The audit trail (`[audit]`: `enabled`, and a `file` instead of
    /// syslog; off by default).
    #[serde(default)]
    pub audit: AuditConfig,
    /// Why the configuration file could not be used, if it could not: the
    /// policy is then the strict preset (a policy must not weaken because
    /// of a typo).
    #[serde(skip)]
    unreadable: Option<String>,
    /// In a privileged process, the only owner whose profile files (and
    /// their directories) are read: the system configuration's.
    #[serde(skip)]
    profile_owner: Option<u32>,
}

/// Where an ordinary process looks for the configuration file when
/// `P11CARD_CONFIG` is unset: the user's file if it exists, else
/// [`SYSTEM_PATH`] (Windows: `%APPDATA%\p11card\p11card.toml`).
pub fn default_path() -> Option<PathBuf> {
    default_path_from(&|name| std::env::var_os(name))
}

fn default_path_from(env: Env<'_>) -> Option<PathBuf> {
    #[cfg(windows)]
    {
        env("APPDATA").map(|dir| Path::new(&dir).join("p11card").join("p11card.toml"))
    }
    #[cfg(not(windows))]
    {
        let user = env("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|home| Path::new(&home).join(".config")))
            .map(|dir| dir.join("p11card").join("p11card.toml"));
        match user {
            Some(path) if path.exists() => Some(path),
            _ => Some(PathBuf::from(SYSTEM_PATH)),
        }
    }
}

impl Config {
    /// Reads the configuration for a process of the given trust (the PKCS#11
    /// module passes `p11card_pkcs11::process_trust()`; see
    /// [`ProcessTrust::detect`]). A missing or invalid file gives the
    /// defaults. An ordinary process reads `P11CARD_CONFIG` or
    /// [`default_path`], then the `P11CARD_*` overrides; a privileged one
    /// reads only [`SYSTEM_PATH`] if root owns it and its directory and
    /// neither is group- or world-writable, and never uses a disk cache.
    pub fn load(trust: ProcessTrust) -> Config {
        Config::load_with(
            trust,
            &|name| std::env::var_os(name),
            Path::new(SYSTEM_PATH),
            SYSTEM_OWNER,
        )
    }

    fn load_with(
        trust: ProcessTrust,
        env: Env<'_>,
        system_path: &Path,
        system_owner: u32,
    ) -> Config {
        match trust {
            ProcessTrust::Ordinary => Config::load_ordinary(env),
            ProcessTrust::Privileged => Config::load_privileged(system_path, system_owner),
        }
    }

    /// The configuration in `text`; one that is not valid TOML for it is
    /// the defaults, marked unreadable.
    fn parse(text: &str) -> Config {
        toml::from_str::<Config>(text).unwrap_or_else(|error| Config {
            unreadable: Some(error.to_string()),
            ..Config::default()
        })
    }

    /// Checks a configuration file's text as [`Config::load`] reads it: the
    /// configuration, or why the file or its `[policy]` table is not valid
    /// (the module then applies the strict algorithm policy). For `p11card
    /// doctor`.
    pub fn check(text: &str) -> Result<Config, String> {
        let config = Config::parse(text);
        if let Some(error) = config.unreadable {
            return Err(error);
        }
        Policy::from_config(&config.policy)?;
        Ok(config)
    }

    /// The algorithm policy: the `[policy]` table's, or the strict preset
    /// when the file or the table could not be read.
    pub fn policy(&self) -> Policy {
        if let Some(error) = &self.unreadable {
            log::error!("configuration file not usable, strict algorithm policy: {error}");
            return Policy::preset(Preset::Strict);
        }
        Policy::from_config(&self.policy).unwrap_or_else(|error| {
            log::error!("{error}: strict algorithm policy");
            Policy::preset(Preset::Strict)
        })
    }

    fn load_ordinary(env: Env<'_>) -> Config {
        let path = env("P11CARD_CONFIG")
            .map(PathBuf::from)
            .or_else(|| default_path_from(env));
        let mut config = path
            .as_deref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|text| Config::parse(&text))
            .unwrap_or_default();
        if let Some(level) = env("P11CARD_LOG") {
            config.log_level = Some(level.to_string_lossy().into_owned());
        }
        if let Some(file) = env("P11CARD_LOG_FILE") {
            config.log_file = Some(PathBuf::from(file));
        }
        if let Some(switch) = env("P11CARD_CACHE") {
            let switch = switch.to_string_lossy().to_ascii_lowercase();
            config.cache = Some(!matches!(switch.as_str(), "0" | "off" | "no" | "false"));
        }
        if let Some(dir) = env("P11CARD_CACHE_DIR").filter(|d| !d.is_empty()) {
            config.cache_dir = Some(PathBuf::from(dir));
        }
        config
    }

    fn load_privileged(system_path: &Path, system_owner: u32) -> Config {
        let mut config =
            guarded_fs::read_owned_file(system_path, system_owner, MAX_SYSTEM_FILE_LEN)
                .ok()
                .map(|text| Config::parse(&text))
                .unwrap_or_default();
        // The cache directory is found through the user's environment and
        // holds files the user can change.
        config.cache = Some(false);
        config.cache_dir = None;
        // Profiles say where PINs go: only the owner of the system
        // configuration may have written them.
        config.profile_owner = Some(system_owner);
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
        let read = |path: &Path| match self.profile_owner {
            Some(owner) => guarded_fs::read_owned_file(path, owner, MAX_SYSTEM_FILE_LEN),
            None => std::fs::read_to_string(path).map_err(|err| err.to_string()),
        };
        for dir in &self.profile_dirs {
            for (file, reason) in profiles.add_dir_with(dir, &read) {
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
            Some(path) => match guarded_fs::open_log_file(path) {
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
/// already redacted by the APDU layer; whatever a record holds (a file
/// name, a TOML error quoting a file, a card's label) is escaped, so no
/// record can forge a line or send terminal controls.
struct Logger {
    sink: Mutex<Box<dyn Write + Send>>,
}

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!(
            "p11card {} {}: {}",
            record.level(),
            escape(record.target()),
            escape(&record.args().to_string())
        );
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(sink, "{line}");
    }

    fn flush(&self) {
        let _ = self.sink.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
}

/// `text` with control and other non-printable characters (newline, CR,
/// ESC, bidirectional overrides, ...) and backslashes escaped as Rust does
/// in `Debug` (`\n`, `\u{1b}`, `\\`); quotes and printable Unicode stay.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\'' => escaped.push(c),
            _ => escaped.extend(c.escape_debug()),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_are_escaped() {
        assert_eq!(escape("plain text: 9A"), "plain text: 9A");
        assert_eq!(
            escape("a\nevil::0:0:::\r\x1b[2Jb"),
            "a\\nevil::0:0:::\\r\\u{1b}[2Jb"
        );
        assert_eq!(
            escape("tab\there\0nul\x7fdel"),
            "tab\\there\\0nul\\u{7f}del"
        );
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(
            escape("\u{202e}txt.exe\u{2028}\u{85}"),
            "\\u{202e}txt.exe\\u{2028}\\u{85}"
        );
        assert_eq!(escape("\"Jürgen's\" card"), "\"Jürgen's\" card");
    }

    #[test]
    fn the_logger_escapes_every_record() {
        #[derive(Clone, Default)]
        struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Shared::default();
        let logger = Logger {
            sink: Mutex::new(Box::new(out.clone())),
        };
        let file = "x.toml\np11card ERROR forged: line";
        log::Log::log(
            &logger,
            &log::Record::builder()
                .level(log::Level::Warn)
                .target("p11card::config")
                .args(format_args!(
                    "card profile {file} ignored: \x1b]0;title\x07"
                ))
                .build(),
        );
        let written = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            written,
            "p11card WARN p11card::config: card profile x.toml\\np11card ERROR forged: line \
             ignored: \\u{1b}]0;title\\u{7}\n"
        );
    }

    /// An environment that sets everything a user could set.
    fn hostile_env(dir: &Path) -> impl Fn(&str) -> Option<OsString> + '_ {
        move |name: &str| {
            let value = match name {
                "P11CARD_CONFIG" => dir.join("user.toml").into_os_string(),
                "P11CARD_LOG" => "trace".into(),
                "P11CARD_LOG_FILE" => dir.join("env.log").into_os_string(),
                "P11CARD_CACHE" => "on".into(),
                "P11CARD_CACHE_DIR" => dir.join("env-cache").into_os_string(),
                "HOME" | "XDG_CONFIG_HOME" | "XDG_CACHE_HOME" | "APPDATA" => {
                    dir.as_os_str().to_owned()
                }
                _ => return None,
            };
            Some(value)
        }
    }

    fn write_user_config(dir: &Path) {
        let user = format!(
            "profile_dirs = [{:?}]\nlog_level = \"debug\"\nlog_file = {:?}\ncache = true\ncache_dir = {:?}\n\
             pin_cache_ignore_user_consent = true\n",
            dir.join("user-profiles"),
            dir.join("user.log"),
            dir.join("user-cache"),
        );
        std::fs::write(dir.join("user.toml"), user).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn an_ordinary_process_takes_the_environment_and_the_users_file() {
        let tmp = crate::guarded_fs::tests::TempDir::new("config");
        write_user_config(&tmp.0);
        let env = hostile_env(&tmp.0);
        let config = Config::load_with(
            ProcessTrust::Ordinary,
            &env,
            Path::new("/nonexistent/p11card.toml"),
            guarded_fs::effective_uid(),
        );
        assert_eq!(config.profile_dirs, [tmp.0.join("user-profiles")]);
        assert_eq!(config.log_level.as_deref(), Some("trace"));
        assert_eq!(config.log_file, Some(tmp.0.join("env.log")));
        assert_eq!(config.cache, Some(true));
        assert_eq!(config.cache_dir, Some(tmp.0.join("env-cache")));
        assert!(config.pin_cache_ignore_user_consent);
    }

    #[cfg(unix)]
    #[test]
    fn a_privileged_process_ignores_the_environment_and_the_users_file() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = crate::guarded_fs::tests::TempDir::new("config");
        write_user_config(&tmp.0);
        let env = hostile_env(&tmp.0);
        let system_dir = tmp.0.join("etc");
        std::fs::create_dir(&system_dir).unwrap();
        std::fs::set_permissions(&system_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let system = system_dir.join("p11card.toml");
        // The test's own user stands in for root as the system file's owner.
        let owner = guarded_fs::effective_uid();
        let load = || Config::load_with(ProcessTrust::Privileged, &env, &system, owner);

        let without_file = load();
        assert!(without_file.profile_dirs.is_empty());
        assert_eq!(without_file.log_level, None);
        assert_eq!(without_file.log_file, None);
        assert_eq!(without_file.cache, Some(false));
        assert!(without_file.cache_store().is_none(), "no disk cache");
        assert!(
            !without_file.pin_cache_ignore_user_consent,
            "the user's file cannot waive consent"
        );

        std::fs::write(
            &system,
            "profile_dirs = [\"/etc/p11card/cardprofiles\"]\nlog_level = \"warn\"\n\
             log_file = \"/var/log/p11card.log\"\ncache = true\ncache_dir = \"/var/cache/p11card\"\n\
             pin_cache_ignore_user_consent = true\n",
        )
        .unwrap();
        std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o644)).unwrap();
        let with_file = load();
        assert_eq!(
            with_file.profile_dirs,
            [PathBuf::from("/etc/p11card/cardprofiles")]
        );
        assert_eq!(with_file.log_level.as_deref(), Some("warn"));
        assert_eq!(
            with_file.log_file,
            Some(PathBuf::from("/var/log/p11card.log"))
        );
        assert_eq!(with_file.cache, Some(false), "the cache stays off");
        assert_eq!(with_file.cache_dir, None);
        assert!(with_file.cache_store().is_none());
        assert!(with_file.pin_cache_ignore_user_consent, "root's file can");

        // A system file others could have written is not read.
        std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(load().log_level, None, "world-writable file");
        std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&system_dir, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert_eq!(load().log_level, None, "group-writable directory");
        std::fs::set_permissions(&system_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        if crate::guarded_fs::tests::running_as_root() {
            let nobody = crate::guarded_fs::tests::NOBODY;
            std::os::unix::fs::chown(&system, Some(nobody), None).unwrap();
            assert_eq!(load().log_level, None, "file owned by nobody");
        }
    }

    #[test]
    fn a_privileged_process_reads_only_profiles_its_system_owner_wrote() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = crate::guarded_fs::tests::TempDir::new("profiles");
        let dir = tmp.0.join("cardprofiles");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let text = include_str!("../cardprofiles/piv.toml")
            .replace("name = \"piv\"", "name = \"planted\"");
        std::fs::write(dir.join("planted.toml"), text).unwrap();
        let owner = guarded_fs::effective_uid();
        let loaded = |config: &Config| {
            let mut profiles = ProfileSet::embedded();
            config.apply_to(&mut profiles);
            profiles.profiles().iter().any(|p| p.name == "planted")
        };
        let privileged = Config {
            profile_dirs: vec![dir.clone()],
            profile_owner: Some(owner),
            ..Config::default()
        };
        assert!(loaded(&privileged), "the owner's own profile is read");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!loaded(&privileged), "a directory others can write");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        if crate::guarded_fs::tests::running_as_root() {
            let nobody = crate::guarded_fs::tests::NOBODY;
            std::os::unix::fs::chown(dir.join("planted.toml"), Some(nobody), None).unwrap();
            assert!(!loaded(&privileged), "a profile file of another user");
            let ordinary = Config {
                profile_dirs: vec![dir],
                ..Config::default()
            };
            assert!(
                loaded(&ordinary),
                "an ordinary process reads its own choice"
            );
        }
    }

    #[test]
    fn a_policy_that_cannot_be_read_is_the_strict_preset() {
        use crate::policy::{Policy, Preset};
        assert_eq!(Config::parse("").policy(), Policy::default());
        assert_eq!(
            Config::parse("[policy]\npreset = \"strict\"\n").policy(),
            Policy::preset(Preset::Strict)
        );
        // Not TOML, an unknown key, an unknown curve: strict, not compatible.
        for text in [
            "[policy\npreset = \"compatible\"",
            "[policy]\nmin_rsa_bit = 1024\n",
            "[policy]\ncurves = [\"P-521\"]\n",
        ] {
            assert_eq!(
                Config::parse(text).policy(),
                Policy::preset(Preset::Strict),
                "{text}"
            );
        }
    }

    /// The names of a struct's settings, as its derived `Deserialize` gives
    /// them to `deserialize_struct` (skipped fields are not among them).
    fn setting_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
        #[derive(Debug)]
        struct Names(&'static [&'static str]);
        impl std::fmt::Display for Names {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl std::error::Error for Names {}
        impl serde::de::Error for Names {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Names(&[])
            }
        }
        struct Capture;
        impl<'de> serde::Deserializer<'de> for Capture {
            type Error = Names;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Names> {
                Err(Names(&[]))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Names> {
                Err(Names(fields))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        match T::deserialize(Capture) {
            Err(Names(fields)) => fields,
            Ok(_) => &[],
        }
    }

    /// The example configuration the Debian package ships
    /// (`/usr/share/doc/p11card/examples/p11card.toml`): as shipped it is
    /// valid and is the defaults; with its commented-out settings
    /// (`# key = value`) switched on it is still valid, and then names
    /// every setting of the file, of `[policy]` and of `[audit]`.
    #[test]
    fn the_packaged_example_configuration_has_every_setting_at_its_default() {
        let example = include_str!("../packaging/p11card.toml");
        let shipped = Config::parse(example);
        assert_eq!(shipped.unreadable, None);
        assert!(shipped.profile_dirs.is_empty() && shipped.disabled_profiles.is_empty());
        assert_eq!((&shipped.log_level, &shipped.log_file), (&None, &None));
        assert_eq!((shipped.cache, &shipped.cache_dir), (Some(true), &None));
        assert_eq!(
            Duration::from_secs(shipped.cache_max_age_hours.unwrap_or(0) * 3600),
            CacheStore::DEFAULT_MAX_AGE
        );
        assert!(!shipped.pin_cache_ignore_user_consent);
        assert_eq!(shipped.policy, PolicyConfig::default());
        assert_eq!(shipped.policy(), Policy::default());
        assert_eq!(shipped.audit, AuditConfig::default());

        let is_setting = |text: &str| {
            text.split_once(" = ").is_some_and(|(key, _)| {
                key.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
        };
        let switched_on: String = example
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(setting) if is_setting(setting) => setting,
                _ => line,
            })
            .flat_map(|line| [line, "\n"])
            .collect();
        let all = Config::parse(&switched_on);
        assert_eq!(all.unreadable, None, "{switched_on}");
        assert!(Policy::from_config(&all.policy).is_ok());
        let table: toml::Table = toml::from_str(&switched_on).expect("TOML");
        let sub = |name: &str| table[name].as_table().cloned().unwrap_or_default();
        for (names, in_table) in [
            (setting_names::<Config>(), table.clone()),
            (setting_names::<PolicyConfig>(), sub("policy")),
            (setting_names::<AuditConfig>(), sub("audit")),
        ] {
            assert!(!names.is_empty());
            for name in names {
                assert!(
                    in_table.contains_key(*name),
                    "{name} missing from the example"
                );
            }
        }
    }
}
