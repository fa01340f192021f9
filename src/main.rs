//! The `pxtr` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use pxtr::app::{self, RunOptions};
use pxtr::config::{self, Config, ConfigError};
use pxtr::dataplane::Reason;

#[derive(Parser)]
#[command(name = "pxtr", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BUILD_GIT_COMMIT"), ", DPDK ", env!("BUILD_DPDK_VERSION"), ")"), about = "LISP Proxy Tunnel Router appliance on DPDK")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance: EAL, ports and worker lcores from the config, until SIGINT/SIGTERM.
    Run {
        /// Configuration file (TOML). Without it, the embedded lab on virtual devices runs.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Stop by itself after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        duration: Option<f64>,
    },
    /// Validate a configuration file: print every problem (exit 1) or a summary (exit 0).
    CheckConfig {
        /// Configuration file (TOML).
        file: PathBuf,
        /// Also print the EAL arguments the file implies.
        #[arg(long)]
        eal_args: bool,
    },
    /// Print the embedded default (lab) configuration.
    DefaultConfig,
    /// Ask the running appliance: show map-cache [PREFIX], show site, show database-mapping,
    /// show dynamic-eid, show neighbors, show stats, show ipsec, clear map-cache [PREFIX],
    /// reload (re-read the configuration file, as SIGHUP does).
    Ctl {
        /// The appliance's control.socket (default: the one in --config, else
        /// /run/pxtr/pxtr.sock).
        #[arg(short, long)]
        socket: Option<PathBuf>,
        /// Read control.socket from this configuration file.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Print the answer as JSON (for scripts) instead of tables.
        #[arg(long)]
        json: bool,
        /// The command, e.g. `show map-cache 10.1.0.0/16`.
        #[arg(required = true, num_args = 1.., trailing_var_arg = true)]
        words: Vec<String>,
    },
}

/// Logs to stderr with `filter` (`RUST_LOG` overrides it). Returns what changes the filter
/// later (a reloaded `control.log_level`), unless `RUST_LOG` decides it.
fn init_logging(filter: &str) -> Option<app::LogFilterHook> {
    let from_env = std::env::var("RUST_LOG").ok();
    let filter = from_env.clone().unwrap_or_else(|| filter.to_owned());
    let env_filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter_reloading();
    let handle = builder.reload_handle();
    builder.try_init().ok()?;
    if from_env.is_some() {
        return None;
    }
    Some(std::sync::Arc::new(move |f: &str| {
        let f = tracing_subscriber::EnvFilter::try_new(f).map_err(|e| e.to_string())?;
        handle.reload(f).map_err(|e| e.to_string())
    }))
}

fn load(path: Option<&PathBuf>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => config::load_file(p),
        None => config::load_str(
            config::EMBEDDED_LAB,
            std::path::Path::new("<embedded lab config>"),
            None,
        ),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file, eal_args } => match config::load_file(&file) {
            Ok(cfg) => {
                println!("{}: OK", file.display());
                print!("{}", cfg.summary());
                if eal_args {
                    println!("eal args: {}", cfg.eal_args().join(" "));
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Command::Ctl {
            socket,
            config,
            json,
            words,
        } => {
            let req = match pxtr::ctl::parse(&words.join(" ")) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("pxtr ctl: {e}");
                    return ExitCode::from(2);
                }
            };
            let socket = match (socket, config) {
                (Some(s), _) => s,
                (None, Some(c)) => match config::control_socket(&c) {
                    Ok(s) => PathBuf::from(s),
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(1);
                    }
                },
                (None, None) => PathBuf::from(config::Control::default().socket),
            };
            match pxtr::ctl::ask(&socket, &words) {
                Ok(data) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&data).unwrap_or_default()
                        );
                    } else {
                        print!("{}", pxtr::ctl::render::render(&req, &data));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("pxtr ctl: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::DefaultConfig => {
            print!("{}", config::EMBEDDED_LAB);
            ExitCode::SUCCESS
        }
        Command::Run { config, duration } => {
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            };
            let log_filter = init_logging(&cfg.control.log_level);
            let duration = match duration {
                Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
                Some(s) => {
                    eprintln!("--duration {s}: expected a positive number of seconds");
                    return ExitCode::from(2);
                }
                None => None,
            };
            let opts = RunOptions {
                duration,
                reload: app::ReloadSource {
                    path: config,
                    log_filter,
                },
            };
            match app::run(&cfg, &opts) {
                Ok(report) => {
                    for w in &report.workers {
                        let c = &w.counters.counts;
                        println!(
                            "worker lcore {}: {} packets, {} bytes received; {} sent, {} encapsulated, {} decapsulated, {} punted, {} dropped",
                            w.lcore,
                            c.get(Reason::Rx),
                            c.get(Reason::RxBytes),
                            c.get(Reason::Tx),
                            c.get(Reason::Encap),
                            c.get(Reason::Decap),
                            Reason::ALL
                                .iter()
                                .filter(|r| r.name().starts_with("punt_"))
                                .map(|r| c.get(*r))
                                .sum::<u64>(),
                            c.drops()
                        );
                        let drops: Vec<String> = c
                            .nonzero()
                            .filter(|(r, _)| r.is_drop())
                            .map(|(r, n)| format!("{}={n}", r.name()))
                            .collect();
                        if !drops.is_empty() {
                            println!("  drops: {}", drops.join(" "));
                        }
                    }
                    println!(
                        "mbufs back in the pool: {}/{}",
                        report.mbufs_total - report.mbufs_leaked,
                        report.mbufs_total
                    );
                    if report.mbufs_leaked == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(3)
                    }
                }
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("pxtr: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
