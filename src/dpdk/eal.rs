use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::error::{from_rte_errno, DpdkError};

const EAL_NEVER: u8 = 0;
const EAL_TAKEN: u8 = 1;

static EAL_STATE: AtomicU8 = AtomicU8::new(EAL_NEVER);

/// What EAL came up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalInfo {
    /// DPDK's version string, e.g. "DPDK 22.11.11".
    pub version: String,
    /// The lcore running `main` (the control core).
    pub main_lcore: u32,
    /// Enabled lcores other than the main one, ascending.
    pub worker_lcores: Vec<u32>,
    /// NUMA sockets EAL found.
    pub socket_count: u32,
    /// TSC frequency EAL measured.
    pub tsc_hz: u64,
}

/// A handle on the initialised DPDK environment. Clones are cheap; EAL is cleaned up
/// (`rte_eal_cleanup`) when the last one is dropped, which pools, ports and rings hold.
#[derive(Clone)]
pub struct Eal {
    inner: Arc<EalInner>,
}

struct EalInner {
    info: EalInfo,
}

impl Eal {
    /// Initialises EAL with `args` (without a program name; "pxtr" is put first).
    ///
    /// DPDK allows this once per process: a second call, or a call after a failed one, returns
    /// [`DpdkError::EalAlreadyInitialised`]. Errors carry rte_errno's text.
    pub fn init<I, S>(args: I) -> Result<Eal, DpdkError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut owned = vec![CString::new("pxtr").expect("static string has no NUL")];
        for a in args {
            let a = a.as_ref();
            owned.push(CString::new(a).map_err(|_| {
                DpdkError::InvalidArgument(format!("EAL argument {a:?} contains a NUL byte"))
            })?);
        }
        if EAL_STATE
            .compare_exchange(EAL_NEVER, EAL_TAKEN, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(DpdkError::EalAlreadyInitialised);
        }
        // EAL may keep pointers into argv for the life of the process: leak the strings (once).
        let owned: &'static mut [CString] = Vec::leak(owned);
        let argv: &'static mut [*mut c_char] = Vec::leak(
            owned
                .iter()
                .map(|s| s.as_ptr() as *mut c_char)
                .collect::<Vec<_>>(),
        );
        let argc = i32::try_from(argv.len())
            .map_err(|_| DpdkError::InvalidArgument("too many EAL arguments".into()))?;
        // SAFETY: argv points to argc valid NUL-terminated strings that live for the rest of the
        // process (leaked above); EAL_STATE guarantees this runs once per process.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(from_rte_errno("rte_eal_init"));
        }
        let info = EalInfo {
            version: version(),
            // SAFETY: plain getters, valid after rte_eal_init succeeded.
            main_lcore: unsafe { sys::rte_get_main_lcore() },
            worker_lcores: worker_lcores(),
            // SAFETY: as above.
            socket_count: unsafe { sys::rte_socket_count() },
            // SAFETY: as above.
            tsc_hz: unsafe { sys::rte_get_tsc_hz() },
        };
        tracing::info!(version = %info.version, main_lcore = info.main_lcore,
            workers = ?info.worker_lcores, sockets = info.socket_count, tsc_hz = info.tsc_hz,
            "DPDK EAL initialised");
        Ok(Eal {
            inner: Arc::new(EalInner { info }),
        })
    }

    /// What EAL came up with.
    pub fn info(&self) -> &EalInfo {
        &self.inner.info
    }

    /// Whether `lcore` is an enabled lcore other than the main one.
    pub fn is_worker_lcore(&self, lcore: u32) -> bool {
        self.inner.info.worker_lcores.contains(&lcore)
    }
}

/// DPDK's version string; callable before EAL init.
pub fn version() -> String {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::pxtr_rte_version()) }
        .to_string_lossy()
        .into_owned()
}

fn worker_lcores() -> Vec<u32> {
    let mut out = Vec::new();
    let mut i = u32::MAX; // rte_get_next_lcore(-1, ...) starts from the first lcore.
    loop {
        // SAFETY: iterates EAL's lcore table; skip_main=1, wrap=0 ends at RTE_MAX_LCORE.
        i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
        if i >= sys::RTE_MAX_LCORE {
            return out;
        }
        out.push(i);
    }
}

impl Drop for EalInner {
    fn drop(&mut self) {
        // SAFETY: reading the calling thread's lcore id has no preconditions.
        let here = unsafe { sys::rte_lcore_id() };
        if here != self.info.main_lcore {
            tracing::warn!(
                lcore = here,
                "last EAL handle dropped off the main lcore: skipping rte_eal_cleanup"
            );
            return;
        }
        // SAFETY: on the main lcore, no pool, port or ring handle is left (each holds an Eal);
        // wait for worker lcores first, as rte_eal_cleanup requires.
        let ret = unsafe {
            sys::rte_eal_mp_wait_lcore();
            sys::rte_eal_cleanup()
        };
        if ret < 0 {
            tracing::warn!(error = %super::error::strerror(-ret), "rte_eal_cleanup failed");
        } else {
            tracing::debug!("DPDK EAL cleaned up");
        }
    }
}
