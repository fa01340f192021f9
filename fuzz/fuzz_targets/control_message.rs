//! Any bytes on UDP 4342: parsing never panics, and what parses re-emits to something that
//! parses to the same message (and, for an ECM, so does its inner message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxtr::wire::control::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let bytes = m.to_vec().expect("a parsed message re-emits");
        assert_eq!(Message::parse(&bytes).expect("re-emitted bytes parse"), m);
        if let Message::Ecm(e) = &m {
            let _ = e.message();
        }
    }
});
