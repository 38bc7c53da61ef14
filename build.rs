//! Validates `cardprofiles/*.toml` and embeds them in the library.
//! A broken profile fails the build with a message naming the file and field.

#[path = "src/profile/schema.rs"]
#[allow(dead_code)]
mod schema;

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cardprofiles");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    entries.sort();
    let mut names = Vec::new();
    let mut table = String::from("/// Profiles embedded at build time: (file name, TOML text).\npub static EMBEDDED: &[(&str, &str)] = &[\n");
    for path in &entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let profile: schema::ProfileFile = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("card profile {} is not valid: {e}", path.display()));
        if let Err(message) = profile.validate() {
            panic!("card profile {} is not valid: {message}", path.display());
        }
        if names.contains(&profile.name) {
            panic!(
                "card profile {}: name {:?} is used twice",
                path.display(),
                profile.name
            );
        }
        names.push(profile.name.clone());
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        writeln!(
            table,
            "    ({file_name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .ok();
    }
    table.push_str("];\n");
    if names.is_empty() {
        panic!("no card profiles in {}", dir.display());
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("profiles.rs");
    std::fs::write(&out, table).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
