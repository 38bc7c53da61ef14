//! Generates the C header for the module's exported functions with
//! cbindgen, into `OUT_DIR`. A test compares it with `include/p11card.h`,
//! so a stale committed header fails the build's tests.

fn main() {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .expect("ffi/cbindgen.toml is readable");
    let header = format!("{out_dir}/p11card.h");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen can read the ffi crate")
        .write_to_file(&header);
    println!("cargo:rustc-env=P11CARD_GENERATED_HEADER={header}");
}
