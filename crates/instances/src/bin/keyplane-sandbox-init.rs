//! Stage 1 of a sandbox instance's init on its own, for hosts driven without the keyplane
//! executable (this crate's tests): `keyplane-sandbox-init sandbox-init ID HOSTNAME ADDRESS
//! LOWER DNS AGENT`, the same as `keyplane sandbox-init ...`.

fn main() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(keyplane_instances::init::SUBCOMMAND)) {
        eprintln!(
            "usage: keyplane-sandbox-init {} ID HOSTNAME ADDRESS LOWER DNS AGENT",
            keyplane_instances::init::SUBCOMMAND
        );
        std::process::exit(2);
    }
    keyplane_instances::init::run(args.collect())
}
