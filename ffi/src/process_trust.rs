//! The kernel's verdict on this process's privileges, which the core crate
//! (no `unsafe`) cannot ask for.

use p11card::ProcessTrust;

/// This process's [`ProcessTrust`]: privileged when the kernel marked it for
/// secure execution (Linux `getauxval(AT_SECURE)`, BSD and macOS
/// `issetugid()`: set-ID programs, file capabilities, security-module
/// transitions) or its real and effective user or group IDs differ.
/// Rust programs linking this crate can pass it to
/// `p11card::config::Config::load`.
pub fn process_trust() -> ProcessTrust {
    ProcessTrust::detect(secure_execution())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn secure_execution() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector the kernel passed to
    // the process at exec; any type is a valid argument (0 if absent).
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
))]
fn secure_execution() -> bool {
    // SAFETY: issetugid takes no arguments and only reports a flag.
    unsafe { libc::issetugid() != 0 }
}

/// Elsewhere (Windows) there are no set-ID programs.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
)))]
fn secure_execution() -> bool {
    false
}
