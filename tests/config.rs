//! Configuration loading and validation: examples, broken files, environment overrides and the
//! `pxtr check-config` command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pxtr::config::{self, ConfigError, Issue, KeyId, Role};

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

const LAB: &str = config::EMBEDDED_LAB;

fn load(text: &str) -> Result<config::Config, ConfigError> {
    config::load_str(text, Path::new("test.toml"), Some(HashMap::new()))
}

fn issues(text: &str) -> Vec<Issue> {
    match load(text) {
        Ok(_) => panic!("expected the config to be rejected:\n{text}"),
        Err(ConfigError::Invalid { issues, .. }) => issues,
        Err(e) => panic!("expected validation issues, got: {e}"),
    }
}

/// 1-based line of the first line containing `needle` ("2nd:needle": the second such line).
fn line_of(text: &str, needle: &str) -> usize {
    let (skip, needle) = match needle.strip_prefix("2nd:") {
        Some(n) => (1, n),
        None => (0, needle),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(skip)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in text"))
}

#[test]
fn every_example_loads_and_names_its_role() {
    let files = examples();
    assert!(
        files.len() >= 4,
        "one example per role and the lab: {files:?}"
    );
    let mut roles = Vec::new();
    for f in &files {
        let cfg = config::load_file(f).unwrap_or_else(|e| panic!("{e}"));
        roles.push(cfg.role());
    }
    for r in [Role::Pxtr, Role::Xtr, Role::MsMr] {
        assert!(roles.contains(&r), "an example for role {r}");
    }
}

#[test]
fn embedded_lab_is_the_lab_example() {
    let file =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab.toml"))
            .unwrap();
    assert_eq!(file, LAB);
    let cfg = load(LAB).unwrap();
    assert!(!cfg.eal.hugepages);
    let args = cfg.eal_args();
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--vdev" && w[1].starts_with("net_null0")),
        "{args:?}"
    );
    assert!(args.contains(&"--no-pci".to_owned()));
    assert!(args.contains(&"--no-huge".to_owned()));
    assert_eq!(
        cfg.tx_queues_per_port(),
        3,
        "two workers and the control core"
    );
}

#[test]
fn pci_ports_are_allow_listed() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pxtr.toml"))
            .unwrap();
    let cfg = load(&text).unwrap();
    let args = cfg.eal_args();
    assert!(!args.contains(&"--no-pci".to_owned()));
    assert!(
        args.windows(2)
            .any(|w| w[0] == "-a" && w[1] == "0000:03:00.0"),
        "{args:?}"
    );
    assert_eq!(cfg.map_server.sites[1].key_id, KeyId::HmacSha1_96);
}

/// Broken variants of the lab config: (what the change does, original text, replacement,
/// expected path, a fragment of the message, the text on the line the issue must point at).
const BROKEN: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "punt rings exceed the pool",
        "idle = \"adaptive\"",
        "idle = \"adaptive\"\npunt_ring_size = 8192",
        "mempool.mbufs",
        "punt rings",
        "mbufs = 8191",
    ),
    (
        "static neighbour with a bad MAC",
        "gateway = \"192.0.2.254\"",
        "gateway = \"192.0.2.254\"\nneighbors = [{ ip = \"192.0.2.254\", mac = \"02:00:00:00:fe\" }]",
        "ports[1].neighbors[0].mac",
        "six hex octets",
        "neighbors",
    ),
    (
        "static neighbour off the port's subnet",
        "gateway = \"192.0.2.254\"",
        "gateway = \"192.0.2.254\"\nneighbors = [{ ip = \"10.9.9.9\", mac = \"02:00:00:00:fe:fe\" }]",
        "ports[1].neighbors[0].ip",
        "inside one of this port's subnets",
        "neighbors",
    ),
    (
        "static mapping with host bits",
        "rlocs = [\"192.0.2.1\"]",
        "rlocs = [\"192.0.2.1\"]\nstatic_mappings = [{ prefix = \"10.2.0.1/16\", rlocs = [{ address = \"198.51.100.1\" }] }]",
        "lisp.static_mappings[0].prefix",
        "host bits",
        "static_mappings",
    ),
    (
        "static mapping with both locators and an action",
        "rlocs = [\"192.0.2.1\"]",
        "rlocs = [\"192.0.2.1\"]\nstatic_mappings = [{ prefix = \"10.2.0.0/16\", action = \"drop\", rlocs = [{ address = \"198.51.100.1\" }] }]",
        "lisp.static_mappings[0].action",
        "entries without rlocs",
        "static_mappings",
    ),
    (
        "attached EAL option",
        "in_memory = true",
        "in_memory = true\nextra_args = [\"-l0-3\"]",
        "eal.extra_args[0]",
        "pxtr sets -l itself",
        "extra_args",
    ),
    (
        "short PCI address",
        "device = \"net_ring0\"",
        "device = \"03:00.0\"",
        "ports[1].device",
        "0000:03:00.0",
        "device = \"03:00.0\"",
    ),
    (
        "network address",
        "addresses = [\"10.1.1.5/24\"]",
        "addresses = [\"10.1.1.0/24\"]",
        "ports[0].addresses[0]",
        "network or broadcast",
        "10.1.1.0/24\"]",
    ),
    (
        "gateway is our address",
        "gateway = \"192.0.2.254\"",
        "gateway = \"192.0.2.1\"",
        "ports[1].gateway",
        "own address",
        "gateway = \"192.0.2.1\"",
    ),
    (
        "burst below 4",
        "idle = \"adaptive\"",
        "idle = \"adaptive\"\nburst = 2",
        "dataplane.burst",
        "from 4 to 64",
        "burst = 2",
    ),
    (
        "rings exceed the pool",
        "rx_descriptors = 256 ",
        "rx_descriptors = 4096 ",
        "mempool.mbufs",
        "can hold",
        "mbufs = 8191",
    ),
    (
        "unknown role",
        "role = \"pxtr\"",
        "role = \"router\"",
        "appliance.role",
        "expected one of \"pxtr\", \"xtr\", \"ms-mr\"",
        "role = \"router\"",
    ),
    (
        "role missing",
        "role = \"pxtr\"",
        "",
        "appliance.role",
        "required",
        "[appliance]",
    ),
    (
        "mtu out of range",
        "role = \"eid\"",
        "role = \"eid\"\nmtu = 100",
        "ports[0].mtu",
        "MTU must be from 576",
        "mtu = 100",
    ),
    (
        "mtu not a number",
        "role = \"eid\"",
        "role = \"eid\"\nmtu = \"big\"",
        "ports[0].mtu",
        "expected a whole number",
        "mtu = \"big\"",
    ),
    (
        "bad address",
        "addresses = [\"10.1.1.5/24\"]",
        "addresses = [\"10.1.1.500/24\"]",
        "ports[0].addresses[0]",
        "not an IP address",
        "10.1.1.500",
    ),
    (
        "unknown key",
        "role = \"eid\"",
        "role = \"eid\"\nmtuu = 1500",
        "ports[0].mtuu",
        "unknown field",
        "mtuu = 1500",
    ),
    (
        "bad device",
        "device = \"net_ring0\"",
        "device = \"eth0\"",
        "ports[1].device",
        "PCI address",
        "device = \"eth0\"",
    ),
    (
        "port role missing",
        "role = \"rloc\"",
        "",
        "ports[1].role",
        "required",
        "2nd:[[ports]]",
    ),
    (
        "gateway off-subnet",
        "gateway = \"192.0.2.254\"",
        "gateway = \"192.0.3.254\"",
        "ports[1].gateway",
        "not inside",
        "gateway = \"192.0.3.254\"",
    ),
    (
        "worker on unknown port",
        "port = \"rloc0\", queue = 0",
        "port = \"rloc1\", queue = 0",
        "lcores.workers[1].port",
        "no port has this name",
        "port = \"rloc1\"",
    ),
    (
        "worker queue too high",
        "port = \"rloc0\", queue = 0",
        "port = \"rloc0\", queue = 3",
        "lcores.workers[1].queue",
        "below 1",
        "queue = 3",
    ),
    (
        "worker lcore reused",
        "{ lcore = 2,",
        "{ lcore = 1,",
        "lcores.workers[1].lcore",
        "already taken",
        "{ lcore = 1, cpu = 1, port = \"rloc0\"",
    ),
    (
        "control lcore reused",
        "control = 0",
        "control = 1",
        "lcores.workers[0].lcore",
        "already taken by lcores.control",
        "{ lcore = 1, cpu = 1, port = \"eid0\"",
    ),
    (
        "key id 3",
        "key_id = 2",
        "key_id = 3",
        "map_server.sites[0].key_id",
        "expected 1 (HMAC-SHA-1-96) or 2",
        "key_id = 3",
    ),
    (
        "short key",
        "key = \"lab-enterprise-key\"",
        "key = \"abc\"",
        "map_server.sites[0].key",
        "shorter than 8",
        "key = \"abc\"",
    ),
    (
        "host bits in EID prefix",
        "prefix = \"10.1.1.0/24\", port",
        "prefix = \"10.1.1.7/24\", port",
        "lisp.dynamic_eids[0].prefix",
        "did you mean 10.1.1.0/24",
        "10.1.1.7/24",
    ),
    (
        "dynamic EID on rloc port",
        "port = \"eid0\" }]",
        "port = \"rloc0\" }]",
        "lisp.dynamic_eids[0].port",
        "has role rloc",
        "port = \"rloc0\" }]",
    ),
    (
        "iid too large",
        "dynamic_eids = [{ name",
        "dynamic_eids = [{ iid = 16777216, name",
        "lisp.dynamic_eids[0].iid",
        "24 bits",
        "iid = 16777216",
    ),
    (
        "no rlocs",
        "rlocs = [\"192.0.2.1\"]",
        "rlocs = []",
        "lisp.rlocs",
        "required for this role",
        "rlocs = []",
    ),
    (
        "pool too big for memory",
        "mbufs = 8191",
        "mbufs = 262143",
        "eal.memory_mb",
        "raise eal.memory_mb",
        "memory_mb = 256",
    ),
    (
        "data room too small",
        "data_room = 2176",
        "data_room = 1024",
        "mempool.data_room",
        "needs at least",
        "data_room = 1024",
    ),
    (
        "burst too large",
        "idle = \"adaptive\"",
        "idle = \"adaptive\"\nburst = 500",
        "dataplane.burst",
        "from 4 to 64",
        "burst = 500",
    ),
    (
        "idle policy typo",
        "idle = \"adaptive\"",
        "idle = \"adaptve\"",
        "dataplane.idle",
        "expected one of \"poll\", \"adaptive\"",
        "idle = \"adaptve\"",
    ),
    (
        "EAL option pxtr owns",
        "in_memory = true",
        "in_memory = true\nextra_args = [\"--vdev=net_tap0\"]",
        "eal.extra_args[0]",
        "pxtr sets --vdev itself",
        "extra_args",
    ),
    (
        "bad log filter",
        "log_level = \"info\"",
        "log_level = \"pxtr=loud\"",
        "control.log_level",
        "not a log filter",
        "log_level = \"pxtr=loud\"",
    ),
    (
        "ms disabled without resolver",
        "enabled = true",
        "enabled = false",
        "lisp.map_resolvers",
        "at least one Map-Resolver",
        "[lisp]",
    ),
];

/// IPv6 EIDs need 1280 bytes plus the outer headers on every RLOC port.
#[test]
fn rloc_mtu_must_carry_ipv6_minimum_packets_when_eids_are_ipv6() {
    let with = |mtu: u16| {
        LAB.replacen(
            "addresses = [\"10.1.1.5/24\"]",
            "addresses = [\"10.1.1.5/24\", \"fd00:1::5/64\"]",
            1,
        )
        .replacen(
            "role = \"rloc\"",
            &format!("role = \"rloc\"\nmtu = {mtu}"),
            1,
        )
    };
    let found = issues(&with(1315));
    let issue = found
        .iter()
        .find(|i| i.path == "ports[1].mtu")
        .expect("an issue at ports[1].mtu");
    assert!(
        issue.to_string().contains("IPv6 EIDs need at least 1316"),
        "{issue}"
    );
    assert!(load(&with(1316)).is_ok());
    // An IPv6 RLOC address: 56 bytes of outer headers.
    let v6_rloc = |mtu: u16| {
        with(mtu).replacen(
            "addresses = [\"192.0.2.1/24\"]",
            "addresses = [\"192.0.2.1/24\", \"2001:db8:f::1/64\"]",
            1,
        )
    };
    let found = issues(&v6_rloc(1335));
    assert!(
        found
            .iter()
            .any(|i| i.path == "ports[1].mtu" && i.to_string().contains("at least 1336")),
        "{found:?}"
    );
    assert!(load(&v6_rloc(1336)).is_ok());
    // IPv4-only EIDs: no such floor.
    assert!(load(&LAB.replacen("role = \"rloc\"", "role = \"rloc\"\nmtu = 1300", 1)).is_ok());
}

#[test]
fn broken_configs_name_field_value_and_line() {
    for (what, from, to, path, fragment, line_text) in BROKEN {
        assert!(
            LAB.contains(from),
            "{what}: {from:?} is not in the lab config"
        );
        let text = LAB.replacen(from, to, 1);
        let found = issues(&text);
        let issue = found.iter().find(|i| i.path == *path).unwrap_or_else(|| {
            panic!(
                "{what}: no issue at {path}; got:\n{}",
                found.iter().map(|i| format!("  {i}\n")).collect::<String>()
            )
        });
        assert!(
            issue.message.contains(fragment),
            "{what}: message {:?} lacks {fragment:?}",
            issue.message
        );
        assert_eq!(
            issue.line,
            Some(line_of(&text, line_text)),
            "{what}: line of {issue}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = LAB
        .replacen("role = \"pxtr\"", "role = \"router\"", 1)
        .replacen("role = \"eid\"", "role = \"eid\"\nmtu = \"big\"", 1)
        .replacen("key = \"lab-enterprise-key\"", "key = \"abc\"", 1)
        .replacen(
            "port = \"rloc0\", queue = 0",
            "port = \"rloc1\", queue = 0",
            1,
        )
        .replacen(
            "addresses = [\"10.1.1.5/24\"]",
            "addresses = [\"10.1.1.500/24\"]",
            1,
        );
    let found = issues(&text);
    let paths: Vec<&str> = found.iter().map(|i| i.path.as_str()).collect();
    for p in [
        "appliance.role",
        "ports[0].mtu",
        "map_server.sites[0].key",
        "lcores.workers[1].port",
        "ports[0].addresses[0]",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    // The malformed values are not reported a second time by the semantic checks.
    assert_eq!(
        paths.iter().filter(|p| **p == "appliance.role").count(),
        1,
        "{paths:?}"
    );
}

#[test]
fn errors_in_later_array_elements_keep_their_file_index() {
    // Two bad workers: removing the first must not shift the index reported for the second.
    let text = LAB
        .replacen("{ lcore = 1, cpu = 1,", "{ lcore = \"one\", cpu = 1,", 1)
        .replacen("{ lcore = 2, cpu = 1,", "{ lcore = \"two\", cpu = 1,", 1);
    let found = issues(&text);
    let paths: Vec<&str> = found.iter().map(|i| i.path.as_str()).collect();
    assert!(paths.contains(&"lcores.workers[0].lcore"), "{paths:?}");
    assert!(paths.contains(&"lcores.workers[1].lcore"), "{paths:?}");
}

#[test]
fn syntax_errors_give_line_and_column() {
    let text = LAB.replacen("memory_mb = 256", "memory_mb = = 256", 1);
    match load(&text) {
        Err(ConfigError::Syntax { line, column, .. }) => {
            assert_eq!(line, line_of(&text, "memory_mb = = 256"));
            assert!(column > 1);
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn environment_overrides_file_values() {
    let env: HashMap<String, String> = [
        ("PXTR_EAL__MEMORY_MB".to_owned(), "512".to_owned()),
        ("PXTR_APPLIANCE__NAME".to_owned(), "lab-2".to_owned()),
        ("PXTR_DATAPLANE__IDLE".to_owned(), "poll".to_owned()),
        ("UNRELATED".to_owned(), "x".to_owned()),
    ]
    .into_iter()
    .collect();
    let cfg = config::load_str(LAB, Path::new("lab.toml"), Some(env)).unwrap();
    assert_eq!(cfg.eal.memory_mb, 512);
    assert_eq!(cfg.appliance.name, "lab-2");
    assert_eq!(cfg.dataplane.idle, config::IdlePolicy::Poll);
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let env: HashMap<String, String> = [("PXTR_EAL__MEMORY_MB".to_owned(), "lots".to_owned())]
        .into_iter()
        .collect();
    match config::load_str(LAB, Path::new("lab.toml"), Some(env)) {
        Err(ConfigError::Invalid { issues, .. }) => {
            let i = issues
                .iter()
                .find(|i| i.path == "eal.memory_mb")
                .expect("issue at eal.memory_mb");
            assert_eq!(i.env_var.as_deref(), Some("PXTR_EAL__MEMORY_MB"));
            assert!(i.to_string().contains("PXTR_EAL__MEMORY_MB"), "{i}");
        }
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

fn pxtr(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pxtr"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run pxtr")
}

#[test]
fn check_config_accepts_every_example() {
    for f in examples() {
        let out = pxtr(&["check-config", f.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(": OK"), "{stdout}");
        assert!(stdout.contains("role"), "{stdout}");
    }
}

#[test]
fn check_config_exit_codes_and_messages() {
    let dir = std::env::temp_dir().join(format!("pxtr-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        LAB.replacen("role = \"eid\"", "role = \"eid\"\nmtu = 100", 1),
    )
    .unwrap();
    let out = pxtr(&["check-config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml"), "names the file: {err}");
    assert!(
        err.contains("ports[0].mtu = 100"),
        "names field and value: {err}"
    );
    assert!(err.contains("line "), "gives the line: {err}");

    let missing = dir.join("nope.toml");
    let out = pxtr(&["check-config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));

    let syntax = dir.join("syntax.toml");
    std::fs::write(&syntax, "[appliance\nrole = \"pxtr\"\n").unwrap();
    let out = pxtr(&["check-config", syntax.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("syntax.toml:1:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = pxtr(&["check-config"]);
    assert_eq!(out.status.code(), Some(2), "usage error");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn problems_after_a_removed_array_element_keep_file_numbering() {
    let text = LAB.replacen(
        "rlocs = [\"192.0.2.1\"]",
        "rlocs = [\n  \"nope\",\n  \"192.0.2.1\",\n  \"224.0.0.1\",\n]",
        1,
    );
    let found = issues(&text);
    let bad = found
        .iter()
        .find(|i| i.path == "lisp.rlocs[0]")
        .expect("rlocs[0] is not an address");
    assert_eq!(bad.line, Some(line_of(&text, "\"nope\"")));
    let mc = found
        .iter()
        .find(|i| i.path == "lisp.rlocs[2]")
        .expect("rlocs[2] is multicast");
    assert_eq!(mc.line, Some(line_of(&text, "224.0.0.1")));
    assert!(
        !found.iter().any(|i| i.path == "lisp.rlocs[1]"),
        "{found:?}"
    );
}

#[test]
fn validation_problems_in_surviving_elements_are_not_lost() {
    let text = format!(
        "{LAB}\n[[lisp.database_mappings]]\npriority = 1\n\n[[lisp.database_mappings]]\nprefix = \"10.2.0.1/16\"\npriority = 255\n\n[[lisp.database_mappings]]\nprefix = \"10.3.0.0/16\"\npriority = 300\n"
    );
    // Appending [[lisp.database_mappings]] after [control] is valid TOML: it reopens [lisp].
    let found = issues(&text);
    let paths: Vec<&str> = found.iter().map(|i| i.path.as_str()).collect();
    for p in [
        "lisp.database_mappings[0]",
        "lisp.database_mappings[1].prefix",
        "lisp.database_mappings[1].priority",
        "lisp.database_mappings[2].priority",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    let host_bits = found
        .iter()
        .find(|i| i.path == "lisp.database_mappings[1].prefix")
        .unwrap();
    assert_eq!(host_bits.line, Some(line_of(&text, "10.2.0.1/16")));
}

#[test]
fn types_are_strict() {
    for (from, to, path) in [
        ("mbufs = 8191", "mbufs = 8190.6", "mempool.mbufs"),
        ("cache = 128", "cache = \"yes\"", "mempool.cache"),
        ("hugepages = false", "hugepages = \"no\"", "eal.hugepages"),
        ("key_id = 2", "key_id = true", "map_server.sites[0].key_id"),
        ("memory_mb = 256", "memory_mb = 1e3", "eal.memory_mb"),
    ] {
        let text = LAB.replacen(from, to, 1);
        let found = issues(&text);
        assert!(found.iter().any(|i| i.path == path), "{to}: {found:?}");
    }
}

#[test]
fn too_many_errors_do_not_validate_a_config_that_is_not_the_file() {
    let many: Vec<String> = (0..80).map(|i| format!("\"bad{i}\"")).collect();
    let text = LAB.replacen(
        "rlocs = [\"192.0.2.1\"]",
        &format!("rlocs = [{}]", many.join(", ")),
        1,
    );
    let found = issues(&text);
    assert!(
        !found.iter().any(|i| i.path == "appliance.role"),
        "role is set in the file: {found:?}"
    );
    assert!(found.len() <= 64);
}

#[test]
fn environment_cannot_reach_into_arrays() {
    let env: HashMap<String, String> = [("PXTR_PORTS__0__MTU".to_owned(), "9000".to_owned())]
        .into_iter()
        .collect();
    match config::load_str(LAB, Path::new("lab.toml"), Some(env)) {
        Err(ConfigError::Invalid { issues, .. }) => {
            assert_eq!(issues.len(), 1, "{issues:?}");
            assert_eq!(issues[0].env_var.as_deref(), Some("PXTR_PORTS__0__MTU"));
        }
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn an_environment_string_that_looks_like_a_number_stays_a_string() {
    let env: HashMap<String, String> = [("PXTR_APPLIANCE__NAME".to_owned(), "1234".to_owned())]
        .into_iter()
        .collect();
    let cfg = config::load_str(LAB, Path::new("lab.toml"), Some(env)).unwrap();
    assert_eq!(cfg.appliance.name, "1234");
}

#[test]
fn a_non_utf8_environment_does_not_crash_check_config() {
    use std::os::unix::ffi::OsStrExt;
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_pxtr"))
        .args(["check-config", lab.to_str().unwrap()])
        .env(
            std::ffi::OsStr::from_bytes(b"PXTR_JUNK"),
            std::ffi::OsStr::from_bytes(b"\xff\xfe"),
        )
        .env(
            std::ffi::OsStr::from_bytes(b"OTHER"),
            std::ffi::OsStr::from_bytes(b"\xff"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn answer_arp_for_only_on_eid_ports_and_only_unicast_addresses() {
    let on = |role: &str, addr: &str| {
        LAB.replacen(
            &format!("role = \"{role}\""),
            &format!("role = \"{role}\"\nanswer_arp_for = [\"{addr}\"]"),
            1,
        )
    };
    assert!(load(&on("eid", "10.1.1.1")).is_ok());
    let found = issues(&on("rloc", "192.0.2.9"));
    assert!(
        found
            .iter()
            .any(|i| i.path == "ports[1].answer_arp_for[0]"
                && i.to_string().contains("only eid ports")),
        "{found:?}"
    );
    let found = issues(&on("eid", "224.0.0.1"));
    assert!(
        found
            .iter()
            .any(|i| i.path == "ports[0].answer_arp_for[0]" && i.to_string().contains("unicast")),
        "{found:?}"
    );
    let found = issues(&on("eid", "10.1.1.5"));
    assert!(
        found.iter().any(
            |i| i.path == "ports[0].answer_arp_for[0]" && i.to_string().contains("own address")
        ),
        "{found:?}"
    );
}

#[test]
fn the_pool_check_counts_the_rx_queues_net_tap_adds() {
    // Two workers and the control core: three TX queues per port, so a net_tap port also
    // has three RX queues (256 descriptors each) where net_null has one.
    let held = |text: &str| -> u64 {
        let found = issues(&text.replacen("mbufs = 8191", "mbufs = 1023", 1));
        let msg = found
            .iter()
            .find(|i| i.path == "mempool.mbufs")
            .map(|i| i.to_string())
            .expect("the pool is too small either way");
        let at = msg.find("can hold ").expect("the count") + "can hold ".len();
        msg[at..].split(' ').next().unwrap().parse().unwrap()
    };
    let plain = held(LAB);
    let tap = held(&LAB.replacen("net_null0,size=64", "net_tap0,iface=pxtr-t", 1));
    assert_eq!(tap, plain + 2 * 256);
}

#[test]
fn kernel_addresses_only_on_taps_with_a_name_and_on_the_ports_subnet() {
    // The lab's rloc0 is a net_ring: no kernel side.
    let ring = LAB.replacen(
        "gateway = \"192.0.2.254\"",
        "gateway = \"192.0.2.254\"\nkernel_addresses = [\"192.0.2.254/24\"]",
        1,
    );
    assert!(
        issues(&ring)
            .iter()
            .any(|i| i.path == "ports[1].kernel_addresses[0]"
                && i.message.contains("net_tap devices with iface=")),
        "{:?}",
        issues(&ring)
    );
    let tap = |k: &str| {
        LAB.replacen(
            "device = \"net_ring0\"",
            "device = \"net_tap0,iface=px-rloc\"",
            1,
        )
        .replacen(
            "gateway = \"192.0.2.254\"",
            &format!("gateway = \"192.0.2.254\"\nkernel_addresses = [\"{k}\"]"),
            1,
        )
    };
    let ok = load(&tap("192.0.2.254/24")).expect("the gateway as the kernel side is fine");
    assert_eq!(
        ok.ports[1].kernel_addresses,
        vec!["192.0.2.254/24".parse::<ipnet::IpNet>().unwrap()]
    );
    for (k, says) in [
        ("192.0.2.1/24", "own address"),
        ("198.51.100.254/24", "not on the subnet"),
        ("192.0.2.254/25", "not on the subnet"),
    ] {
        let found = issues(&tap(k));
        assert!(
            found
                .iter()
                .any(|i| i.path == "ports[1].kernel_addresses[0]" && i.message.contains(says)),
            "{k}: {found:?}"
        );
    }
}

/// The lab plus one IPsec peer with `peer` as the rest of its table.
fn with_peer(peer: &str) -> String {
    format!(
        "{LAB}\n[ipsec]\n[[ipsec.peers]]\nname = \"cloud\"\nlocal_address = \"10.99.0.1\"\n\
         remote_address = \"10.99.0.2\"\nremote_rlocs = [\"100.64.2.0/24\"]\n{peer}"
    )
}

#[test]
fn ipsec_certificate_files_are_checked_and_found_next_to_the_config() {
    let dir = std::env::temp_dir().join(format!("pxtr-config-certs-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    // Structure only (config checking reads the files' layout, charon checks the rest).
    let cert = "-----BEGIN CERTIFICATE-----\nMAIwAA==\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN RSA PRIVATE KEY-----\nMAYCAQACAQU=\n-----END RSA PRIVATE KEY-----\n";
    std::fs::write(dir.join("certs/pxtr.pem"), cert).unwrap();
    std::fs::write(dir.join("certs/ca.pem"), cert).unwrap();
    std::fs::write(dir.join("certs/pxtr.key"), key).unwrap();
    std::fs::write(
        dir.join("certs/locked.key"),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let files = |key: &str| {
        format!(
            "auth = \"pubkey\"\ncertificate = \"certs/pxtr.pem\"\nprivate_key = \"{key}\"\n\
             ca_certificate = \"certs/ca.pem\"\nremote_id = \"CN=xtr-1\"\n"
        )
    };
    // Relative paths are the config file's folder's, not the working directory's.
    let good = dir.join("pxtr.toml");
    std::fs::write(&good, with_peer(&files("certs/pxtr.key"))).unwrap();
    let cfg = config::load_file(&good).unwrap_or_else(|e| panic!("{e}"));
    let p = &cfg.ipsec.peers[0];
    assert_eq!(
        Path::new(&p.private_key),
        dir.join("certs/pxtr.key").as_path()
    );
    assert_eq!(p.remote_id, "CN=xtr-1");

    let bad = dir.join("bad.toml");
    let text = with_peer(&files("certs/locked.key")).replace("certs/ca.pem", "certs/nope.pem");
    std::fs::write(&bad, &text).unwrap();
    let err = config::load_file(&bad).unwrap_err();
    let msg = err.to_string();
    let found: Vec<&str> = err.issues().iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        found,
        [
            "ipsec.peers[0].private_key",
            "ipsec.peers[0].ca_certificate"
        ],
        "{msg}"
    );
    assert!(
        msg.contains("locked.key: the private key is encrypted"),
        "{msg}"
    );
    assert!(msg.contains("nope.pem: cannot read"), "{msg}");
    assert!(
        msg.contains(&format!("line {}", line_of(&text, "certs/nope.pem"))),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ipsec_identities_go_with_certificates_and_rloc_ranges_keep_off_ike() {
    let found = issues(&with_peer(
        "auth = \"psk\"\npsk = \"0123456789abcdef-key\"\nlocal_id = \"CN=pxtr-1\"\n",
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "ipsec.peers[0].local_id");
    assert!(found[0].message.contains("only with auth = \"pubkey\""));

    let found = issues(
        &with_peer("psk = \"0123456789abcdef-key\"\n")
            .replace("[\"100.64.2.0/24\"]", "[\"10.99.0.0/24\"]"),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "ipsec.peers[0].remote_rlocs");
    assert!(
        found[0].message.contains("holds remote_address 10.99.0.2"),
        "{}",
        found[0]
    );

    let found = issues(&with_peer("auth = \"pubkey\"\n"));
    let paths: Vec<&str> = found.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "ipsec.peers[0].certificate",
            "ipsec.peers[0].private_key",
            "ipsec.peers[0].ca_certificate"
        ]
    );
}

/// `pxtr ctl --config` reads only `control.socket`: an operator who may use the socket but
/// not read the IPsec private key (or a file whose other keys are wrong) still reaches it.
#[test]
fn ctl_takes_only_the_socket_from_the_config_file() {
    let dir = std::env::temp_dir().join(format!("pxtr-ctl-socket-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pxtr.toml");
    let text = "[control]\nsocket = \"/run/pxtr/edge.sock\"\n\n[[ipsec.peers]]\nname = \"x\"\n\
                auth = \"pubkey\"\nprivate_key = \"/nonexistent/key.pem\"\n";
    std::fs::write(&file, text).unwrap();
    assert!(
        config::load_file(&file).is_err(),
        "the file is not a valid config"
    );
    assert_eq!(
        config::control_socket(&file).unwrap(),
        "/run/pxtr/edge.sock"
    );
    std::fs::write(&file, "[dataplane]\nburst = 32\n").unwrap();
    assert_eq!(
        config::control_socket(&file).unwrap(),
        config::Control::default().socket
    );
    std::fs::write(&file, "[control]\nsocket = 7\n").unwrap();
    match config::control_socket(&file) {
        Err(ConfigError::Invalid { issues, .. }) => {
            assert_eq!(issues[0].path, "control.socket");
            assert_eq!(issues[0].line, Some(2));
            assert_eq!(issues[0].value.as_deref(), Some("7"));
        }
        other => panic!("expected control.socket to be refused: {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
