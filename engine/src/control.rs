//! The control file of a running `weir run --control FILE`: every complete line appended to
//! the file is applied to the job while its pipelines run — today `ALTER MODEL name SET VERSION
//! 'v'` (read by the script's own SQL front end), which switches the job's model between two
//! batches. Lines already in the file at start are applied too, so a restarted run comes back
//! to the last version chosen.
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::runtime::JobHandle;

/// Follows `path` until told to stop, applying its lines to `job`.
pub fn spawn(path: PathBuf, job: JobHandle) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        let mut offset = 0u64;
        let mut partial = String::new();
        loop {
            if let Ok(mut f) = std::fs::File::open(&path) {
                if f.seek(SeekFrom::Start(offset)).is_ok() {
                    let mut buf = String::new();
                    if let Ok(n) = f.read_to_string(&mut buf) {
                        offset += n as u64;
                        partial.push_str(&buf);
                        while let Some(i) = partial.find('\n') {
                            let line: String = partial.drain(..=i).collect();
                            let line = line.trim();
                            if line.is_empty() || line.starts_with("--") {
                                continue;
                            }
                            match job.alter_model(line) {
                                Ok(done) => eprintln!("control: {done}"),
                                Err(e) => eprintln!("control: {e}"),
                            }
                        }
                    }
                }
            }
            if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                break;
            }
        }
    });
    (tx, h)
}
