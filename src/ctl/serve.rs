//! One request, one answer, never blocking: the connection handling shared by the `pxtr ctl`
//! socket and the metrics endpoint, both served by the control core between its other work.
//!
//! Each pass accepts what is waiting (up to [`MAX_CONNS`] open), reads what each connection
//! sent, answers once the request is complete (as the [`Framing`] says), writes what the socket
//! takes, and closes after the answer. A connection that does not finish within
//! [`CONN_TIMEOUT`], sends too much or breaks is dropped and counted.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

/// A connection that has not sent its request or taken its answer by then is dropped.
pub const CONN_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNS: usize = 16;
/// Answers built per pass at most: however many clients ask at once, the control core gets
/// back to its own work between them (the others are answered on the next passes).
pub const ANSWERS_PER_PASS: usize = 2;

/// A non-blocking listener (Unix or TCP).
pub trait Listen {
    type Stream: Read + Write;
    /// The next waiting connection, set non-blocking; `None` when there is none.
    fn next(&self) -> Option<std::io::Result<Self::Stream>>;
}

fn nonblocking<S>(
    r: std::io::Result<(S, impl Sized)>,
    set: impl Fn(&S) -> std::io::Result<()>,
) -> Option<std::io::Result<S>> {
    match r {
        Ok((s, _)) => Some(set(&s).map(|()| s)),
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(e) => Some(Err(e)),
    }
}

impl Listen for std::os::unix::net::UnixListener {
    type Stream = std::os::unix::net::UnixStream;
    fn next(&self) -> Option<std::io::Result<Self::Stream>> {
        nonblocking(self.accept(), |s| s.set_nonblocking(true))
    }
}

impl Listen for std::net::TcpListener {
    type Stream = std::net::TcpStream;
    fn next(&self) -> Option<std::io::Result<Self::Stream>> {
        nonblocking(self.accept(), |s| s.set_nonblocking(true))
    }
}

/// Where a request ends.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// The bytes that end it (a newline; an HTTP header's blank line).
    pub end: &'static [u8],
    /// Longest request.
    pub max: usize,
}

struct Conn<S> {
    stream: S,
    request: Vec<u8>,
    answer: Option<(Vec<u8>, usize)>,
    deadline: Instant,
}

/// Connections being served on `listener`.
pub struct Served<L: Listen> {
    pub listener: L,
    framing: Framing,
    conns: Vec<Conn<L::Stream>>,
    /// Requests answered, and connections dropped (timeout, too long, broken).
    pub answered: u64,
    pub dropped: u64,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl<L: Listen> Served<L> {
    pub fn new(listener: L, framing: Framing) -> Self {
        Served {
            listener,
            framing,
            conns: Vec::new(),
            answered: 0,
            dropped: 0,
        }
    }

    /// Connections open.
    pub fn open(&self) -> usize {
        self.conns.len()
    }

    /// One pass; `answer` turns a complete request (without its end bytes) into the answer's
    /// bytes. Returns whether anything happened.
    pub fn poll(&mut self, mut answer: impl FnMut(&[u8]) -> Vec<u8>) -> bool {
        let mut busy = false;
        let now = Instant::now();
        while self.conns.len() < MAX_CONNS {
            match self.listener.next() {
                None => break,
                Some(Ok(stream)) => {
                    busy = true;
                    self.conns.push(Conn {
                        stream,
                        request: Vec::new(),
                        answer: None,
                        deadline: now + CONN_TIMEOUT,
                    });
                }
                Some(Err(_)) => {
                    self.dropped += 1;
                    break;
                }
            }
        }
        let mut i = 0;
        let mut budget = ANSWERS_PER_PASS;
        while i < self.conns.len() {
            let c = &mut self.conns[i];
            let outcome = step(c, self.framing, &mut answer, &mut budget, &mut busy);
            match outcome {
                Step::Done => {
                    if c.answer.is_some() {
                        self.answered += 1;
                    }
                    self.conns.swap_remove(i);
                }
                Step::Broken => {
                    self.dropped += 1;
                    self.conns.swap_remove(i);
                }
                Step::More if now >= c.deadline => {
                    self.dropped += 1;
                    self.conns.swap_remove(i);
                }
                Step::More => i += 1,
            }
        }
        busy
    }

    /// Makes every open connection's deadline now (tests of the timeout).
    #[cfg(test)]
    pub fn expire_all(&mut self) {
        for c in &mut self.conns {
            c.deadline = Instant::now();
        }
    }
}

enum Step {
    More,
    Done,
    Broken,
}

fn step<S: Read + Write>(
    c: &mut Conn<S>,
    framing: Framing,
    answer: &mut impl FnMut(&[u8]) -> Vec<u8>,
    budget: &mut usize,
    busy: &mut bool,
) -> Step {
    if c.answer.is_none() {
        let mut buf = [0u8; 2048];
        let mut eof = false;
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    *busy = true;
                    c.request.extend_from_slice(&buf[..n]);
                    if c.request.len() > framing.max {
                        return Step::Broken;
                    }
                    if find(&c.request, framing.end).is_some() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Step::Broken,
            }
        }
        let Some(end) = find(&c.request, framing.end) else {
            // Gone before asking anything (e.g. a probe that the socket is alive): done;
            // gone in the middle of a request: dropped.
            return match (eof, c.request.is_empty()) {
                (true, true) => Step::Done,
                (true, false) => Step::Broken,
                (false, _) => Step::More,
            };
        };
        if *budget == 0 {
            return Step::More;
        }
        *budget -= 1;
        c.answer = Some((answer(&c.request[..end]), 0));
    }
    let Some((bytes, sent)) = c.answer.as_mut() else {
        return Step::More;
    };
    while *sent < bytes.len() {
        match c.stream.write(&bytes[*sent..]) {
            Ok(0) => return Step::Broken,
            Ok(n) => {
                *busy = true;
                *sent += n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::More,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Step::Broken,
        }
    }
    Step::Done
}
