//! LISP control messages (RFC 9301 section 5): parse into owned representations, emit into
//! buffers sized by `buffer_len`.

mod ecm;
mod map_notify;
mod map_register;
mod map_reply;
mod map_request;
mod record;
mod registration;

pub use ecm::{Ecm, EcmInner};
pub use map_notify::{MapNotify, NotifyKind};
pub use map_register::MapRegister;
pub use map_reply::MapReply;
pub use map_request::MapRequest;
pub use record::{Action, EidRecord, Locator, MappingRecord};
pub use registration::{Registration, XtrId};

use super::field::{Reader, Writer};
use super::{Error, Result};

/// Control message types (the first four bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    MapRequest = 1,
    MapReply = 2,
    MapRegister = 3,
    MapNotify = 4,
    MapNotifyAck = 5,
    EncapsulatedControl = 8,
}

impl MessageType {
    /// The type of a control message from its first byte.
    pub fn of(bytes: &[u8]) -> Result<MessageType> {
        let first = *bytes.first().ok_or(Error::Truncated("message type"))?;
        Ok(match first >> 4 {
            1 => MessageType::MapRequest,
            2 => MessageType::MapReply,
            3 => MessageType::MapRegister,
            4 => MessageType::MapNotify,
            5 => MessageType::MapNotifyAck,
            8 => MessageType::EncapsulatedControl,
            t => return Err(Error::UnknownType(t)),
        })
    }
}

/// Any LISP control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    MapRequest(MapRequest),
    MapReply(MapReply),
    MapRegister(MapRegister),
    /// Map-Notify and Map-Notify-Ack (same format, `kind` tells which).
    MapNotify(MapNotify),
    Ecm(Ecm),
}

impl Message {
    /// Parses one control message (the UDP payload on port 4342).
    pub fn parse(bytes: &[u8]) -> Result<Message> {
        Ok(match MessageType::of(bytes)? {
            MessageType::MapRequest => Message::MapRequest(MapRequest::parse(bytes)?),
            MessageType::MapReply => Message::MapReply(MapReply::parse(bytes)?),
            MessageType::MapRegister => Message::MapRegister(MapRegister::parse(bytes)?),
            MessageType::MapNotify | MessageType::MapNotifyAck => {
                Message::MapNotify(MapNotify::parse(bytes)?)
            }
            MessageType::EncapsulatedControl => Message::Ecm(Ecm::parse(bytes)?),
        })
    }

    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::MapRequest(_) => MessageType::MapRequest,
            Message::MapReply(_) => MessageType::MapReply,
            Message::MapRegister(_) => MessageType::MapRegister,
            Message::MapNotify(m) => match m.kind {
                NotifyKind::Notify => MessageType::MapNotify,
                NotifyKind::Ack => MessageType::MapNotifyAck,
            },
            Message::Ecm(_) => MessageType::EncapsulatedControl,
        }
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Message::MapRequest(m) => m.buffer_len(),
            Message::MapReply(m) => m.buffer_len(),
            Message::MapRegister(m) => m.buffer_len(),
            Message::MapNotify(m) => m.buffer_len(),
            Message::Ecm(m) => m.buffer_len(),
        }
    }

    /// Writes the message into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        match self {
            Message::MapRequest(m) => m.emit(buf),
            Message::MapReply(m) => m.emit(buf),
            Message::MapRegister(m) => m.emit(buf),
            Message::MapNotify(m) => m.emit(buf),
            Message::Ecm(m) => m.emit(buf),
        }
    }

    /// The message as a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.buffer_len()];
        let n = self.emit(&mut v)?;
        v.truncate(n);
        Ok(v)
    }
}

/// Reads the 4-byte header common to all messages: (first byte, bytes 1-2, record count).
fn header(r: &mut Reader<'_>) -> Result<(u8, u16, u8)> {
    Ok((r.u8("header")?, r.u16("header")?, r.u8("header")?))
}

fn count(n: usize, what: &'static str) -> Result<u8> {
    u8::try_from(n).map_err(|_| Error::TooLong(what))
}

fn finish(w: &Writer<'_>) -> usize {
    w.position()
}
