//! Generates the DPDK bindings from the system's libdpdk (found by pkg-config), compiles the
//! wrappers of DPDK's `static inline` fast-path functions, and emits the link lines.
//!
//! Dynamic linking is the default. With the `static` feature every DPDK library and driver is
//! linked from its `.a` archive, whole-archived (drivers register themselves from constructors,
//! which a plain static link would drop), so the binary needs no DPDK at run time.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Function families src/dpdk uses. `static inline` ones among them get a C wrapper.
const FUNCTIONS: &str = "rte_(eal_.*|lcore_.*|get_main_lcore|get_next_lcore|socket_id|socket_count|\
mempool_.*|pktmbuf_.*|mbuf_.*|eth_.*|dev_probe|dev_remove|vdev_init|vdev_uninit|ring_.*|lpm_.*|lpm6_.*|\
rdtsc|rdtsc_precise|get_tsc_hz|get_tsc_cycles|delay_us_block|strerror|version|pause)|pxtr_.*";

const TYPES: &str = "rte_(mbuf|mempool|eth_.*|ether_addr|ring|lpm|lpm6|lpm_config|lpm6_config|\
lcore_state_t|proc_type_t|rmt_call_main_t|dev_eth_.*)";

const VARS: &str = "RTE_(MAX_LCORE|MAX_ETHPORTS|MBUF_DEFAULT_BUF_SIZE|MBUF_DEFAULT_DATAROOM|\
PKTMBUF_HEADROOM|MEMPOOL_CACHE_MAX_SIZE|ETH_.*|MBUF_F_.*|RING_F_.*|LCORE_ID_ANY|ETHER_.*|\
ETH_NAME_MAX_LEN|DEV_NAME_MAX_LEN)|RING_F_.*|SOCKET_ID_ANY|LCORE_ID_ANY|pxtr_.*";

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .unwrap_or_else(|e| panic!("cannot run pkg-config ({e}): install pkg-config and libdpdk-dev (ci/setup.sh does both)"));
    if !out.status.success() {
        panic!(
            "pkg-config {} libdpdk failed: {}\nInstall DPDK's development files: apt-get install libdpdk-dev (ci/setup.sh does it)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout)
        .expect("pkg-config printed non-UTF-8")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// rdma-core's provider archives, named `-l<hw>-rdmav<ABI>` (`-lbnxt_re-rdmav34`, ...):
/// libibverbs.pc lists them for a fully static libibverbs. Only `.a` files exist for them (the
/// providers ship as plugins that the shared libibverbs dlopens), and we link libibverbs itself
/// dynamically, so nothing would ever pull them in: leave them out rather than lean on the linker
/// falling back to an archive for a `-l` it was told is a shared library.
fn is_rdma_provider(lib: &str) -> bool {
    lib.rsplit_once("-rdmav").is_some_and(|(name, abi)| {
        !name.is_empty() && !abi.is_empty() && abi.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Turns pkg-config's link flags into cargo directives (which, unlike `rustc-link-arg`, reach the
/// final binary from a -sys crate).
///
/// Static build (Debian's libdpdk.pc with `--static`): every DPDK library and driver comes as
/// `-Wl,--whole-archive -l:librte_xxx.a ... -Wl,--no-whole-archive`, then the system libraries
/// they need. The archives are linked whole (drivers register from constructors); the system
/// libraries (libnuma, libpcap, libibverbs, libmlx5, libbpf, libxdp, libcrypto, ...) stay shared,
/// so the binary needs glibc and those at run time but no librte_*. `-lsystemd` is among them
/// (libpcap -> dbus-1's private libs): the link needs libsystemd-dev for the `.so` symlink even
/// though `--as-needed` then drops it from the binary.
fn emit_link_lines(flags: &[String], statically: bool) {
    let mut whole_archive = false;
    let mut dylibs_seen = std::collections::HashSet::new();
    for flag in flags {
        match flag.as_str() {
            "-Wl,--whole-archive" => whole_archive = true,
            "-Wl,--no-whole-archive" => whole_archive = false,
            // -Wl,--as-needed is rustc's default; --export-dynamic only serves shared driver
            // plugins loaded with EAL's -d (useless with a static DPDK); -pthread is irrelevant.
            f if f.starts_with("-Wl,") || f == "-pthread" => {}
            f if f.starts_with("-L") => println!("cargo:rustc-link-search=native={}", &f[2..]),
            f if f.starts_with("-l:") => {
                let file = &f[3..];
                let kind = if whole_archive {
                    "static:+whole-archive,+verbatim,-bundle"
                } else {
                    "static:+verbatim,-bundle"
                };
                println!("cargo:rustc-link-lib={kind}={file}");
            }
            f if f.starts_with("-l") => {
                let lib = &f[2..];
                // In a static build the DPDK libraries already came in as archives above.
                if statically && (lib.starts_with("rte_") || is_rdma_provider(lib)) {
                    continue;
                }
                // pkg-config --static repeats the common ones (-lpthread six times, -libverbs
                // five): once is enough for shared libraries.
                if dylibs_seen.insert(lib.to_owned()) {
                    println!("cargo:rustc-link-lib=dylib={lib}");
                }
            }
            _ => {}
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let statically = env::var_os("CARGO_FEATURE_STATIC").is_some();

    let version = pkg_config(&["--modversion"]).join("");
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 22 {
        panic!("pxtr needs DPDK 22.11 or newer; pkg-config found libdpdk {version}");
    }
    println!("cargo:version={version}");

    let cflags = pkg_config(&["--cflags"]);
    // cflags come as "-include rte_config.h": keep the pairs together for clang and cc.
    let mut include_dirs = Vec::new();
    for f in &cflags {
        if let Some(dir) = f.strip_prefix("-I") {
            include_dirs.push(dir.to_owned());
        }
    }

    let wrappers = out_dir.join("static_fns");
    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .allowlist_function(FUNCTIONS)
        .allowlist_type(TYPES)
        .allowlist_var(VARS)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers)
        .use_core()
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen could not generate the DPDK bindings");
    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .expect("write bindings.rs");

    let mut build = cc::Build::new();
    build
        .file(wrappers.with_extension("c"))
        .file("shim.c")
        .include(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
        .opt_level(3)
        .warnings(false);
    for dir in &include_dirs {
        build.include(dir);
    }
    let mut iter = cflags.iter();
    while let Some(f) = iter.next() {
        if f == "-include" {
            if let Some(file) = iter.next() {
                build.flag("-include").flag(file);
            }
        } else if f.starts_with("-m") || f.starts_with("-D") {
            build.flag(f);
        }
    }
    build.compile("pxtr_dpdk_shim");

    let libs = if statically {
        pkg_config(&["--static", "--libs"])
    } else {
        pkg_config(&["--libs"])
    };
    emit_link_lines(&libs, statically);
}
