//! Any registration message: verification never panics and never accepts a message signed
//! with another key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxtr::wire::auth;

fuzz_target!(|data: &[u8]| {
    let _ = auth::verify(data, b"fuzz-key");
    let mut m = data.to_vec();
    if auth::sign(&mut m, b"fuzz-key").is_ok() {
        assert!(auth::verify(&m, b"fuzz-key").is_ok());
        assert!(auth::verify(&m, b"other-key").is_err());
    }
});
