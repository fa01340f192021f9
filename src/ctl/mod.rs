//! `pxtr ctl`: the running appliance's management socket (issue #8).
//!
//! The control core listens on a Unix stream socket (`control.socket`). A client connects,
//! writes one request line — words, as typed after `pxtr ctl` ("show map-cache 10.1.0.0/16") —
//! and reads one JSON document back, `{"ok": true, "data": ...}` or `{"ok": false, "error":
//! "..."}`, until the server closes the connection. The server never blocks the control core:
//! connections are non-blocking, served a little on each pass of the control loop, and dropped
//! after [`CONN_TIMEOUT`]. The client turns the JSON into tables ([`render`]) unless `--json`.

pub mod metrics;
pub mod render;
pub mod serve;

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde_json::{json, Value};

pub use serve::CONN_TIMEOUT;
use serve::{Framing, Served};

/// Longest request line.
const MAX_REQUEST: usize = 4096;
/// Map-cache entries listed at most (the count says how many there are).
pub const MAX_LISTED: usize = 10_000;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Map-cache entries, all or those overlapping a prefix (an address is its host prefix).
    ShowMapCache { filter: Option<IpNet> },
    /// Map-Server sites and their registrations.
    ShowSite,
    /// ETR: configured EID prefixes, Map-Servers and detected dynamic EIDs.
    ShowDatabaseMapping,
    /// Hosts detected on the EID ports (dynamic EIDs and neighbours).
    ShowDynamicEid,
    /// The neighbour table the workers use (IP → MAC, port).
    ShowNeighbors,
    /// Counters per worker and reason, with rates; control-plane counters.
    ShowStats,
    /// IPsec peers and the state of their SAs.
    ShowIpsec,
    /// Remove map-cache entries learnt from the mapping system (all, or those inside a prefix).
    ClearMapCache { filter: Option<IpNet> },
    /// Re-read the configuration file and apply what changed (as SIGHUP does).
    Reload,
}

/// The commands, for help and errors.
pub const COMMANDS: &str = "show map-cache [PREFIX|ADDRESS], show site, show database-mapping, \
show dynamic-eid, show neighbors, show stats, show ipsec, clear map-cache [PREFIX|ADDRESS], reload";

fn prefix(word: &str) -> Result<IpNet, String> {
    word.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| word.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("{word:?}: expected an EID prefix or address (10.1.0.0/16, 10.1.1.20)")
        })
}

/// Parses a request line (commands are spelled out: no router-style abbreviations).
pub fn parse(line: &str) -> Result<Request, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let filter = |rest: &[&str]| -> Result<Option<IpNet>, String> {
        match rest {
            [] => Ok(None),
            [w] => prefix(w).map(Some),
            _ => Err(format!("unexpected {:?}", rest[1..].join(" "))),
        }
    };
    let only = |rest: &[&str], r: Request| -> Result<Request, String> {
        if rest.is_empty() {
            Ok(r)
        } else {
            Err(format!("unexpected {:?}", rest.join(" ")))
        }
    };
    match words.as_slice() {
        ["show", "map-cache", rest @ ..] => Ok(Request::ShowMapCache {
            filter: filter(rest)?,
        }),
        ["show", "site" | "sites", rest @ ..] => only(rest, Request::ShowSite),
        ["show", "database-mapping", rest @ ..] => only(rest, Request::ShowDatabaseMapping),
        ["show", "dynamic-eid", rest @ ..] => only(rest, Request::ShowDynamicEid),
        ["show", "neighbors" | "neighbours", rest @ ..] => only(rest, Request::ShowNeighbors),
        ["show", "stats" | "statistics", rest @ ..] => only(rest, Request::ShowStats),
        ["show", "ipsec", rest @ ..] => only(rest, Request::ShowIpsec),
        ["clear", "map-cache", rest @ ..] => Ok(Request::ClearMapCache {
            filter: filter(rest)?,
        }),
        ["reload", rest @ ..] => only(rest, Request::Reload),
        [] => Err(format!("no command; expected one of: {COMMANDS}")),
        _ => Err(format!(
            "unknown command {:?}; expected one of: {COMMANDS}",
            words.join(" ")
        )),
    }
}

/// The control core's side: the socket and the connections being served.
pub struct Server {
    served: Served<UnixListener>,
    path: PathBuf,
}

/// Why the socket cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("control.socket {path}: another process answers there (another pxtr?); give each instance its own control.socket")]
    InUse { path: String },
    #[error("control.socket {path}: a file that is not a socket is there; pxtr does not replace it (wrong path?)")]
    NotASocket { path: String },
    #[error("control.socket {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Server {
    /// Listens on `path`: makes its directory, replaces a stale socket file (nobody answering),
    /// refuses one a live process answers on. The socket is for root and the owning group.
    pub fn bind(path: &Path) -> Result<Server, ServerError> {
        let io = |source| ServerError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(ServerError::NotASocket {
                    path: path.display().to_string(),
                });
            }
            if UnixStream::connect(path).is_ok() {
                return Err(ServerError::InUse {
                    path: path.display().to_string(),
                });
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
        Ok(Server {
            served: Served::new(
                listener,
                Framing {
                    end: b"\n",
                    max: MAX_REQUEST,
                },
            ),
            path: path.to_path_buf(),
        })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Requests answered, and connections dropped (timeout, too long, broken).
    pub fn counts(&self) -> (u64, u64) {
        (self.served.answered, self.served.dropped)
    }

    /// One pass: accepts, reads requests, answers complete ones with `answer`, writes what the
    /// sockets take. Returns whether anything happened.
    pub fn poll(&mut self, mut answer: impl FnMut(&Request) -> Result<Value, String>) -> bool {
        self.served.poll(|line| {
            let doc = match std::str::from_utf8(line)
                .map_err(|_| "the request is not UTF-8".to_string())
                .and_then(parse)
                .and_then(|r| answer(&r))
            {
                Ok(data) => json!({ "ok": true, "data": data }),
                Err(error) => json!({ "ok": false, "error": error }),
            };
            let mut bytes = serde_json::to_vec(&doc).unwrap_or_default();
            bytes.push(b'\n');
            bytes
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The client: sends `words` to the appliance on `socket` and returns its answer's data, or
/// the error it gave (or why it could not be asked).
pub fn ask(socket: &Path, words: &[String]) -> Result<Value, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot reach pxtr on {}: {e} (is `pxtr run` up, with this control.socket?)",
            socket.display()
        )
    })?;
    let timeout = Some(Duration::from_secs(10));
    let _ = s.set_read_timeout(timeout);
    let _ = s.set_write_timeout(timeout);
    let line = format!("{}\n", words.join(" "));
    s.write_all(line.as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the answer is not JSON ({e}): {}", text.trim()))?;
    if doc["ok"] == json!(true) {
        Ok(doc["data"].clone())
    } else {
        Err(doc["error"]
            .as_str()
            .unwrap_or("the appliance refused the request")
            .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!(
            parse("show map-cache"),
            Ok(Request::ShowMapCache { filter: None })
        );
        assert_eq!(
            parse(" show  map-cache 10.1.1.77/24 "),
            Ok(Request::ShowMapCache {
                filter: Some("10.1.1.0/24".parse().unwrap())
            })
        );
        assert_eq!(
            parse("clear map-cache 2001:db8::1"),
            Ok(Request::ClearMapCache {
                filter: Some("2001:db8::1/128".parse().unwrap())
            })
        );
        assert_eq!(parse("show neighbours"), Ok(Request::ShowNeighbors));
        assert_eq!(parse("show stats"), Ok(Request::ShowStats));
        assert_eq!(parse("reload"), Ok(Request::Reload));
        assert!(parse("reload now").unwrap_err().contains("unexpected"));
        let e = parse("show map-cache banana").unwrap_err();
        assert!(e.contains("banana") && e.contains("prefix"), "{e}");
        let e = parse("show ipsec now").unwrap_err();
        assert!(e.contains("unexpected \"now\""), "{e}");
        let e = parse("reboot").unwrap_err();
        assert!(
            e.contains("unknown command") && e.contains("show map-cache"),
            "{e}"
        );
        assert!(parse("").unwrap_err().contains("no command"));
    }

    #[test]
    fn the_server_answers_without_blocking_and_drops_what_misbehaves() {
        let dir = std::env::temp_dir().join(format!("pxtr-ctl-test-{}", std::process::id()));
        let path = dir.join("sub/ctl.sock");
        let mut server = Server::bind(&path).unwrap();
        // A second instance on the same socket is refused while the first answers.
        assert!(matches!(
            Server::bind(&path),
            Err(ServerError::InUse { .. })
        ));
        let client = {
            let path = path.clone();
            std::thread::spawn(move || ask(&path, &["show".into(), "stats".into()]))
        };
        let bad = {
            let path = path.clone();
            std::thread::spawn(move || ask(&path, &["show".into(), "nothing".into()]))
        };
        let mut asked = Vec::new();
        // Served from this thread, as the control loop does, until both got their answer.
        while !(client.is_finished() && bad.is_finished()) {
            server.poll(|r| {
                asked.push(r.clone());
                Ok(json!({ "workers": [] }))
            });
            std::thread::yield_now();
        }
        assert_eq!(client.join().unwrap(), Ok(json!({ "workers": [] })));
        let err = bad.join().unwrap().unwrap_err();
        assert!(err.contains("unknown command"), "{err}");
        assert_eq!(asked, vec![Request::ShowStats]);
        assert_eq!(server.counts(), (2, 0));
        // A client that never finishes its line does not hold the server: it is dropped at
        // its deadline (checked here by moving the deadline).
        let _silent = UnixStream::connect(&path).unwrap();
        server.poll(|_| Ok(Value::Null));
        assert_eq!(server.served.open(), 1);
        server.served.expire_all();
        server.poll(|_| Ok(Value::Null));
        assert_eq!(server.served.open(), 0);
        assert_eq!(server.counts(), (2, 1));
        // A file that is not a socket is never removed.
        let plain = dir.join("not-a-socket");
        std::fs::write(&plain, "keep me").unwrap();
        assert!(matches!(
            Server::bind(&plain),
            Err(ServerError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me");
        // A stale socket file (no one answering) is replaced.
        drop(server);
        std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(path.exists());
        let again = Server::bind(&path);
        assert!(again.is_ok(), "{:?}", again.err());
        drop(again);
        assert!(!path.exists(), "the socket file goes with the server");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
