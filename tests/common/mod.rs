//! Helpers shared by integration tests.
#![allow(dead_code)]

pub mod appliance;
pub mod charon;
pub mod packet;
pub mod pcap;
pub mod rawsock;
