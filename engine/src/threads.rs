//! Small helper threads the engine runs beside the workers (progress lines, RUNNING lineage
//! events, the control file): each runs until told to stop.
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// A helper thread and the way to stop it (send `()`, then join).
pub type Helper = (Sender<()>, JoinHandle<()>);

/// A thread calling `tick` every `every` until told to stop.
pub fn every(every: Duration, mut tick: impl FnMut() + Send + 'static) -> Helper {
    let (tx, rx) = channel::<()>();
    let h = std::thread::spawn(move || {
        while rx.recv_timeout(every).is_err() {
            tick();
        }
    });
    (tx, h)
}
