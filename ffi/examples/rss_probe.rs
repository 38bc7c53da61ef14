//! How much resident memory a PKCS#11 module adds (issue 7: loading the
//! module and enumerating one card must add less than 5 MB).
//!
//! ```sh
//! cargo build --release -p p11card-pkcs11 --example rss_probe
//! target/release/examples/rss_probe target/release/libp11card_pkcs11.so
//! ```
//!
//! Reads `VmRSS` from `/proc/self/status` before `dlopen`, after `dlopen` +
//! `C_GetFunctionList`, after `C_Initialize`, and after enumerating the
//! first token: `C_GetSlotList`, `C_GetTokenInfo` of every slot with a
//! token, a session, and every object with the attributes `pkcs11-tool -O`
//! reads (class, ID, label, value, key type, modulus, EC point/params).
//! Works with any module (p11card, OpenSC, ykcs11) on the real stack.
//!
//! Output: one human line, and one `RESULT rss …` line (KiB) for
//! `benches/run.sh`. Exit status 1 if no token was found.

#[path = "probe_support/mod.rs"]
mod probe;

use probe::{status_kib, Module, Res};
use std::path::{Path, PathBuf};

fn run(path: &Path) -> Res<()> {
    let before = status_kib("VmRSS");
    let module = Module::load(path)?;
    let loaded = status_kib("VmRSS");
    module.initialize()?;
    let initialized = status_kib("VmRSS");
    let slots = module.token_slots()?;
    for slot in &slots {
        module.token_label(*slot)?;
    }
    let Some(slot) = slots.first().copied() else {
        module.finalize();
        return Err("no token".into());
    };
    let session = module.open_session(slot)?;
    let objects = module.list_objects(session)?;
    let enumerated = status_kib("VmRSS");
    let peak = status_kib("VmHWM");
    module.finalize();
    let delta = enumerated.saturating_sub(before);
    println!(
        "{}: RSS {before} KiB before, +{} after dlopen, +{} after C_Initialize, \
         +{delta} KiB after enumerating one token ({objects} objects); peak {peak} KiB",
        path.display(),
        loaded.saturating_sub(before),
        initialized.saturating_sub(before),
    );
    println!(
        "RESULT rss before_kib={before} loaded_kib={loaded} initialized_kib={initialized} \
         enumerated_kib={enumerated} delta_kib={delta} peak_kib={peak} objects={objects}"
    );
    Ok(())
}

fn main() {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: rss_probe MODULE.so");
        std::process::exit(2);
    };
    if let Err(e) = run(&path) {
        eprintln!("rss_probe: {e}");
        std::process::exit(1);
    }
}
