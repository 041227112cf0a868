//! The templates are embedded with `include_dir!`, which cargo does not track: rebuild when
//! any of them changes.

fn main() {
    println!("cargo:rerun-if-changed=templates");
}
