//! The module's own cost per signature (issue 7): `C_SignInit` + `C_Sign`
//! through the C ABI (the function list, as a C application calls it) on
//! the simulated PIV card, minus what the simulated card itself spends on
//! the same APDUs.
//!
//! ```sh
//! cargo bench -p p11card-pkcs11 --bench sign_overhead
//! cargo bench -p p11card-pkcs11 --bench sign_overhead -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! What it measures (criterion, medians):
//! - `c_sign/ecdsa_p256_9e`: `CKM_ECDSA` over a 32-byte hash with key 9E
//!   (card authentication, no PIN);
//! - `c_sign/rsa2048_pkcs1_9a`: `CKM_RSA_PKCS` over a SHA-256 `DigestInfo`
//!   with key 9A, after `C_Login`;
//! - `card_only/…`: the simulated card processing exactly the APDUs the
//!   module sent for one such signature (`SimCard` `process()`, recorded
//!   from the card's log), without the module.
//!
//! - `module_only/…`: the same signatures, each iteration's time minus the
//!   time spent inside the simulated card's `transmit` during it (the
//!   module reaches the card through a timing wrapper around the simulated
//!   reader): the module's overhead, measured paired, so the card's own
//!   variance does not swamp it.
//!
//! `C_Sign` minus `card_only` is the same overhead measured unpaired (two
//! medians); both are printed (the issue's target for ECDSA P-256: under
//! 50 µs). Then the steady rate: 1 and 8 threads,
//! each with its own session, signing with 9E (and 8 threads with 9A) for
//! `P11CARD_BENCH_THREAD_SECS` seconds (default 2), with the signatures per
//! thread and per 250 ms window, so an unfair lock or a stall shows.
//!
//! Lines starting with `RESULT` are for `benches/run.sh`. Under
//! `cargo test --benches` (criterion's test mode) every part runs once,
//! briefly.

use criterion::Criterion;
use cryptoki_sys::*;
use p11card::transport::{CardTransport, ReaderBackend, ReaderStatus, Transmit, TransportError};
use p11card_cardsim::{SimBackend, SimCard, SimPivCard};
use std::ffi::c_void;
use std::hint::black_box;
use std::path::PathBuf;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const PIN: &[u8] = b"123456";
/// The VERIFY the log redacts, rebuilt for the card-only replay (PIN
/// reference 80, padded with FF to 8 bytes).
const VERIFY_PIN: [u8; 13] = [
    0x00, 0x20, 0x00, 0x80, 0x08, b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF,
];
/// The DER prefix of a SHA-256 `DigestInfo` (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn f() -> &'static CK_FUNCTION_LIST {
    p11card_pkcs11::function_list()
}

macro_rules! ck {
    ($name:ident ( $($arg:expr),* $(,)? )) => {
        // SAFETY: every pointer passed below points at live, correctly sized
        // memory owned by the caller for the duration of the call.
        unsafe { (f().$name.expect(stringify!($name)))($($arg),*) }
    };
}

fn ok(rv: CK_RV, what: &str) {
    assert_eq!(rv, CKR_OK, "{what}: {rv:#x}");
}

/// One signing job: key, mechanism and input.
#[derive(Clone, Copy)]
struct Job {
    name: &'static str,
    key_id: u8,
    mechanism: CK_MECHANISM_TYPE,
    signature_len: usize,
}

const ECDSA_9E: Job = Job {
    name: "ecdsa_p256_9e",
    key_id: 4,
    mechanism: CKM_ECDSA,
    signature_len: 64,
};

const RSA_9A: Job = Job {
    name: "rsa2048_pkcs1_9a",
    key_id: 1,
    mechanism: CKM_RSA_PKCS,
    signature_len: 256,
};

impl Job {
    fn input(&self, seed: u8) -> Vec<u8> {
        let hash: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(31) ^ seed).collect();
        if self.mechanism == CKM_RSA_PKCS {
            [&SHA256_DIGEST_INFO[..], &hash].concat()
        } else {
            hash
        }
    }
}

/// The simulated reader, with the time spent inside the card's `transmit`
/// added up (nanoseconds) in `card_ns`.
#[derive(Clone)]
struct TimedBackend {
    inner: SimBackend,
    card_ns: Arc<AtomicU64>,
}

impl ReaderBackend for TimedBackend {
    fn readers(&self) -> Result<Vec<ReaderStatus>, TransportError> {
        self.inner.readers()
    }

    fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, TransportError> {
        Ok(Box::new(TimedTransport {
            inner: self.inner.connect(reader)?,
            card_ns: self.card_ns.clone(),
        }))
    }

    fn reader_status(&self, reader: &str) -> Result<Option<ReaderStatus>, TransportError> {
        self.inner.reader_status(reader)
    }

    fn wait_for_change(
        &self,
        known: &[ReaderStatus],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        self.inner.wait_for_change(known, timeout)
    }

    fn cancel_wait(&self) {
        self.inner.cancel_wait()
    }
}

struct TimedTransport {
    inner: Box<dyn CardTransport>,
    card_ns: Arc<AtomicU64>,
}

impl CardTransport for TimedTransport {
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }

    fn has_pin_pad(&self) -> bool {
        self.inner.has_pin_pad()
    }

    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Transmit),
    ) -> Result<(), TransportError> {
        let card_ns = self.card_ns.clone();
        self.inner.transaction(&mut |link| {
            body(&mut TimedLink {
                link,
                card_ns: &card_ns,
            })
        })
    }
}

struct TimedLink<'a> {
    link: &'a mut dyn Transmit,
    card_ns: &'a AtomicU64,
}

impl Transmit for TimedLink<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let start = Instant::now();
        let response = self.link.transmit(command);
        self.card_ns
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        response
    }

    // Everything else goes to the simulated reader unchanged: a method left
    // to its default here would change what the module sends.
    fn extended_length(&self) -> Option<bool> {
        self.link.extended_length()
    }

    fn note_extended_length(&mut self, works: bool) {
        self.link.note_extended_length(works)
    }

    fn verify_pin_pad(
        &mut self,
        request: &p11card::transport::PinPadVerify,
    ) -> Result<Vec<u8>, TransportError> {
        self.link.verify_pin_pad(request)
    }
}

/// The module over one simulated card (reached through [`TimedBackend`]),
/// initialised with OS locking and logged in (login is per token, so every
/// session may use 9A).
struct Module {
    card: SimCard,
    card_ns: Arc<AtomicU64>,
    slot: CK_SLOT_ID,
    session: CK_SESSION_HANDLE,
}

impl Module {
    /// A fresh simulated card, reached through [`TimedBackend`] if `timed`.
    fn start(timed: bool) -> Module {
        let (backend, card) = SimBackend::with_card(SimPivCard::new());
        let card_ns = Arc::new(AtomicU64::new(0));
        if timed {
            let timed = TimedBackend {
                inner: backend,
                card_ns: card_ns.clone(),
            };
            p11card_pkcs11::use_backend(move || Box::new(timed.clone()));
        } else {
            p11card_pkcs11::use_backend(move || Box::new(backend.clone()));
        }
        let mut args = CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: CKF_OS_LOCKING_OK,
            pReserved: ptr::null_mut(),
        };
        ok(
            ck!(C_Initialize(
                &mut args as *mut CK_C_INITIALIZE_ARGS as *mut c_void
            )),
            "C_Initialize",
        );
        let mut slots = [0 as CK_SLOT_ID; 8];
        let mut count = slots.len() as CK_ULONG;
        ok(
            ck!(C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut count)),
            "C_GetSlotList",
        );
        assert!(count >= 1, "no token on the simulated card");
        let slot = slots[0];
        let session = open_session(slot);
        ok(
            ck!(C_Login(
                session,
                CKU_USER,
                PIN.as_ptr() as *mut u8,
                PIN.len() as CK_ULONG
            )),
            "C_Login",
        );
        Module {
            card,
            card_ns,
            slot,
            session,
        }
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        ck!(C_Finalize(ptr::null_mut()));
    }
}

fn open_session(slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
    let mut session = 0;
    ok(
        ck!(C_OpenSession(
            slot,
            CKF_SERIAL_SESSION,
            ptr::null_mut(),
            None,
            &mut session
        )),
        "C_OpenSession",
    );
    session
}

/// The private key with `CKA_ID` = `id`.
fn private_key(session: CK_SESSION_HANDLE, id: u8) -> CK_OBJECT_HANDLE {
    the_object(session, CKO_PRIVATE_KEY, id)
}

/// The one object of `class` with `CKA_ID` `id`.
fn the_object(session: CK_SESSION_HANDLE, class: CK_OBJECT_CLASS, id: u8) -> CK_OBJECT_HANDLE {
    let mut id = [id];
    let mut template = [
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: &class as *const CK_OBJECT_CLASS as *mut c_void,
            ulValueLen: std::mem::size_of::<CK_OBJECT_CLASS>() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: id.as_mut_ptr() as *mut c_void,
            ulValueLen: 1,
        },
    ];
    ok(
        ck!(C_FindObjectsInit(session, template.as_mut_ptr(), 2)),
        "C_FindObjectsInit",
    );
    let mut found = [0 as CK_OBJECT_HANDLE; 4];
    let mut count: CK_ULONG = 0;
    ok(
        ck!(C_FindObjects(session, found.as_mut_ptr(), 4, &mut count)),
        "C_FindObjects",
    );
    ok(ck!(C_FindObjectsFinal(session)), "C_FindObjectsFinal");
    assert_eq!(
        count, 1,
        "objects of class {class} with CKA_ID {:02x}",
        id[0]
    );
    found[0]
}

/// The public key of the certificate with `CKA_ID` `id`, as the module
/// checks the card's signatures with it.
fn certificate_public_key(session: CK_SESSION_HANDLE, id: u8) -> p11card::cert::PublicKey {
    let found = the_object(session, CKO_CERTIFICATE, id);
    let mut value = vec![0u8; 4096];
    let mut attribute = CK_ATTRIBUTE {
        type_: CKA_VALUE,
        pValue: value.as_mut_ptr() as *mut c_void,
        ulValueLen: value.len() as CK_ULONG,
    };
    ok(
        ck!(C_GetAttributeValue(session, found, &mut attribute, 1)),
        "C_GetAttributeValue",
    );
    value.truncate(attribute.ulValueLen as usize);
    p11card::cert::parse_certificate(&value)
        .expect("the simulated card's certificate parses")
        .public_key
}

/// `C_SignInit` + one `C_Sign` into a buffer already big enough (what an
/// application that knows the key size does: no length query).
fn sign_once(
    session: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
    job: &Job,
    input: &[u8],
    out: &mut [u8],
) -> CK_ULONG {
    let mut mechanism = CK_MECHANISM {
        mechanism: job.mechanism,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    };
    let rv = ck!(C_SignInit(session, &mut mechanism, key));
    assert_eq!(rv, CKR_OK, "C_SignInit ({}): {rv:#x}", job.name);
    let mut len = out.len() as CK_ULONG;
    let rv = ck!(C_Sign(
        session,
        input.as_ptr() as *mut u8,
        input.len() as CK_ULONG,
        out.as_mut_ptr(),
        &mut len
    ));
    assert_eq!(rv, CKR_OK, "C_Sign ({}): {rv:#x}", job.name);
    assert_eq!(len as usize, job.signature_len, "signature length");
    len
}

/// The commands the card receives for one signature of each job (the
/// second one, after whatever the first settles).
fn signature_commands(module: &Module, jobs: &[Job]) -> Vec<Vec<Vec<u8>>> {
    let mut out = vec![0u8; 512];
    jobs.iter()
        .map(|job| {
            let key = private_key(module.session, job.key_id);
            sign_once(module.session, key, job, &job.input(0), &mut out);
            module.card.clear_log();
            sign_once(module.session, key, job, &job.input(0), &mut out);
            let commands = module.card.log().into_iter().map(|e| e.command).collect();
            module.card.clear_log();
            commands
        })
        .collect()
}

/// The APDUs the module sends for one signature, as the card received
/// them (a redacted VERIFY rebuilt with the PIN), checked to replay to a
/// signature on the card alone.
fn recorded_apdus(module: &Module, key: CK_OBJECT_HANDLE, job: &Job) -> Vec<Vec<u8>> {
    let input = job.input(0);
    let mut out = vec![0u8; 512];
    module.card.clear_log();
    sign_once(module.session, key, job, &input, &mut out);
    let apdus: Vec<Vec<u8>> = module
        .card
        .log()
        .into_iter()
        .map(|entry| {
            if entry.redacted && entry.ins() == 0x20 {
                VERIFY_PIN.to_vec()
            } else {
                entry.command
            }
        })
        .collect();
    assert!(!apdus.is_empty(), "{}: the module sent no APDU", job.name);
    let last = module.card.with(|card| {
        let mut last = Vec::new();
        for apdu in &apdus {
            last = card.process(apdu);
        }
        card.clear_log();
        last
    });
    assert_eq!(
        last[last.len() - 2..],
        [0x90, 0x00],
        "{}: the recorded APDUs do not replay",
        job.name
    );
    apdus
}

fn bench_sign(c: &mut Criterion, module: &Module, jobs: &[Job]) -> Vec<(Job, Vec<u8>)> {
    let mut recorded = Vec::new();
    let mut group = c.benchmark_group("c_sign");
    for job in jobs {
        let key = private_key(module.session, job.key_id);
        let input = job.input(1);
        let mut out = vec![0u8; 512];
        group.bench_function(job.name, |b| {
            b.iter_custom(|iters| {
                module.card.clear_log();
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(sign_once(module.session, key, job, &input, &mut out));
                }
                start.elapsed()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("module_only");
    for job in jobs {
        let key = private_key(module.session, job.key_id);
        let input = job.input(1);
        let mut out = vec![0u8; 512];
        group.bench_function(job.name, |b| {
            b.iter_custom(|iters| {
                module.card.clear_log();
                module.card_ns.store(0, Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(sign_once(module.session, key, job, &input, &mut out));
                }
                let elapsed = start.elapsed();
                let in_card = Duration::from_nanos(module.card_ns.load(Ordering::Relaxed));
                elapsed.saturating_sub(in_card)
            })
        });
    }
    group.finish();

    // The software check of the card's signature that every C_Sign makes
    // (issue 11): measured alone, so the overhead can be given without it.
    let mut group = c.benchmark_group("software_check");
    for job in jobs {
        let key = private_key(module.session, job.key_id);
        let public = certificate_public_key(module.session, job.key_id);
        let input = job.input(1);
        let mut out = vec![0u8; 512];
        let len = sign_once(module.session, key, job, &input, &mut out) as usize;
        let signature = &out[..len];
        let check = || match job.mechanism {
            CKM_RSA_PKCS => p11card::crypto::verify_rsa_pkcs1(&public, &input, signature),
            _ => p11card::crypto::verify_ecdsa(&public, &input, signature),
        };
        assert!(check(), "the card's signature verifies ({})", job.name);
        group.bench_function(job.name, |b| b.iter(|| black_box(check())));
    }
    group.finish();

    let mut group = c.benchmark_group("card_only");
    for job in jobs {
        let key = private_key(module.session, job.key_id);
        let apdus = recorded_apdus(module, key, job);
        recorded.push((*job, apdus.iter().map(|apdu| apdu[1]).collect()));
        group.bench_function(job.name, |b| {
            b.iter_custom(|iters| {
                module.card.with(|card| {
                    card.clear_log();
                    let start = Instant::now();
                    for _ in 0..iters {
                        for apdu in &apdus {
                            black_box(card.process(black_box(apdu)));
                        }
                    }
                    let elapsed = start.elapsed();
                    card.clear_log();
                    elapsed
                })
            })
        });
    }
    group.finish();
    recorded
}

/// Where criterion keeps its estimates: `$CRITERION_HOME`, which `main`
/// sets before criterion looks (the workspace's `target/criterion`).
fn criterion_home() -> PathBuf {
    PathBuf::from(std::env::var_os("CRITERION_HOME").expect("set in main"))
}

/// The median (ns) of a benchmark's latest run, from criterion's files.
fn median_ns(group: &str, name: &str) -> Option<f64> {
    let path = criterion_home()
        .join(group)
        .join(name)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// `threads` threads, each with its own session, sign with `job` for
/// `duration`; prints the totals, per thread and per window.
fn steady_rate(module: &Module, job: Job, threads: usize, duration: Duration) {
    // Windows of 250 ms (the whole run when it is shorter).
    let window = Duration::from_millis(250).min(duration);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let slot = module.slot;
    let workers: Vec<_> = (0..threads)
        .map(|index| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let session = open_session(slot);
                let key = private_key(session, job.key_id);
                let input = job.input(index as u8);
                let mut out = vec![0u8; 512];
                barrier.wait();
                let start = Instant::now();
                let mut done = Vec::new();
                while start.elapsed() < duration {
                    sign_once(session, key, &job, &input, &mut out);
                    done.push(start.elapsed());
                }
                ok(ck!(C_CloseSession(session)), "C_CloseSession");
                done
            })
        })
        .collect();
    barrier.wait();
    let done: Vec<Vec<Duration>> = workers
        .into_iter()
        .map(|worker| worker.join().expect("a signing thread panicked"))
        .collect();
    let per_thread: Vec<usize> = done.iter().map(Vec::len).collect();
    let total: usize = per_thread.iter().sum();
    let windows = (duration.as_nanos() / window.as_nanos()).max(1) as usize;
    let mut per_window = vec![0usize; windows];
    for stamp in done.iter().flatten() {
        let index = (stamp.as_nanos() / window.as_nanos()) as usize;
        if index < windows {
            per_window[index] += 1;
        }
    }
    let rate = |count: usize, span: Duration| count as f64 / span.as_secs_f64();
    let total_rate = rate(total, duration);
    let window_min = rate(*per_window.iter().min().unwrap_or(&0), window);
    let window_max = rate(*per_window.iter().max().unwrap_or(&0), window);
    let thread_min = per_thread.iter().min().copied().unwrap_or(0);
    let thread_max = per_thread.iter().max().copied().unwrap_or(0);
    println!(
        "{:<18} {threads} thread(s) for {:.1} s: {total} signatures, {total_rate:.0}/s; \
         per thread {thread_min}..{thread_max}; per 250 ms window {window_min:.0}..{window_max:.0}/s",
        job.name,
        duration.as_secs_f64(),
    );
    println!(
        "RESULT threads job={} threads={threads} secs={:.1} signatures={total} rate={total_rate:.0} \
         thread_min={thread_min} thread_max={thread_max} window_min={window_min:.0} window_max={window_max:.0}",
        job.name,
        duration.as_secs_f64(),
    );
}

fn main() {
    if std::env::var_os("CRITERION_HOME").is_none() {
        // CARGO_TARGET_TMPDIR is <target>/tmp; criterion's own default is
        // <target>/criterion, found with `cargo metadata`. Same place, known here.
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let home = target.parent().unwrap_or(&target).join("criterion");
        // Still single-threaded: nothing else reads the environment yet.
        std::env::set_var("CRITERION_HOME", home);
    }
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");

    let mut criterion = Criterion::default().configure_from_args();
    let jobs = [ECDSA_9E, RSA_9A];
    // The timing wrapper must not change what the module sends (a transport
    // method it does not forward would): compare with the plain reader.
    let plain = signature_commands(&Module::start(false), &jobs);
    let module = Module::start(true);
    let wrapper_ok = signature_commands(&module, &jobs) == plain;
    if !wrapper_ok {
        println!(
            "WARNING: through the timing wrapper the module sends other APDUs than through \
             the plain simulated reader: TimedLink/TimedTransport must forward a new \
             transport method; the paired (module_only) figures are not valid"
        );
    }
    let recorded = bench_sign(&mut criterion, &module, &jobs);
    criterion.final_summary();

    let secs: f64 = std::env::var("P11CARD_BENCH_THREAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let duration = Duration::from_secs_f64(if benchmarking { secs } else { 0.1 });

    if benchmarking {
        println!();
        println!("module overhead per C_SignInit + C_Sign (criterion medians):");
        for (job, ins) in &recorded {
            let apdus = ins.len();
            let ins: Vec<String> = ins.iter().map(|i| format!("{i:02X}")).collect();
            let (Some(module_ns), Some(card_ns)) = (
                median_ns("c_sign", job.name),
                median_ns("card_only", job.name),
            ) else {
                println!("{}: no criterion estimates found", job.name);
                continue;
            };
            let unpaired = module_ns - card_ns;
            let paired = median_ns("module_only", job.name).unwrap_or(f64::NAN);
            let check = median_ns("software_check", job.name).unwrap_or(f64::NAN);
            println!(
                "{:<18} C_Sign {:>8.1} µs; card alone {:>8.1} µs ({apdus} APDUs, INS {}); \
                 module: {:>6.1} µs paired, {:>6.1} µs unpaired; of it the software check \
                 {:>6.1} µs",
                job.name,
                module_ns / 1e3,
                card_ns / 1e3,
                ins.join(" "),
                paired / 1e3,
                unpaired / 1e3,
                check / 1e3
            );
            println!(
                "RESULT overhead job={} c_sign_ns={module_ns:.0} card_ns={card_ns:.0} \
                 module_paired_ns={paired:.0} module_unpaired_ns={unpaired:.0} check_ns={check:.0} apdus={apdus} \
                 wrapper_ok={wrapper_ok}",
                job.name
            );
        }
        println!();
    }
    println!("steady rate (each thread its own session):");
    steady_rate(&module, ECDSA_9E, 1, duration);
    steady_rate(&module, ECDSA_9E, 8, duration);
    steady_rate(&module, RSA_9A, 8, duration);
}
