//! APDUs and time for login + one signature once the card is enumerated
//! (issue 7: "the physical minimum", PIV ECC P-256: SELECT, VERIFY,
//! GENERAL AUTHENTICATE), for any PKCS#11 module on the real stack. The
//! APDUs are counted at the card, from a virtual card's trace
//! (`../shared/virtpiv`'s `apdu.log`), not by the module.
//!
//! ```sh
//! cargo build --release -p p11card-pkcs11 --example login_sign_probe
//! target/release/examples/login_sign_probe MODULE.so /path/to/apdu.log [RUNS]
//! ```
//!
//! One process: `C_Initialize`, the first token, a session, every object
//! listed with its attributes (so the card is enumerated), then RUNS times
//! for each key: `C_Login(CKU_USER)`, find the private key by `CKA_ID`,
//! `C_SignInit`, `C_Login(CKU_CONTEXT_SPECIFIC)` if the key says
//! `CKA_ALWAYS_AUTHENTICATE`, `C_Sign`; then `C_Logout` (not counted), so
//! every round logs in afresh. Keys (OpenSC's and ykcs11's IDs): 02 = 9C
//! ECDSA P-256 (context login), 04 = 9E ECDSA P-256, 01 = 9A RSA-2048
//! (`CKM_RSA_PKCS` over a SHA-256 `DigestInfo`). `P11CARD_PIN` (default
//! 123456).
//!
//! Output: a line per key, and `RESULT insession …` lines for
//! `benches/run.sh` (APDUs min/median/max over the rounds, those of the
//! login and of the signature, wall time min/median in ms).

#[path = "probe_support/mod.rs"]
mod probe;

use cryptoki_sys::*;
use probe::{check, p11, ulong, Module, Res, TraceCounter};
use std::path::{Path, PathBuf};
use std::ptr;
use std::time::Instant;

const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

struct Job {
    name: &'static str,
    id: u8,
    mechanism: CK_MECHANISM_TYPE,
}

const JOBS: [Job; 3] = [
    Job {
        name: "ecdsa-p256-9c",
        id: 2,
        mechanism: CKM_ECDSA,
    },
    Job {
        name: "ecdsa-p256-9e",
        id: 4,
        mechanism: CKM_ECDSA,
    },
    Job {
        name: "rsa2048-9a",
        id: 1,
        mechanism: CKM_RSA_PKCS,
    },
];

struct Round {
    apdus: u64,
    login_apdus: u64,
    sign_apdus: u64,
    micros: u128,
}

/// One round: login, find, sign (with a context login when the key wants
/// one), counted and timed; then logout.
fn round(
    module: &Module,
    session: CK_SESSION_HANDLE,
    trace: &mut TraceCounter,
    job: &Job,
    pin: &str,
) -> Res<Round> {
    let hash = [0x5Au8; 32];
    let input = if job.mechanism == CKM_RSA_PKCS {
        [&SHA256_DIGEST_INFO[..], &hash].concat()
    } else {
        hash.to_vec()
    };
    let start_count = trace.count()?;
    let started = Instant::now();
    module.login(session, CKU_USER, pin)?;
    let after_login = trace.count()?;
    let keys = module.find(
        session,
        &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY)), (CKA_ID, vec![job.id])],
    )?;
    let Some(&key) = keys.first() else {
        return Err(format!("no private key with CKA_ID {:02x}", job.id));
    };
    let always = module.attribute(session, key, CKA_ALWAYS_AUTHENTICATE) == Some(vec![CK_TRUE]);
    let before_sign = trace.count()?;
    let mut mechanism = CK_MECHANISM {
        mechanism: job.mechanism,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    };
    check(
        p11!(module, C_SignInit(session, &mut mechanism, key)),
        "C_SignInit",
    )?;
    if always {
        module.login(session, CKU_CONTEXT_SPECIFIC, pin)?;
    }
    let mut signature = vec![0u8; 1024];
    let mut len = signature.len() as CK_ULONG;
    check(
        p11!(
            module,
            C_Sign(
                session,
                input.as_ptr() as *mut u8,
                input.len() as CK_ULONG,
                signature.as_mut_ptr(),
                &mut len
            )
        ),
        "C_Sign",
    )?;
    let micros = started.elapsed().as_micros();
    let end_count = trace.count()?;
    p11!(module, C_Logout(session));
    if len == 0 {
        return Err("empty signature".into());
    }
    Ok(Round {
        apdus: end_count - start_count,
        login_apdus: after_login - start_count,
        sign_apdus: end_count - before_sign,
        micros,
    })
}

fn median<T: Copy + Ord>(values: &mut [T]) -> T {
    values.sort_unstable();
    values[(values.len() - 1) / 2]
}

fn run(path: &Path, trace_path: &Path, runs: usize) -> Res<()> {
    let pin = std::env::var("P11CARD_PIN").unwrap_or_else(|_| "123456".into());
    let mut trace = TraceCounter::new(trace_path)?;
    let module = Module::load(path)?;
    module.initialize()?;
    let slot = *module.token_slots()?.first().ok_or("no token")?;
    module.token_label(slot)?;
    let session = module.open_session(slot)?;
    module.list_objects(session)?;
    for job in &JOBS {
        let mut rounds = Vec::new();
        let mut failure = None;
        for _ in 0..runs {
            match round(&module, session, &mut trace, job, &pin) {
                Ok(r) => rounds.push(r),
                Err(e) => {
                    failure = Some(e);
                    p11!(module, C_Logout(session));
                    break;
                }
            }
        }
        if let Some(e) = failure {
            println!("{}: failed: {e}", job.name);
            println!(
                "RESULT insession job={} error={}",
                job.name,
                e.replace(' ', "_")
            );
            continue;
        }
        let mut apdus: Vec<u64> = rounds.iter().map(|r| r.apdus).collect();
        let mut micros: Vec<u128> = rounds.iter().map(|r| r.micros).collect();
        let (a_min, a_max) = (*apdus.iter().min().unwrap(), *apdus.iter().max().unwrap());
        let a_med = median(&mut apdus);
        let login_min = rounds.iter().map(|r| r.login_apdus).min().unwrap();
        let sign_min = rounds.iter().map(|r| r.sign_apdus).min().unwrap();
        let t_min = *micros.iter().min().unwrap();
        let t_med = median(&mut micros);
        println!(
            "{}: login + sign {a_min} APDUs (median {a_med}, max {a_max}; login {login_min}, \
             sign {sign_min}), {:.2} ms min, {:.2} ms median over {runs} rounds",
            job.name,
            t_min as f64 / 1e3,
            t_med as f64 / 1e3,
        );
        println!(
            "RESULT insession job={} runs={runs} apdus_min={a_min} apdus_median={a_med} \
             apdus_max={a_max} login_apdus_min={login_min} sign_apdus_min={sign_min} \
             us_min={t_min} us_median={t_med}",
            job.name
        );
    }
    p11!(module, C_CloseSession(session));
    module.finalize();
    Ok(())
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(module), Some(trace)) = (args.next(), args.next()) else {
        eprintln!("usage: login_sign_probe MODULE.so APDU_TRACE [RUNS]");
        std::process::exit(2);
    };
    let runs = args
        .next()
        .and_then(|r| r.to_str()?.parse().ok())
        .unwrap_or(5usize)
        .max(1);
    if let Err(e) = run(&PathBuf::from(module), &PathBuf::from(trace), runs) {
        eprintln!("login_sign_probe: {e}");
        std::process::exit(1);
    }
}
