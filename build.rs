//! Records what the binary was built from, for `pxtr --version` and logs.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    // A build without .git (the Docker image) can pass the commit in GIT_COMMIT.
    let from_env = std::env::var("GIT_COMMIT").ok().filter(|c| !c.is_empty());
    let commit = from_env.unwrap_or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into())
    });
    println!("cargo:rustc-env=BUILD_GIT_COMMIT={commit}");
    let dpdk = std::env::var("DEP_DPDK_VERSION").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=BUILD_DPDK_VERSION={dpdk}");
}
