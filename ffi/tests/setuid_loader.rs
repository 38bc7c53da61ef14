//! The module inside a set-user-ID-root program run by an ordinary user (as
//! `su`, `sudo` and login programs load it through PAM): whatever that user
//! puts in the environment or in their own configuration, the module must
//! not write with root's rights. A tiny C loader (`dlopen`,
//! `C_GetFunctionList`, `C_Initialize`, `C_Finalize`) is compiled with `cc`,
//! installed setuid-root in a temporary directory and run as `nobody`.
//!
//! Needs root (to install the loader setuid-root and switch to `nobody`),
//! `cc`, `setpriv` and a temporary directory on a mount without `nosuid`;
//! without them each test says why it is skipped and passes.

#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The loader: exit status 0 when `C_Initialize` and `C_Finalize` both
/// returned `CKR_OK`; it prints its real and effective user IDs.
const LOADER_C: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

typedef unsigned long ck_rv;
struct function_list {
    unsigned char major, minor;
    ck_rv (*initialize)(void *);
    ck_rv (*finalize)(void *);
};

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    void *module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!module) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 3; }
    ck_rv (*get_function_list)(struct function_list **) =
        (ck_rv (*)(struct function_list **))dlsym(module, "C_GetFunctionList");
    if (!get_function_list) return 4;
    struct function_list *list = NULL;
    if (get_function_list(&list) != 0 || !list) return 5;
    ck_rv initialize = list->initialize(NULL);
    ck_rv finalize = list->finalize(NULL);
    printf("uid=%u euid=%u C_Initialize=%lu C_Finalize=%lu\n",
           (unsigned)getuid(), (unsigned)geteuid(), initialize, finalize);
    return initialize == 0 && finalize == 0 ? 0 : 1;
}
"#;

/// What `nobody` must not be able to change.
const ROOT_FILE_CONTENT: &str = "root:x:0:0:root:/root:/bin/bash\n";

/// `nobody`/`nogroup` on Debian.
const NOBODY: u32 = 65534;

/// Runs an external program under a generous hang bound.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("60")
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program}: {err}"))
}

/// target/<profile>/libp11card_pkcs11.so (the test runs from
/// target/<profile>/deps/).
fn library_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("libp11card_pkcs11.so");
    assert!(path.exists(), "{} is not built", path.display());
    path
}

/// Whether every directory above `dir` lets others through (`o+x`).
fn traversable_by_others(dir: &Path) -> bool {
    dir.ancestors()
        .all(|a| fs::metadata(a).is_ok_and(|m| m.mode() & 0o001 != 0))
}

/// Whether set-user-ID bits take effect on `dir`'s mount.
fn allows_setuid(dir: &Path) -> bool {
    let out = run(
        "findmnt",
        &["-n", "-o", "OPTIONS", "-T", dir.to_str().unwrap()],
    );
    out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("nosuid")
}

/// A temporary directory with the loader installed setuid-root, a copy of
/// the module, a root-owned file and a directory of `nobody`'s own.
struct Fixture {
    base: PathBuf,
}

impl Fixture {
    /// `None` (with the reason printed) where the test cannot run.
    fn new(name: &str) -> Option<Fixture> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: installing a setuid-root loader needs root");
            return None;
        }
        for tool in ["cc", "setpriv", "findmnt"] {
            if !run("sh", &["-c", &format!("command -v {tool}")])
                .status
                .success()
            {
                eprintln!("skipped: {tool} is not installed");
                return None;
            }
        }
        let exe_dir = library_path().parent().unwrap().to_path_buf();
        let candidates = [std::env::temp_dir(), PathBuf::from("/var/tmp"), exe_dir];
        let Some(parent) = candidates
            .into_iter()
            .find(|dir| dir.is_dir() && traversable_by_others(dir) && allows_setuid(dir))
        else {
            eprintln!("skipped: no temporary directory that nobody can reach without nosuid");
            return None;
        };
        let base = parent.join(format!("p11card-setuid-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        let fixture = Fixture { base };

        fs::copy(library_path(), fixture.module()).unwrap();
        fs::set_permissions(fixture.module(), fs::Permissions::from_mode(0o755)).unwrap();
        let source = fixture.base.join("loader.c");
        fs::write(&source, LOADER_C).unwrap();
        let plain = fixture.plain_loader();
        let compiled = run(
            "cc",
            &[
                "-o",
                plain.to_str().unwrap(),
                source.to_str().unwrap(),
                "-ldl",
            ],
        );
        assert!(compiled.status.success(), "cc: {compiled:?}");
        fs::set_permissions(&plain, fs::Permissions::from_mode(0o755)).unwrap();
        fs::copy(&plain, fixture.setuid_loader()).unwrap();
        std::os::unix::fs::chown(fixture.setuid_loader(), Some(0), Some(0)).unwrap();
        fs::set_permissions(fixture.setuid_loader(), fs::Permissions::from_mode(0o4755)).unwrap();

        fs::write(fixture.root_file(), ROOT_FILE_CONTENT).unwrap();
        fs::set_permissions(fixture.root_file(), fs::Permissions::from_mode(0o644)).unwrap();
        fs::create_dir(fixture.user_dir()).unwrap();
        std::os::unix::fs::chown(fixture.user_dir(), Some(NOBODY), Some(NOBODY)).unwrap();
        Some(fixture)
    }

    fn module(&self) -> PathBuf {
        self.base.join("libp11card_pkcs11.so")
    }

    fn plain_loader(&self) -> PathBuf {
        self.base.join("loader")
    }

    fn setuid_loader(&self) -> PathBuf {
        self.base.join("loader-setuid")
    }

    /// Owned by root, mode 0644: the file an attacker wants to append to.
    fn root_file(&self) -> PathBuf {
        self.base.join("passwd")
    }

    /// Owned by `nobody`: where the attacker prepares files.
    fn user_dir(&self) -> PathBuf {
        self.base.join("home")
    }

    /// Writes a file in the user's directory as the user owns it.
    fn user_file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.user_dir().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
            std::os::unix::fs::chown(parent, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        fs::write(&path, content).unwrap();
        std::os::unix::fs::lchown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
        path
    }

    /// Runs `loader` as `nobody` with exactly `env` (plus a PC/SC socket
    /// nobody listens on) and returns its output line; panics unless
    /// `C_Initialize` and `C_Finalize` returned `CKR_OK`.
    fn run_as_nobody(&self, loader: &Path, env: &[(&str, &Path)]) -> String {
        let mut command = Command::new("timeout");
        command
            .args([
                "60",
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
            ])
            .arg("--")
            .arg(loader)
            .arg(self.module())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm")
            .current_dir(self.user_dir());
        for (name, value) in env {
            command.env(name, value);
        }
        let out = command.output().expect("setpriv");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "loader failed: {:?}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn run_setuid(&self, env: &[(&str, &Path)]) {
        let line = self.run_as_nobody(&self.setuid_loader(), env);
        assert!(
            line.contains(&format!("uid={NOBODY} euid=0 ")),
            "the loader did not run setuid-root: {line}"
        );
    }

    fn assert_root_file_unchanged(&self) {
        assert_eq!(
            fs::read_to_string(self.root_file()).unwrap(),
            ROOT_FILE_CONTENT,
            "the root-owned file was written"
        );
        let meta = fs::symlink_metadata(self.root_file()).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644));
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

#[test]
fn a_setuid_loader_ignores_the_callers_log_file() {
    let Some(fixture) = Fixture::new("log") else {
        return;
    };
    let trace = Path::new("trace");

    // Straight at the root-owned file.
    fixture.run_setuid(&[
        ("P11CARD_LOG", trace),
        ("P11CARD_LOG_FILE", &fixture.root_file()),
    ]);
    fixture.assert_root_file_unchanged();

    // Through a symlink the user made.
    let link = fixture.user_dir().join("p11card.log");
    std::os::unix::fs::symlink(fixture.root_file(), &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
    fixture.run_setuid(&[("P11CARD_LOG", trace), ("P11CARD_LOG_FILE", &link)]);
    fixture.assert_root_file_unchanged();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());

    // A new file: root would create it where the user says.
    let new = fixture.user_dir().join("created-by-root.log");
    fixture.run_setuid(&[("P11CARD_LOG", trace), ("P11CARD_LOG_FILE", &new)]);
    assert!(!new.exists(), "the module created {}", new.display());
}

#[test]
fn a_setuid_loader_ignores_the_callers_configuration_and_cache() {
    let Some(fixture) = Fixture::new("config") else {
        return;
    };
    let hostile = format!(
        "log_level = \"trace\"\nlog_file = {:?}\nprofile_dirs = [{:?}]\ncache_dir = {:?}\n",
        fixture.root_file(),
        fixture.user_dir(),
        fixture.user_dir().join("cache"),
    );
    let config = fixture.user_file("evil.toml", &hostile);
    fixture.user_file(".config/p11card/p11card.toml", &hostile);
    // A profile whose name and TOML error would go into the log.
    fixture.user_file("evil::0:0:::\n.toml", "not = [toml");
    let cache = fixture.user_dir().join("env-cache");
    fixture.run_setuid(&[
        ("P11CARD_CONFIG", &config),
        ("HOME", &fixture.user_dir()),
        ("XDG_CONFIG_HOME", &fixture.user_dir().join(".config")),
        ("XDG_CACHE_HOME", &fixture.user_dir()),
        ("P11CARD_CACHE", Path::new("on")),
        ("P11CARD_CACHE_DIR", &cache),
    ]);
    fixture.assert_root_file_unchanged();
    fixture.run_setuid(&[("HOME", &fixture.user_dir())]);
    fixture.assert_root_file_unchanged();
    assert!(!cache.exists() && !fixture.user_dir().join("cache").exists());
    assert!(!fixture.user_dir().join("p11card").exists());
}

/// The control: the same loader without the setuid bit logs where its
/// caller says, so the tests above would see a write if one happened.
#[test]
fn the_same_loader_without_setuid_logs_for_its_caller() {
    let Some(fixture) = Fixture::new("control") else {
        return;
    };
    let log = fixture.user_dir().join("p11card.log");
    let line = fixture.run_as_nobody(
        &fixture.plain_loader(),
        &[
            ("P11CARD_LOG", Path::new("trace")),
            ("P11CARD_LOG_FILE", &log),
        ],
    );
    assert!(
        line.contains(&format!("uid={NOBODY} euid={NOBODY} ")),
        "{line}"
    );
    let written = fs::read_to_string(&log).expect("the log file");
    assert!(
        written.contains("initialised (Ordinary process)"),
        "{written}"
    );
    let meta = fs::metadata(&log).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (NOBODY, 0o600));
}
