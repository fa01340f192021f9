use std::any::Any;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use dpdk_sys as sys;

use super::eal::Eal;
use super::error::{check, DpdkError};

/// A flag the control core raises to ask lcore jobs to return. Workers check it once per loop.
#[derive(Clone, Default, Debug)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> StopFlag {
        StopFlag::default()
    }

    /// Asks every holder to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a stop was asked for.
    #[inline(always)]
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// The underlying flag, for signal handlers (signal-hook sets it directly).
    pub fn as_atomic(&self) -> &Arc<AtomicBool> {
        &self.0
    }
}

/// Which worker lcores run a job launched through [`launch`].
static LCORE_BUSY: [AtomicBool; sys::RTE_MAX_LCORE as usize] =
    [const { AtomicBool::new(false) }; sys::RTE_MAX_LCORE as usize];

type Slot<T> = Arc<Mutex<Option<std::thread::Result<T>>>>;

struct Job<F, T> {
    f: F,
    slot: Slot<T>,
}

extern "C" fn trampoline<F, T>(arg: *mut c_void) -> c_int
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: `arg` is the Box<Job> leaked by `launch` for exactly this one call.
    let job = unsafe { Box::from_raw(arg as *mut Job<F, T>) };
    let Job { f, slot } = *job;
    // A panic must not unwind into DPDK's C frames: catch it and report it through join().
    let result = catch_unwind(AssertUnwindSafe(f));
    let code = if result.is_ok() { 0 } else { -1 };
    if let Ok(mut s) = slot.lock() {
        *s = Some(result);
    }
    code
}

/// A job running on a worker lcore.
pub struct LcoreJoin<T> {
    lcore: u32,
    slot: Slot<T>,
    joined: bool,
    _eal: Eal,
}

/// Runs `f` on worker lcore `lcore` (pinned to the CPU EAL gave it). Call from the main lcore.
/// The lcore must be enabled, not the main one, and idle.
pub fn launch<F, T>(eal: &Eal, lcore: u32, f: F) -> Result<LcoreJoin<T>, DpdkError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if !eal.is_worker_lcore(lcore) {
        return Err(DpdkError::Lcore {
            lcore,
            reason: format!(
                "not a worker lcore of this EAL (main lcore {}, workers {:?})",
                eal.info().main_lcore,
                eal.info().worker_lcores
            ),
        });
    }
    // DPDK's own WAIT state lags the launch (the worker sets RUNNING when it wakes), so we keep
    // our own claim per lcore, released by join.
    let claim = &LCORE_BUSY[lcore as usize];
    if claim.swap(true, Ordering::AcqRel) {
        return Err(DpdkError::Lcore {
            lcore,
            reason: "already running a job".into(),
        });
    }
    let slot: Slot<T> = Arc::new(Mutex::new(None));
    let job = Box::into_raw(Box::new(Job {
        f,
        slot: slot.clone(),
    }));
    // SAFETY: the trampoline matches lcore_function_t and takes back the box exactly once;
    // if the launch fails DPDK never calls it and we reclaim the box here.
    let ret =
        unsafe { sys::rte_eal_remote_launch(Some(trampoline::<F, T>), job as *mut c_void, lcore) };
    if let Err(e) = check("rte_eal_remote_launch", ret) {
        // SAFETY: DPDK did not take the job, so the box is still ours.
        drop(unsafe { Box::from_raw(job) });
        claim.store(false, Ordering::Release);
        return Err(e);
    }
    tracing::debug!(lcore, "job launched");
    Ok(LcoreJoin {
        lcore,
        slot,
        joined: false,
        _eal: eal.clone(),
    })
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

impl<T> LcoreJoin<T> {
    /// The lcore the job runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Whether the job has returned.
    pub fn is_finished(&self) -> bool {
        self.slot.lock().map(|s| s.is_some()).unwrap_or(true)
    }

    /// Waits for the job (call from the main lcore) and returns its result.
    pub fn join(mut self) -> Result<T, DpdkError> {
        self.wait();
        let result = self.slot.lock().ok().and_then(|mut s| s.take());
        match result {
            Some(Ok(v)) => Ok(v),
            Some(Err(p)) => Err(DpdkError::LcorePanicked {
                lcore: self.lcore,
                message: panic_message(p.as_ref()),
            }),
            None => Err(DpdkError::Lcore {
                lcore: self.lcore,
                reason: "job ended without a result".into(),
            }),
        }
    }

    fn wait(&mut self) {
        // SAFETY: reading the calling thread's lcore id has no preconditions.
        if unsafe { sys::rte_lcore_id() } == self.lcore {
            // The job dropped its own handle: waiting for itself would never return.
            tracing::error!(
                lcore = self.lcore,
                "an lcore job cannot wait for itself; not joining"
            );
            self.joined = true;
            return;
        }
        if !self.joined {
            // SAFETY: the lcore was launched by us; waiting returns when the job has returned.
            unsafe { sys::rte_eal_wait_lcore(self.lcore) };
            self.joined = true;
            LCORE_BUSY[self.lcore as usize].store(false, Ordering::Release);
        }
    }
}

impl<T> Drop for LcoreJoin<T> {
    fn drop(&mut self) {
        // Never leave a job running on memory we are about to release.
        self.wait();
    }
}
