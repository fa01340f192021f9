//! Any outer packet reaching the ETR: decapsulation never panics nor reads out of bounds, and
//! what it accepts points inside the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxtr::wire::encap;

fuzz_target!(|data: &[u8]| {
    let mut pkt = data.to_vec();
    if let Ok(d) = encap::decapsulate(&mut pkt, true) {
        assert!(d.inner_offset + d.inner_len <= pkt.len());
    }
});
