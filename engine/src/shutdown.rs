//! Graceful shutdown of `weir run`: at the first SIGTERM or SIGINT the run stops reading, its
//! open windows close, every sink is flushed and finished, the summary is printed and weir exits
//! 0 (a checkpointed run stops at a last checkpoint instead, so a restart continues there). If
//! that takes longer than the shutdown timeout, or a second signal comes, weir exits at once
//! with status 1 (timeout) or 130 (second signal).
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

/// Calls `stop` at the first SIGTERM or SIGINT (on a thread of its own) and exits the process
/// at a second signal or when `timeout` has passed since the first. Returns at once; a run that
/// ends by itself is not held up.
pub fn on_signal(stop: impl FnOnce() + Send + 'static, timeout: Duration) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weir: no signal handling (SIGTERM will kill at once): {e}");
            return;
        }
    };
    // Handlers are installed before this returns: a signal right after start is caught too.
    let signals = runtime.block_on(async {
        Some((
            signal(SignalKind::terminate()).ok()?,
            signal(SignalKind::interrupt()).ok()?,
        ))
    });
    let Some((mut term, mut int)) = signals else {
        eprintln!("weir: no signal handling (SIGTERM will kill at once)");
        return;
    };
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            eprintln!(
                "weir: {name}: stopping — no more reads, flushing every sink (at most {} s; a \
                 second signal exits at once)",
                timeout.as_secs_f64()
            );
            stop();
            tokio::select! {
                _ = term.recv() => second(),
                _ = int.recv() => second(),
                _ = tokio::time::sleep(timeout) => {
                    eprintln!(
                        "weir: the shutdown took longer than {} s: exiting without a summary",
                        timeout.as_secs_f64()
                    );
                    std::process::exit(1);
                }
            }
        })
    });
}

/// A second signal: exit now.
fn second() {
    eprintln!("weir: a second signal: exiting at once");
    std::process::exit(130);
}
