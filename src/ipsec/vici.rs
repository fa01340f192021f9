//! strongSwan's VICI protocol (the Versatile IKE Control Interface that `swanctl` speaks):
//! the message encoding and the packet layer, and a blocking client over its Unix socket.
//!
//! A packet is a 32-bit big-endian length, then a type byte and, per type, a name (one length
//! byte and the bytes) and a message. A message is a sequence of elements: section start (name)
//! and end, key-value (name, 16-bit length, value), list start (name), list item (16-bit length,
//! value) and list end. Decoding never panics: bad input is an [`Error`].

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Element types of a message.
const SECTION_START: u8 = 1;
const SECTION_END: u8 = 2;
const KEY_VALUE: u8 = 3;
const LIST_START: u8 = 4;
const LIST_ITEM: u8 = 5;
const LIST_END: u8 = 6;

/// Packet types.
const CMD_REQUEST: u8 = 0;
const CMD_RESPONSE: u8 = 1;
const CMD_UNKNOWN: u8 = 2;
const EVENT_REGISTER: u8 = 3;
const EVENT_UNREGISTER: u8 = 4;
const EVENT_CONFIRM: u8 = 5;
const EVENT_UNKNOWN: u8 = 6;
const EVENT: u8 = 7;

/// Largest packet accepted (charon's own limit is 512 KiB).
pub const MAX_PACKET: usize = 512 * 1024;
/// Deepest nesting of sections accepted.
const MAX_DEPTH: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("VICI message truncated ({0})")]
    Truncated(&'static str),
    #[error("VICI element type {0} is unknown")]
    UnknownElement(u8),
    #[error("VICI packet type {0} is unknown")]
    UnknownPacket(u8),
    #[error("VICI {0} does not fit its length field")]
    TooLong(&'static str),
    #[error("VICI message malformed: {0}")]
    Malformed(&'static str),
    #[error("VICI socket: {0}")]
    Io(String),
    #[error("charon does not know the command {0:?} (is the vici plugin loaded?)")]
    UnknownCommand(String),
    #[error("charon does not know the event {0:?}")]
    UnknownEvent(String),
    #[error("{command}: charon says {message}")]
    Failed { command: String, message: String },
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// A value in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Section(Section),
}

/// A message, or a section of one: named values in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    pub entries: Vec<(String, Value)>,
}

impl Section {
    pub fn new() -> Self {
        Section::default()
    }

    /// Adds a key-value.
    pub fn kv(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        self.entries
            .push((key.into(), Value::Str(value.as_ref().to_vec())));
        self
    }

    /// Adds a list.
    pub fn list<I, V>(mut self, key: &str, items: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        let items = items.into_iter().map(|v| v.as_ref().to_vec()).collect();
        self.entries.push((key.into(), Value::List(items)));
        self
    }

    /// Adds a section.
    pub fn section(mut self, key: &str, s: Section) -> Self {
        self.entries.push((key.into(), Value::Section(s)));
        self
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A key-value as text.
    pub fn str(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::Str(v) => Some(String::from_utf8_lossy(v).into_owned()),
            _ => None,
        }
    }

    pub fn sub(&self, key: &str) -> Option<&Section> {
        match self.get(key)? {
            Value::Section(s) => Some(s),
            _ => None,
        }
    }

    /// Appends the encoding of the section's entries.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        for (k, v) in &self.entries {
            match v {
                Value::Str(s) => {
                    out.push(KEY_VALUE);
                    name(out, k)?;
                    value(out, s)?;
                }
                Value::List(items) => {
                    out.push(LIST_START);
                    name(out, k)?;
                    for i in items {
                        out.push(LIST_ITEM);
                        value(out, i)?;
                    }
                    out.push(LIST_END);
                }
                Value::Section(s) => {
                    out.push(SECTION_START);
                    name(out, k)?;
                    s.encode(out)?;
                    out.push(SECTION_END);
                }
            }
        }
        Ok(())
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Section, Error> {
        let mut r = Reader { b: bytes, at: 0 };
        let s = decode_section(&mut r, 0)?;
        if r.at != bytes.len() {
            return Err(Error::Malformed("section end outside a section"));
        }
        Ok(s)
    }
}

fn name(out: &mut Vec<u8>, n: &str) -> Result<(), Error> {
    let len = u8::try_from(n.len()).map_err(|_| Error::TooLong("name"))?;
    out.push(len);
    out.extend_from_slice(n.as_bytes());
    Ok(())
}

fn value(out: &mut Vec<u8>, v: &[u8]) -> Result<(), Error> {
    let len = u16::try_from(v.len()).map_err(|_| Error::TooLong("value"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(v);
    Ok(())
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self, what: &'static str) -> Result<u8, Error> {
        let v = *self.b.get(self.at).ok_or(Error::Truncated(what))?;
        self.at += 1;
        Ok(v)
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&[u8], Error> {
        let end = self.at.checked_add(n).ok_or(Error::Truncated(what))?;
        let v = self.b.get(self.at..end).ok_or(Error::Truncated(what))?;
        self.at = end;
        Ok(v)
    }

    fn name(&mut self) -> Result<String, Error> {
        let n = usize::from(self.byte("name length")?);
        Ok(String::from_utf8_lossy(self.bytes(n, "name")?).into_owned())
    }

    fn value(&mut self) -> Result<Vec<u8>, Error> {
        let b = self.bytes(2, "value length")?;
        let n = usize::from(u16::from_be_bytes([b[0], b[1]]));
        Ok(self.bytes(n, "value")?.to_vec())
    }
}

/// Decodes entries until the end of the input (depth 0) or a section end.
fn decode_section(r: &mut Reader<'_>, depth: usize) -> Result<Section, Error> {
    let mut s = Section::new();
    while r.at < r.b.len() {
        match r.byte("element type")? {
            SECTION_START => {
                if depth + 1 >= MAX_DEPTH {
                    return Err(Error::Malformed("sections nested too deep"));
                }
                let k = r.name()?;
                let sub = decode_section(r, depth + 1)?;
                s.entries.push((k, Value::Section(sub)));
            }
            SECTION_END => {
                if depth == 0 {
                    return Err(Error::Malformed("section end outside a section"));
                }
                return Ok(s);
            }
            KEY_VALUE => {
                let k = r.name()?;
                let v = r.value()?;
                s.entries.push((k, Value::Str(v)));
            }
            LIST_START => {
                let k = r.name()?;
                let mut items = Vec::new();
                loop {
                    match r.byte("list element")? {
                        LIST_ITEM => items.push(r.value()?),
                        LIST_END => break,
                        _ => return Err(Error::Malformed("list holds something else than items")),
                    }
                }
                s.entries.push((k, Value::List(items)));
            }
            t => return Err(Error::UnknownElement(t)),
        }
    }
    if depth > 0 {
        return Err(Error::Truncated("section end"));
    }
    Ok(s)
}

/// A VICI packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    CmdRequest { command: String, message: Section },
    CmdResponse(Section),
    CmdUnknown,
    EventRegister(String),
    EventUnregister(String),
    EventConfirm,
    EventUnknown,
    Event { name: String, message: Section },
}

impl Packet {
    /// The packet with its 32-bit length in front.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut p = vec![0u8; 4];
        match self {
            Packet::CmdRequest { command, message } => {
                p.push(CMD_REQUEST);
                name(&mut p, command)?;
                message.encode(&mut p)?;
            }
            Packet::CmdResponse(m) => {
                p.push(CMD_RESPONSE);
                m.encode(&mut p)?;
            }
            Packet::CmdUnknown => p.push(CMD_UNKNOWN),
            Packet::EventRegister(n) => {
                p.push(EVENT_REGISTER);
                name(&mut p, n)?;
            }
            Packet::EventUnregister(n) => {
                p.push(EVENT_UNREGISTER);
                name(&mut p, n)?;
            }
            Packet::EventConfirm => p.push(EVENT_CONFIRM),
            Packet::EventUnknown => p.push(EVENT_UNKNOWN),
            Packet::Event { name: n, message } => {
                p.push(EVENT);
                name(&mut p, n)?;
                message.encode(&mut p)?;
            }
        }
        let len = p.len() - 4;
        if len > MAX_PACKET {
            return Err(Error::TooLong("packet"));
        }
        p[..4].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(p)
    }

    /// Decodes a packet's body (what follows the length).
    pub fn decode(body: &[u8]) -> Result<Packet, Error> {
        let mut r = Reader { b: body, at: 0 };
        let t = r.byte("packet type")?;
        let rest = |r: &Reader<'_>| Section::decode(&r.b[r.at..]);
        Ok(match t {
            CMD_REQUEST => {
                let command = r.name()?;
                Packet::CmdRequest {
                    command,
                    message: rest(&r)?,
                }
            }
            CMD_RESPONSE => Packet::CmdResponse(rest(&r)?),
            CMD_UNKNOWN => Packet::CmdUnknown,
            EVENT_REGISTER => Packet::EventRegister(r.name()?),
            EVENT_UNREGISTER => Packet::EventUnregister(r.name()?),
            EVENT_CONFIRM => Packet::EventConfirm,
            EVENT_UNKNOWN => Packet::EventUnknown,
            EVENT => {
                let name = r.name()?;
                Packet::Event {
                    name,
                    message: rest(&r)?,
                }
            }
            t => return Err(Error::UnknownPacket(t)),
        })
    }
}

/// A blocking VICI client: commands and their responses, events queued as they come.
pub struct Client {
    sock: UnixStream,
    events: std::collections::VecDeque<(String, Section)>,
}

impl Client {
    /// Connects to charon's VICI socket (e.g. /var/run/charon.vici).
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, Error> {
        let sock =
            UnixStream::connect(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        sock.set_read_timeout(Some(timeout))?;
        sock.set_write_timeout(Some(timeout))?;
        Ok(Client {
            sock,
            events: Default::default(),
        })
    }

    fn send(&mut self, p: &Packet) -> Result<(), Error> {
        self.sock.write_all(&p.encode()?)?;
        Ok(())
    }

    /// The next packet's body; an `io::Error` of kind WouldBlock/TimedOut when none came
    /// within the timeout.
    fn recv_body(&mut self) -> std::io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.sock.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_PACKET {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "VICI packet over 512 KiB",
            ));
        }
        let mut body = vec![0u8; len];
        self.sock.read_exact(&mut body)?;
        Ok(body)
    }

    fn recv(&mut self) -> Result<Packet, Error> {
        Packet::decode(&self.recv_body()?)
    }

    /// The next packet that is not an event (events are queued for [`Client::next_event`]).
    fn reply(&mut self) -> Result<Packet, Error> {
        loop {
            match self.recv()? {
                Packet::Event { name, message } => self.events.push_back((name, message)),
                p => return Ok(p),
            }
        }
    }

    /// Runs `command` with `message`; its response, or [`Error::Failed`] when the response
    /// says `success = no`.
    pub fn call(&mut self, command: &str, message: Section) -> Result<Section, Error> {
        self.send(&Packet::CmdRequest {
            command: command.into(),
            message,
        })?;
        match self.reply()? {
            Packet::CmdResponse(r) => {
                if r.str("success").as_deref() == Some("no") {
                    return Err(Error::Failed {
                        command: command.into(),
                        message: r.str("errmsg").unwrap_or_else(|| "no reason given".into()),
                    });
                }
                Ok(r)
            }
            Packet::CmdUnknown => Err(Error::UnknownCommand(command.into())),
            _ => Err(Error::Malformed("unexpected answer to a command")),
        }
    }

    /// Asks for events named `event`.
    pub fn register(&mut self, event: &str) -> Result<(), Error> {
        self.send(&Packet::EventRegister(event.into()))?;
        match self.reply()? {
            Packet::EventConfirm => Ok(()),
            Packet::EventUnknown => Err(Error::UnknownEvent(event.into())),
            _ => Err(Error::Malformed(
                "unexpected answer to an event registration",
            )),
        }
    }

    /// Stops the events named `event`.
    pub fn unregister(&mut self, event: &str) -> Result<(), Error> {
        self.send(&Packet::EventUnregister(event.into()))?;
        match self.reply()? {
            Packet::EventConfirm => Ok(()),
            Packet::EventUnknown => Err(Error::UnknownEvent(event.into())),
            _ => Err(Error::Malformed(
                "unexpected answer to an event unregistration",
            )),
        }
    }

    /// The next event, waiting up to the socket's timeout; `None` when none came.
    pub fn next_event(&mut self) -> Result<Option<(String, Section)>, Error> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        let body = match self.recv_body() {
            Ok(b) => b,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e.into()),
        };
        match Packet::decode(&body)? {
            Packet::Event { name, message } => Ok(Some((name, message))),
            _ => Err(Error::Malformed("a reply without a request")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_encodes_to_the_documented_layout() {
        // A load-shared request for one IKE key, byte for byte as strongSwan's VICI
        // documentation lays packets and elements out.
        let p = Packet::CmdRequest {
            command: "load-shared".into(),
            message: Section::new()
                .kv("type", "IKE")
                .kv("data", "k")
                .list("owners", ["a"]),
        };
        let want: Vec<u8> = [
            &[0, 0, 0, 46][..],
            &[CMD_REQUEST, 11],
            b"load-shared",
            &[KEY_VALUE, 4],
            b"type",
            &[0, 3],
            b"IKE",
            &[KEY_VALUE, 4],
            b"data",
            &[0, 1],
            b"k",
            &[LIST_START, 6],
            b"owners",
            &[LIST_ITEM, 0, 1],
            b"a",
            &[LIST_END],
        ]
        .concat();
        assert_eq!(p.encode().unwrap(), want);
        assert_eq!(Packet::decode(&want[4..]).unwrap(), p);
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert_eq!(
            Section::decode(&[SECTION_END]),
            Err(Error::Malformed("section end outside a section"))
        );
        assert_eq!(
            Section::decode(&[SECTION_START, 1, b'a']),
            Err(Error::Truncated("section end"))
        );
        assert_eq!(Section::decode(&[9]), Err(Error::UnknownElement(9)));
        assert_eq!(
            Section::decode(&[KEY_VALUE, 1, b'a', 0, 5, b'x']),
            Err(Error::Truncated("value"))
        );
        assert_eq!(
            Section::decode(&[LIST_START, 1, b'a', KEY_VALUE]),
            Err(Error::Malformed("list holds something else than items"))
        );
        let deep: Vec<u8> = (0..MAX_DEPTH)
            .flat_map(|_| [SECTION_START, 1, b's'])
            .collect();
        assert!(Section::decode(&deep).is_err());
        assert_eq!(Packet::decode(&[42]), Err(Error::UnknownPacket(42)));
        assert!(Section::new()
            .kv(&"k".repeat(256), "v")
            .encode(&mut Vec::new())
            .is_err());
        assert!(Section::new()
            .kv("k", vec![0u8; 70_000])
            .encode(&mut Vec::new())
            .is_err());
    }

    fn section() -> impl Strategy<Value = Section> {
        let leaf = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Str),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..4)
                .prop_map(Value::List),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            proptest::collection::vec(("[a-z_]{0,12}", inner), 0..4)
                .prop_map(|entries| Value::Section(Section { entries }))
        });
        proptest::collection::vec(("[a-z_-]{0,12}", value), 0..5)
            .prop_map(|entries| Section { entries })
    }

    proptest! {
        #[test]
        fn messages_round_trip(s in section(), name in "[a-z-]{1,20}") {
            let p = Packet::Event { name, message: s };
            let bytes = p.encode().unwrap();
            prop_assert_eq!(u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len() - 4);
            prop_assert_eq!(Packet::decode(&bytes[4..]).unwrap(), p);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Packet::decode(&bytes);
            let _ = Section::decode(&bytes);
        }
    }
}
