//! The shared library itself, loaded with `dlopen` the way a C application
//! (Firefox, pkcs11-tool, p11-kit) loads it — not the rlib the other tests
//! link. Cargo builds `libp11card_pkcs11.so` next to the test binaries'
//! `deps/` directory.
//!
//! With PC/SC unreachable, the module still initialises and simply has no
//! slots: a browser loading it on a machine without pcscd must not fail.

use cryptoki_sys::*;
use libloading::{Library, Symbol};
use std::path::PathBuf;
use std::ptr;

/// target/<profile>/libp11card_pkcs11.so (the test runs from
/// target/<profile>/deps/).
fn library_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join(libloading::library_filename("p11card_pkcs11"));
    assert!(path.exists(), "{} is not built", path.display());
    path
}

fn load() -> Library {
    // SAFETY: loading our own module runs no initialisation code with
    // preconditions.
    unsafe { Library::new(library_path()) }.expect("dlopen the module")
}

#[test]
fn the_library_exports_the_pkcs11_entry_points() {
    let library = load();
    // SAFETY: the symbols are looked up by their PKCS#11 names and types.
    unsafe {
        let get_function_list: Symbol<CK_C_GetFunctionList> = library
            .get(b"C_GetFunctionList\0")
            .expect("C_GetFunctionList exported");
        assert!(get_function_list.is_some());
        let get_interface_list: Symbol<CK_C_GetInterfaceList> = library
            .get(b"C_GetInterfaceList\0")
            .expect("C_GetInterfaceList exported");
        assert!(get_interface_list.is_some());
        let get_interface: Symbol<CK_C_GetInterface> = library
            .get(b"C_GetInterface\0")
            .expect("C_GetInterface exported");
        assert!(get_interface.is_some());
    }
}

#[test]
fn without_pcsc_the_module_initialises_and_has_no_slots() {
    // pcsc-lite's client reads the daemon's socket path from this variable;
    // nothing listens there.
    std::env::set_var("PCSCLITE_CSOCK_NAME", "/nonexistent/socket");
    let library = load();
    // SAFETY: calls through the module's own function list, with valid
    // pointers, in the order PKCS#11 prescribes.
    unsafe {
        let get_function_list: Symbol<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
            library.get(b"C_GetFunctionList\0").unwrap();
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        assert_eq!(get_function_list(&mut list), CKR_OK);
        assert!(!list.is_null());
        let list = &*list;
        assert_eq!((list.version.major, list.version.minor), (2, 40));

        assert_eq!((list.C_Initialize.unwrap())(ptr::null_mut()), CKR_OK);

        let mut info = std::mem::zeroed::<CK_INFO>();
        assert_eq!((list.C_GetInfo.unwrap())(&mut info), CKR_OK);
        assert_eq!(
            (info.cryptokiVersion.major, info.cryptokiVersion.minor),
            (2, 40)
        );

        for token_present in [CK_FALSE, CK_TRUE] {
            let mut count: CK_ULONG = 99;
            assert_eq!(
                (list.C_GetSlotList.unwrap())(token_present, ptr::null_mut(), &mut count),
                CKR_OK,
                "C_GetSlotList(tokenPresent = {token_present})"
            );
            assert_eq!(count, 0);
        }

        assert_eq!((list.C_Finalize.unwrap())(ptr::null_mut()), CKR_OK);
    }
}
