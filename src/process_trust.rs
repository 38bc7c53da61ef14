//! Whether this process runs with privileges its caller does not have.
//!
//! `su`, `sudo` and login programs load PKCS#11 modules through PAM as root
//! while an ordinary user controls their environment. Such a process must
//! not take settings (configuration path, log file, cache directory) from
//! that user: [`crate::config::Config::load`] takes the decision as an
//! argument and, for a [`ProcessTrust::Privileged`] process, reads only the
//! root-owned system configuration.

/// How far this process may trust its environment and the calling user's
/// files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessTrust {
    /// The process has its caller's privileges: the environment and the
    /// user's configuration and cache are the caller's own business.
    Ordinary,
    /// Set-user-ID, set-group-ID, file capabilities or a security-module
    /// transition: the caller's environment and files are untrusted.
    Privileged,
}

impl ProcessTrust {
    /// Decides for this process. `secure_execution` is the kernel's own
    /// verdict, which needs a raw system call this crate does not make
    /// (Linux `getauxval(AT_SECURE) != 0`, BSD and macOS `issetugid()`):
    /// the PKCS#11 module (`p11card_pkcs11::process_trust`) passes it; a
    /// Rust program that is neither installed set-ID nor given file
    /// capabilities may pass `false`. Besides, differing real and effective
    /// user or group IDs make the process privileged. Windows has no such
    /// programs: there it is [`ProcessTrust::Ordinary`] unless
    /// `secure_execution` says otherwise.
    pub fn detect(secure_execution: bool) -> ProcessTrust {
        if secure_execution || ids_differ() {
            ProcessTrust::Privileged
        } else {
            ProcessTrust::Ordinary
        }
    }
}

#[cfg(unix)]
fn ids_differ() -> bool {
    use rustix::process::{getegid, geteuid, getgid, getuid};
    getuid() != geteuid() || getgid() != getegid()
}

#[cfg(not(unix))]
fn ids_differ() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_verdict_makes_a_process_privileged() {
        assert_eq!(ProcessTrust::detect(true), ProcessTrust::Privileged);
    }

    #[cfg(unix)]
    #[test]
    fn a_test_process_with_equal_ids_is_ordinary() {
        // cargo test is not installed set-ID: real and effective IDs agree.
        assert_eq!(ProcessTrust::detect(false), ProcessTrust::Ordinary);
    }
}
