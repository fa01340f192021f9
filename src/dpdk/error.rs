use std::ffi::CStr;

use dpdk_sys as sys;

/// Errors of the DPDK layer. Each carries the DPDK call and DPDK's own text for the error.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// A DPDK call failed; `errno` is rte_errno or the negated return value.
    #[error("{call} failed: {message} (errno {errno})")]
    Call {
        call: &'static str,
        errno: i32,
        message: String,
    },
    /// `rte_eal_init` may run once per process.
    #[error(
        "the DPDK EAL was already initialised in this process; it can be initialised only once"
    )]
    EalAlreadyInitialised,
    /// A caller passed something DPDK would reject or misbehave on.
    #[error("{0}")]
    InvalidArgument(String),
    /// No DPDK port has that name, and probing the device string did not create one.
    #[error("no DPDK port for device {device:?}; ports present: [{present}]")]
    NoSuchPort { device: String, present: String },
    /// A worker lcore cannot run the job.
    #[error("lcore {lcore}: {reason}")]
    Lcore { lcore: u32, reason: String },
    /// The function run on a worker lcore panicked.
    #[error("the job on lcore {lcore} panicked: {message}")]
    LcorePanicked { lcore: u32, message: String },
}

/// DPDK's message for an errno value (rte_strerror knows DPDK's own codes too).
pub(crate) fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string,
    // valid until the next call on this thread; we copy it out immediately.
    unsafe { CStr::from_ptr(sys::rte_strerror(errno)) }
        .to_string_lossy()
        .into_owned()
}

/// The calling thread's rte_errno.
pub(crate) fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local integer through the shim; no preconditions.
    unsafe { sys::pxtr_rte_errno() }
}

/// An error for a call that reported failure through rte_errno.
pub(crate) fn from_rte_errno(call: &'static str) -> DpdkError {
    let errno = rte_errno();
    DpdkError::Call {
        call,
        errno,
        message: strerror(errno),
    }
}

/// Checks a return value of the "0 or -errno" convention used by ethdev.
pub(crate) fn check(call: &'static str, ret: i32) -> Result<i32, DpdkError> {
    if ret < 0 {
        Err(DpdkError::Call {
            call,
            errno: -ret,
            message: strerror(-ret),
        })
    } else {
        Ok(ret)
    }
}
