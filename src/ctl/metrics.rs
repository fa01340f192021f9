//! The Prometheus metrics endpoint: the text exposition format (version 0.0.4) over a minimal
//! HTTP/1.x server (`GET /metrics`), served by the control core without blocking it
//! ([`super::serve`]).

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};

use super::serve::{Framing, Served};

/// Longest request head taken.
const MAX_HEAD: usize = 8192;

/// Metric families being written: each family's HELP and TYPE once, then all its samples
/// together (the format wants a family in one group, whatever order samples are added in).
#[derive(Default)]
pub struct Exposition {
    /// (name, HELP and TYPE lines, sample lines), in the order families were started.
    families: Vec<(&'static str, String, String)>,
}

/// A label value escaped as the format wants (backslash, double quote, newline).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

impl Exposition {
    /// Starts family `name` (once; later calls with the same name only add samples).
    pub fn family(&mut self, name: &'static str, kind: &str, help: &str) -> &mut Self {
        if !self.families.iter().any(|(n, _, _)| *n == name) {
            self.families.push((
                name,
                format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"),
                String::new(),
            ));
        }
        self
    }

    /// One sample of `name` (a started family's name, or a summary's `_sum`/`_count`) with
    /// `labels`; it goes with its family's other samples.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let base = name
            .strip_suffix("_sum")
            .or_else(|| name.strip_suffix("_count"))
            .unwrap_or(name);
        let at = self
            .families
            .iter()
            .position(|(n, _, _)| *n == name)
            .or_else(|| self.families.iter().position(|(n, _, _)| *n == base));
        debug_assert!(at.is_some(), "sample {name} of no family");
        let Some((_, _, out)) = at.and_then(|i| self.families.get_mut(i)) else {
            return self;
        };
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{k}=\"{}\"", escape(v));
            }
            out.push('}');
        }
        if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = writeln!(out, " {}", value as i64);
        } else {
            let _ = writeln!(out, " {value}");
        }
        self
    }

    /// The text.
    pub fn finish(self) -> String {
        self.families
            .into_iter()
            .flat_map(|(_, head, samples)| [head, samples])
            .collect()
    }
}

/// The metrics endpoint's listener and connections.
pub struct MetricsServer {
    served: Served<TcpListener>,
    pub addr: SocketAddr,
}

impl MetricsServer {
    /// Listens on `addr` (port 0: any free port; [`MetricsServer::addr`] says which).
    pub fn bind(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let l = TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        let addr = l.local_addr()?;
        Ok(MetricsServer {
            served: Served::new(
                l,
                Framing {
                    end: b"\r\n\r\n",
                    max: MAX_HEAD,
                },
            ),
            addr,
        })
    }

    /// Requests answered and connections dropped.
    pub fn counts(&self) -> (u64, u64) {
        (self.served.answered, self.served.dropped)
    }

    /// One pass; `metrics` writes the exposition when `GET /metrics` asks for it.
    pub fn poll(&mut self, mut metrics: impl FnMut() -> String) -> bool {
        self.served.poll(|head| answer(head, &mut metrics))
    }
}

/// The HTTP answer to a request head.
fn answer(head: &[u8], metrics: &mut impl FnMut() -> String) -> Vec<u8> {
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
        .unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics(),
        ),
        ("GET", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "pxtr: metrics at /metrics\n".to_string(),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found; metrics are at /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_string(),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn families_once_samples_escaped() {
        let mut e = Exposition::default();
        e.family("pxtr_x_total", "counter", "Things.").sample(
            "pxtr_x_total",
            &[("reason", "a\"b\\c\nd")],
            3.0,
        );
        e.family("pxtr_x_total", "counter", "Things.").sample(
            "pxtr_x_total",
            &[("reason", "e")],
            0.5,
        );
        assert_eq!(
            e.finish(),
            "# HELP pxtr_x_total Things.\n# TYPE pxtr_x_total counter\n\
             pxtr_x_total{reason=\"a\\\"b\\\\c\\nd\"} 3\npxtr_x_total{reason=\"e\"} 0.5\n"
        );
    }

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn http_get_metrics_and_the_rest() {
        let mut m = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = m.addr;
        let asks = [
            "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /nothing HTTP/1.1\r\n\r\n",
            "POST /metrics HTTP/1.1\r\n\r\n",
        ];
        let clients: Vec<_> = asks
            .iter()
            .map(|a| {
                let a = a.to_string();
                std::thread::spawn(move || get(addr, &a))
            })
            .collect();
        while !clients.iter().all(|c| c.is_finished()) {
            m.poll(|| "pxtr_up 1\n".to_string());
            std::thread::yield_now();
        }
        let got: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        assert!(got[0].starts_with("HTTP/1.1 200 OK\r\n"), "{}", got[0]);
        assert!(got[0].contains("version=0.0.4"), "{}", got[0]);
        assert!(got[0].ends_with("\r\n\r\npxtr_up 1\n"), "{}", got[0]);
        assert!(got[0].contains("Content-Length: 10\r\n"), "{}", got[0]);
        assert!(got[1].starts_with("HTTP/1.1 404"), "{}", got[1]);
        assert!(got[2].starts_with("HTTP/1.1 405"), "{}", got[2]);
        assert_eq!(m.counts(), (3, 0));
    }
}
