//! `p11card register` / `unregister` in a temporary home directory and
//! file system root, run in-process through `p11card_cli::run_registration`
//! exactly as the binary runs them; and the built binary against a real NSS
//! database (certutil, modutil from libnss3-tools).

use clap::Parser;
use p11card_cli::register::Places;
use p11card_cli::{exit, run_registration, Cli};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const INTERNAL: &str = "library=\nname=NSS Internal PKCS #11 Module\n\
    parameters=configdir='sql:x' certPrefix='' keyPrefix='' secmod='secmod.db'\n\
    NSS=Flags=internal,critical trustOrder=75 cipherOrder=100\n\n";
const OTHER: &str = "library=/usr/lib/other-pkcs11.so\nname=other\n\n";

/// A temporary home and root, with a module file to register.
struct Setup {
    _dir: tempfile::TempDir,
    home: PathBuf,
    root: PathBuf,
    module: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let root = dir.path().join("root");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&root).unwrap();
        let module = dir.path().join("libp11card_pkcs11.so");
        fs::write(&module, b"not really a module").unwrap();
        let module = module.to_str().unwrap().to_string();
        Setup {
            _dir: dir,
            home,
            root,
            module,
        }
    }

    /// A Firefox profile directory `dir` (under ~/.mozilla/firefox when
    /// relative) with `pkcs11.txt`, listed in profiles.ini.
    fn firefox(&self, profiles: &[(&str, &str, Option<&str>)]) -> Vec<PathBuf> {
        let base = self.home.join(".mozilla/firefox");
        fs::create_dir_all(&base).unwrap();
        let mut ini = String::from("[General]\nStartWithLastProfile=1\n\n");
        let mut dirs = Vec::new();
        for (index, (name, path, pkcs11)) in profiles.iter().enumerate() {
            let relative = !path.starts_with('/');
            let dir = if relative {
                base.join(path)
            } else {
                PathBuf::from(path)
            };
            fs::create_dir_all(&dir).unwrap();
            if let Some(text) = pkcs11 {
                fs::write(dir.join("pkcs11.txt"), text).unwrap();
                fs::set_permissions(dir.join("pkcs11.txt"), fs::Permissions::from_mode(0o640))
                    .unwrap();
            }
            ini.push_str(&format!(
                "[Profile{index}]\nName={name}\nIsRelative={}\nPath={path}\n\n",
                u8::from(relative)
            ));
            dirs.push(dir);
        }
        fs::write(base.join("profiles.ini"), ini).unwrap();
        dirs
    }

    fn places(&self, euid: u32) -> Places {
        Places {
            home: Some(self.home.clone()),
            root: self.root.clone(),
            euid,
        }
    }

    /// Runs `p11card ARGS` as user `euid`.
    fn run_as(&self, euid: u32, args: &[&str]) -> (u8, String, String) {
        let cli = Cli::try_parse_from(std::iter::once("p11card").chain(args.iter().copied()))
            .expect("the command line parses");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_registration(&cli, &self.places(euid), &mut out, &mut err)
            .expect("a registration command");
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    /// Runs `p11card ARGS --module MODULE` as user 1000.
    fn run(&self, args: &[&str]) -> (u8, String, String) {
        let mut args = args.to_vec();
        args.extend(["--module", &self.module]);
        self.run_as(1000, &args)
    }

    fn entry(&self) -> String {
        format!("library={}\nname=p11card\n\n", self.module)
    }
}

/// Every file under `dir` with its contents and mode (symlinks: target).
fn snapshot(dir: &Path) -> Vec<(PathBuf, String, u32)> {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            all.push((path, target.display().to_string(), 0));
        } else if meta.is_dir() {
            all.push((path.clone(), String::new(), meta.permissions().mode()));
            all.extend(snapshot(&path));
        } else {
            let text = fs::read_to_string(&path).unwrap();
            all.push((path, text, meta.permissions().mode()));
        }
    }
    all.sort();
    all
}

#[test]
fn every_profile_chrome_and_p11kit_are_registered_once() {
    let setup = Setup::new();
    let elsewhere = setup.home.join("elsewhere/work-profile");
    let dirs = setup.firefox(&[
        ("default-esr", "abc.default-esr", Some(INTERNAL)),
        (
            "work",
            elsewhere.to_str().unwrap(),
            Some(&format!("{INTERNAL}{OTHER}")),
        ),
        ("fresh", "xyz.fresh", None),
    ]);
    let (code, out, err) = setup.run(&["register"]);
    assert_eq!((code, err.as_str()), (exit::OK, ""), "{out}");
    assert_eq!(
        out,
        format!(
            "Firefox profile default-esr (~/.mozilla/firefox/abc.default-esr): added\n\
             Firefox profile work (~/elsewhere/work-profile): added\n\
             Firefox profile fresh (~/.mozilla/firefox/xyz.fresh): added\n\
             Chrome/Chromium (~/.pki/nssdb): added\n\
             p11-kit (~/.config/pkcs11/modules/p11card.module): added\n"
        )
    );
    let read = |dir: &Path| fs::read_to_string(dir.join("pkcs11.txt")).unwrap();
    assert_eq!(read(&dirs[0]), format!("{INTERNAL}{}", setup.entry()));
    assert_eq!(
        read(&dirs[1]),
        format!("{INTERNAL}{OTHER}{}", setup.entry())
    );
    assert_eq!(read(&dirs[2]), setup.entry());
    // The file keeps its mode; new ones are private as NSS makes them.
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dirs[0].join("pkcs11.txt")), 0o640);
    assert_eq!(mode(&dirs[2].join("pkcs11.txt")), 0o600);
    let nssdb = setup.home.join(".pki/nssdb");
    assert_eq!(mode(&nssdb), 0o700);
    assert_eq!(read(&nssdb), setup.entry());
    let module_file = setup.home.join(".config/pkcs11/modules/p11card.module");
    assert!(fs::read_to_string(&module_file)
        .unwrap()
        .lines()
        .any(|line| line == format!("module: {}", setup.module)));

    // Twice: nothing changes.
    let before = snapshot(&setup.home);
    let (code, out, _) = setup.run(&["register"]);
    assert_eq!(code, exit::OK);
    assert_eq!(out.matches(": already registered\n").count(), 5, "{out}");
    assert_eq!(snapshot(&setup.home), before);

    // Unregister: exactly p11card's entries go.
    let (code, out, _) = setup.run_as(1000, &["unregister"]);
    assert_eq!(code, exit::OK);
    assert_eq!(out.matches(": removed\n").count(), 5, "{out}");
    assert_eq!(read(&dirs[0]), INTERNAL);
    assert_eq!(read(&dirs[1]), format!("{INTERNAL}{OTHER}"));
    assert_eq!(read(&dirs[2]), "");
    assert!(!module_file.exists());
    let (code, out, _) = setup.run_as(1000, &["unregister"]);
    assert_eq!(code, exit::OK);
    assert_eq!(out.matches(": not registered\n").count(), 5, "{out}");
}

#[test]
fn a_changed_module_path_is_updated() {
    let setup = Setup::new();
    let old = "library=/opt/old/libp11card_pkcs11.so\nname=p11card\n\n";
    let dirs = setup.firefox(&[(
        "default",
        "a.default",
        Some(&format!("{INTERNAL}{old}{OTHER}")),
    )]);
    let (code, out, _) = setup.run(&["register"]);
    assert_eq!(code, exit::OK);
    assert!(out.contains(
        "Firefox profile default (~/.mozilla/firefox/a.default): updated (was /opt/old/libp11card_pkcs11.so)\n"
    ), "{out}");
    assert_eq!(
        fs::read_to_string(dirs[0].join("pkcs11.txt")).unwrap(),
        format!("{INTERNAL}{}{OTHER}", setup.entry())
    );
    // unregister --module with another path leaves it alone.
    let (code, out, _) = setup.run_as(
        1000,
        &["unregister", "--module", "/opt/old/libp11card_pkcs11.so"],
    );
    assert_eq!(code, exit::OK);
    assert!(
        out.contains("a.default): skipped: registered with another module"),
        "{out}"
    );
    assert!(fs::read_to_string(dirs[0].join("pkcs11.txt"))
        .unwrap()
        .contains("name=p11card"));
}

#[test]
fn dry_run_changes_nothing() {
    let setup = Setup::new();
    setup.firefox(&[("default", "a.default", Some(INTERNAL))]);
    let before = snapshot(&setup.home);
    let (code, out, _) = setup.run(&["register", "--dry-run"]);
    assert_eq!(code, exit::OK);
    assert_eq!(
        out,
        "Firefox profile default (~/.mozilla/firefox/a.default): would add\n\
         Chrome/Chromium (~/.pki/nssdb): would add\n\
         p11-kit (~/.config/pkcs11/modules/p11card.module): would add\n"
    );
    assert_eq!(snapshot(&setup.home), before);
    setup.run(&["register"]);
    let before = snapshot(&setup.home);
    let (code, out, _) = setup.run_as(1000, &["unregister", "--dry-run"]);
    assert_eq!(code, exit::OK);
    assert_eq!(out.matches(": would remove\n").count(), 3, "{out}");
    assert_eq!(snapshot(&setup.home), before);
}

#[test]
fn a_symlinked_pkcs11_txt_is_refused() {
    let setup = Setup::new();
    let dirs = setup.firefox(&[("default", "a.default", None)]);
    let target = setup.home.join("target.txt");
    fs::write(&target, INTERNAL).unwrap();
    symlink(&target, dirs[0].join("pkcs11.txt")).unwrap();
    let (code, out, _) = setup.run(&["register"]);
    assert_eq!(code, exit::FAILED);
    assert!(out.contains(
        "Firefox profile default (~/.mozilla/firefox/a.default): refused: it is a symbolic link"
    ), "{out}");
    assert_eq!(fs::read_to_string(&target).unwrap(), INTERNAL);
    assert!(fs::symlink_metadata(dirs[0].join("pkcs11.txt"))
        .unwrap()
        .file_type()
        .is_symlink());
    // The other places are still done.
    assert!(
        out.contains("Chrome/Chromium (~/.pki/nssdb): added"),
        "{out}"
    );
}

#[test]
fn a_profile_firefox_has_open_is_refused() {
    let setup = Setup::new();
    let dirs = setup.firefox(&[("default", "a.default", Some(INTERNAL))]);
    // Firefox's `lock` link names a live process (this one).
    symlink(
        format!("127.0.1.1:+{}", std::process::id()),
        dirs[0].join("lock"),
    )
    .unwrap();
    let (code, out, _) = setup.run(&["register"]);
    assert_eq!(code, exit::FAILED);
    assert!(
        out.contains(
            "Firefox profile default (~/.mozilla/firefox/a.default): refused: Firefox has this \
         profile open; close Firefox and run `p11card register` again\n"
        ),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(dirs[0].join("pkcs11.txt")).unwrap(),
        INTERNAL
    );
    // A stale lock (the process is gone, Firefox crashed) does not count.
    fs::remove_file(dirs[0].join("lock")).unwrap();
    symlink("127.0.1.1:+2147483646", dirs[0].join("lock")).unwrap();
    assert!(!p11card_cli::register::firefox_has_open(&dirs[0]));
    fs::remove_file(dirs[0].join("lock")).unwrap();

    // The POSIX lock Firefox holds on .parentlock, held by another process.
    let parentlock = dirs[0].join(".parentlock");
    fs::write(&parentlock, b"").unwrap();
    let Ok(mut holder) = Command::new("timeout")
        .args(["30", "python3", "-c"])
        .arg(
            "import fcntl, sys\n\
             f = open(sys.argv[1], 'r+')\n\
             fcntl.lockf(f, fcntl.LOCK_EX)\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n",
        )
        .arg(&parentlock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        eprintln!("no python3: the .parentlock check is left to the real-stack suite");
        return;
    };
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "locked\n");
    let (code, out, _) = setup.run(&["register"]);
    // Its end of input ends it (and its lock).
    drop(holder.stdin.take());
    holder.wait().unwrap();
    assert_eq!(code, exit::FAILED, "{out}");
    assert!(
        out.contains("refused: Firefox has this profile open"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(dirs[0].join("pkcs11.txt")).unwrap(),
        INTERNAL
    );
    // A `lock` link naming a live process next to a .parentlock nobody
    // holds: left from a crash (the PID now someone else's).
    symlink(
        format!("127.0.1.1:+{}", std::process::id()),
        dirs[0].join("lock"),
    )
    .unwrap();
    assert!(!p11card_cli::register::firefox_has_open(&dirs[0]));
    // Released: registered.
    let (code, out, _) = setup.run(&["register"]);
    assert_eq!(code, exit::OK, "{out}");
}

#[test]
fn p11kit_per_user_is_skipped_when_registered_system_wide() {
    let setup = Setup::new();
    let packaged = setup.root.join("usr/share/p11-kit/modules");
    fs::create_dir_all(&packaged).unwrap();
    fs::write(
        packaged.join("p11card.module"),
        "module: p11card-pkcs11.so\n",
    )
    .unwrap();
    let (code, out, _) = setup.run(&["register"]);
    assert_eq!(code, exit::OK);
    assert!(
        out.contains(
            "p11-kit (~/.config/pkcs11/modules/p11card.module): skipped: p11-kit already loads \
         p11card for every user (/usr/share/p11-kit/modules/p11card.module)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("Firefox (~/.mozilla/firefox): skipped: no Firefox profiles"),
        "{out}"
    );
    assert!(!setup.home.join(".config/pkcs11").exists());
}

#[test]
fn the_module_path_is_checked() {
    let setup = Setup::new();
    let (code, _, err) = setup.run_as(1000, &["register", "--module", "lib/p11card.so"]);
    assert_eq!(code, exit::FAILED);
    assert!(
        err.starts_with("p11card: --module wants an absolute path"),
        "{err}"
    );
    let (code, _, err) = setup.run_as(1000, &["register", "--module", "/nonexistent/p11card.so"]);
    assert_eq!(code, exit::FAILED);
    assert_eq!(
        err,
        "p11card: --module /nonexistent/p11card.so: no such file\n"
    );
    // The installed module, under the root.
    let (code, _, err) = setup.run_as(1000, &["register"]);
    assert_eq!(code, exit::FAILED);
    assert!(
        err.contains("p11card's module is not installed at /usr/lib/"),
        "{err}"
    );
    if let Some(installed) = p11card_cli::register::default_module() {
        let path = setup.root.join(installed.trim_start_matches('/'));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"").unwrap();
        let (code, out, _) = setup.run_as(1000, &["register"]);
        assert_eq!(code, exit::OK, "{out}");
        assert!(fs::read_to_string(setup.home.join(".pki/nssdb/pkcs11.txt"))
            .unwrap()
            .contains(&format!("library={installed}\n")));
    }
    // No HOME.
    let cli = Cli::try_parse_from(["p11card", "unregister"]).unwrap();
    let places = Places {
        home: None,
        ..setup.places(1000)
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        run_registration(&cli, &places, &mut out, &mut err),
        Some(exit::FAILED)
    );
    assert!(String::from_utf8(err)
        .unwrap()
        .starts_with("p11card: HOME is not set"));
}

#[test]
fn system_wide_needs_root() {
    let setup = Setup::new();
    let (code, out, err) = setup.run(&["register", "--system"]);
    assert_eq!((code, out.as_str()), (exit::FAILED, ""));
    assert!(
        err.starts_with("p11card: --system changes files for every user and needs root"),
        "{err}"
    );
    assert!(snapshot(&setup.root).is_empty());
    // (before looking for the installed module)
    let (code, _, err) = setup.run_as(1000, &["unregister", "--system"]);
    assert_eq!(code, exit::FAILED);
    assert!(
        err.contains("run `sudo p11card unregister --system`"),
        "{err}"
    );
}

#[test]
fn system_wide_p11kit_and_firefox_policy() {
    let setup = Setup::new();
    let policies = setup.root.join("etc/firefox/policies/policies.json");
    fs::create_dir_all(policies.parent().unwrap()).unwrap();
    let existing = r#"{"policies":{"DisableTelemetry":true,"SecurityDevices":{"Add":{"opensc":"/usr/lib/opensc-pkcs11.so"}}}}"#;
    fs::write(&policies, existing).unwrap();
    let module_arg = ["--module", setup.module.as_str()];
    let args: Vec<&str> = ["register", "--system"]
        .into_iter()
        .chain(module_arg)
        .collect();
    let (code, out, err) = setup.run_as(0, &args);
    assert_eq!((code, err.as_str()), (exit::OK, ""), "{out}");
    assert_eq!(
        out,
        "p11-kit (/etc/pkcs11/modules/p11card.module): added\n\
         Firefox policy (/etc/firefox/policies/policies.json): added\n\
         Chrome/Chromium: skipped: Chrome has no system-wide NSS database; each user runs \
         `p11card register`\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&policies).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"policies":{"DisableTelemetry":true,"SecurityDevices":{"Add":{
            "opensc":"/usr/lib/opensc-pkcs11.so","p11card":setup.module}}}})
    );
    let module_file = setup.root.join("etc/pkcs11/modules/p11card.module");
    assert!(fs::read_to_string(&module_file)
        .unwrap()
        .contains(&format!("\nmodule: {}\n", setup.module)));
    assert_eq!(
        fs::metadata(&module_file).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let (_, out, _) = setup.run_as(0, &args);
    assert_eq!(out.matches(": already registered\n").count(), 2, "{out}");

    let (code, out, _) = setup.run_as(0, &["unregister", "--system"]);
    assert_eq!(code, exit::OK);
    assert_eq!(out.matches(": removed\n").count(), 2, "{out}");
    assert!(!module_file.exists());
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&policies).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::from_str::<serde_json::Value>(existing).unwrap()
    );

    // A policies.json only p11card's: removed whole (an empty one in /etc
    // would hide the installation's own policies).
    fs::remove_file(&policies).unwrap();
    setup.run_as(0, &args);
    assert!(policies.exists());
    setup.run_as(0, &["unregister", "--system"]);
    assert!(!policies.exists());

    // Without /etc/firefox/policies/policies.json, Firefox reads the
    // installation's: that one is edited.
    let distribution = setup
        .root
        .join("usr/lib/firefox-esr/distribution/policies.json");
    fs::create_dir_all(distribution.parent().unwrap()).unwrap();
    fs::write(&distribution, r#"{"policies":{"DisableAppUpdate":true}}"#).unwrap();
    let (code, out, _) = setup.run_as(0, &args);
    assert_eq!(code, exit::OK);
    assert!(
        out.contains("Firefox policy (/usr/lib/firefox-esr/distribution/policies.json): added\n"),
        "{out}"
    );
    assert!(!policies.exists());
    let (_, out, _) = setup.run_as(0, &["unregister", "--system"]);
    assert!(
        out.contains("distribution/policies.json): removed\n"),
        "{out}"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&fs::read_to_string(&distribution).unwrap())
            .unwrap(),
        serde_json::json!({"policies":{"DisableAppUpdate":true}})
    );

    // The package's p11-kit file: nothing to add in /etc.
    let packaged = setup.root.join("usr/share/p11-kit/modules");
    fs::create_dir_all(&packaged).unwrap();
    fs::write(
        packaged.join("p11card.module"),
        "module: p11card-pkcs11.so\n",
    )
    .unwrap();
    let (code, out, _) = setup.run_as(0, &args);
    assert_eq!(code, exit::OK);
    assert!(
        out.starts_with(
            "p11-kit (/etc/pkcs11/modules/p11card.module): skipped: the p11card package already \
         registers the module with p11-kit (/usr/share/p11-kit/modules/p11card.module)\n"
        ),
        "{out}"
    );
    assert!(!module_file.exists());
    // A broken policies.json is left alone.
    fs::write(&distribution, "{not json").unwrap();
    let (code, out, _) = setup.run_as(0, &args);
    assert_eq!(code, exit::FAILED);
    assert!(out.contains("refused: it is not valid JSON"), "{out}");
    assert_eq!(fs::read_to_string(&distribution).unwrap(), "{not json");
}

/// A PKCS#11 module NSS can load: p11card's, if built, else p11-kit's.
fn loadable_module() -> Option<PathBuf> {
    let target = PathBuf::from(env!("CARGO_BIN_EXE_p11card"));
    let dir = target.parent()?;
    [
        dir.join("libp11card_pkcs11.so"),
        PathBuf::from("/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so"),
        PathBuf::from("/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-trust.so"),
    ]
    .into_iter()
    .find(|path| path.is_file())
}

/// `modutil -list` on `dir` (its exit status is not success when a slot is
/// empty: only the output counts).
fn modutil_list(dir: &Path) -> String {
    let output = Command::new("timeout")
        .args(["60", "modutil", "-list", "-dbdir"])
        .arg(format!("sql:{}", dir.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn nss_sees_the_module_the_binary_registers() {
    let (Some(module), true) = (
        loadable_module(),
        Command::new("certutil").arg("-H").output().is_ok(),
    ) else {
        eprintln!("no certutil (libnss3-tools) or no module: left to the real-stack suite");
        return;
    };
    let setup = Setup::new();
    let dirs = setup.firefox(&[
        ("default-esr", "abc.default-esr", None),
        ("no-pkcs11-txt", "def.no-pkcs11-txt", None),
    ]);
    for dir in &dirs {
        let status = Command::new("timeout")
            .args(["60", "certutil", "-N", "--empty-password", "-d"])
            .arg(format!("sql:{}", dir.display()))
            .status()
            .unwrap();
        assert!(status.success());
    }
    // A database without pkcs11.txt: p11card writes one with only its own
    // entry, and NSS still loads its internal module.
    fs::remove_file(dirs[1].join("pkcs11.txt")).unwrap();
    let p11card = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_p11card"))
            .args(args)
            .env("HOME", &setup.home)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let module = module.to_str().unwrap();
    let (code, out) = p11card(&["register", "--module", module]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with(
            "Firefox profile default-esr (~/.mozilla/firefox/abc.default-esr): added\n"
        ),
        "{out}"
    );
    for dir in &dirs {
        let listed = modutil_list(dir);
        assert!(listed.contains("NSS Internal PKCS #11 Module"), "{listed}");
        assert!(
            listed.contains(&format!(" p11card\n\tlibrary name: {module}\n")),
            "{listed}"
        );
    }
    let (code, out) = p11card(&["unregister"]);
    assert_eq!(code, Some(0), "{out}");
    for dir in &dirs {
        let listed = modutil_list(dir);
        assert!(listed.contains("NSS Internal PKCS #11 Module"), "{listed}");
        assert!(!listed.contains("p11card"), "{listed}");
    }
}

#[test]
fn quiet_prints_only_failures() {
    let setup = Setup::new();
    let dirs = setup.firefox(&[("default", "a.default", None), ("gone", "b.gone", None)]);
    fs::remove_dir(&dirs[1]).unwrap();
    let (code, out, _) = setup.run(&["register", "--quiet"]);
    assert_eq!((code, out.as_str()), (exit::OK, ""));
    let (_, out, _) = setup.run(&["register"]);
    assert!(out.contains(
        "Firefox profile gone (~/.mozilla/firefox/b.gone): skipped: the profile's directory does not exist\n"
    ), "{out}");
    symlink("127.0.1.1:+1", dirs[0].join("lock")).unwrap();
    let (code, out, _) = setup.run(&["unregister", "--quiet"]);
    assert_eq!(code, exit::FAILED);
    assert_eq!(
        out,
        "Firefox profile default (~/.mozilla/firefox/a.default): refused: Firefox has this \
         profile open; close Firefox and run `p11card unregister` again\n"
    );
}

/// As root with another user's home: refused before anything is touched
/// (that user's links or profiles.ini could point root's writes anywhere);
/// in root's own home, a directory of another user's is refused.
#[test]
fn root_edits_only_its_own_home_and_directories() {
    use std::os::unix::fs::chown;
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("not root: ownership is not tested");
        return;
    }
    let setup = Setup::new();
    let roots = setup.root.join("etc/somewhere");
    fs::create_dir_all(&roots).unwrap();
    let dirs = setup.firefox(&[
        ("default", "a.default", Some(INTERNAL)),
        ("elsewhere", roots.to_str().unwrap(), None),
    ]);
    let before = fs::read(dirs[0].join("pkcs11.txt")).unwrap();
    chown(&setup.home, Some(4321), Some(4322)).unwrap();
    let (code, out, err) = setup.run_as(0, &["register", "--module", &setup.module]);
    assert_eq!(code, exit::FAILED, "{out}");
    assert!(
        err.contains("as root, p11card registers only in root's own home"),
        "{err}"
    );
    assert!(err.contains("runuser -u USER -- p11card register"), "{err}");
    assert_eq!(fs::read(dirs[0].join("pkcs11.txt")).unwrap(), before);
    assert!(!setup.home.join(".pki").exists());

    // Root's own home: the profile of another user's directory is refused,
    // the rest registered.
    chown(&setup.home, Some(0), Some(0)).unwrap();
    chown(&roots, Some(4321), Some(4322)).unwrap();
    let (code, out, _) = setup.run_as(0, &["register", "--module", &setup.module]);
    assert_eq!(code, exit::FAILED, "{out}");
    assert!(
        out.contains(
            "Firefox profile elsewhere (/etc/somewhere): refused: /etc/somewhere is not owned \
             by the home directory's owner (uid 0); p11card edits it only as that user\n"
        ),
        "{out}"
    );
    assert!(!roots.join("pkcs11.txt").exists());
    assert!(fs::read_to_string(dirs[0].join("pkcs11.txt"))
        .unwrap()
        .contains("name=p11card"));
}

/// A FIFO in the place of `profiles.ini` (or of a `pkcs11.txt`) is refused
/// at once: opening it must not wait for a writer.
#[test]
fn a_fifo_in_a_files_place_is_refused_without_waiting() {
    let setup = Setup::new();
    let base = setup.home.join(".mozilla/firefox");
    fs::create_dir_all(&base).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(base.join("profiles.ini"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let euid = rustix::process::geteuid().as_raw();
    let (code, out, _) = setup.run_as(euid, &["register", "--module", &setup.module]);
    assert_eq!(code, exit::FAILED, "{out}");
    assert!(out.contains("is not a regular file"), "{out}");
}
