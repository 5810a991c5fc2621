//! Window kinds and their parameters, all in milliseconds of event time.
use serde::{Deserialize, Serialize};

use crate::EventTime;

/// A window over event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSpec {
    /// Fixed, non-overlapping windows of `size` ms aligned to the epoch.
    Tumble { size: EventTime },
    /// Windows of `size` ms starting every `slide` ms; a row belongs to `size / slide` windows.
    Hop { slide: EventTime, size: EventTime },
    /// Per key, rows closer than `gap` ms belong to one session; a session ends `gap` ms after
    /// its last row.
    Session { gap: EventTime },
}

impl WindowSpec {
    /// Start times of the windows (tumble/hop) containing `ts`.
    pub fn starts(&self, ts: EventTime, out: &mut Vec<EventTime>) {
        match *self {
            WindowSpec::Tumble { size } => out.push(ts.div_euclid(size) * size),
            WindowSpec::Hop { slide, size } => {
                let mut s = ts.div_euclid(slide) * slide;
                while s > ts - size {
                    out.push(s);
                    s -= slide;
                }
            }
            WindowSpec::Session { .. } => out.push(ts),
        }
    }

    /// Length of a window (tumble/hop) or the gap (session).
    pub fn length(&self) -> EventTime {
        match *self {
            WindowSpec::Tumble { size } | WindowSpec::Hop { size, .. } => size,
            WindowSpec::Session { gap } => gap,
        }
    }

    /// Human form used by `explain`.
    pub fn describe(&self) -> String {
        match *self {
            WindowSpec::Tumble { size } => format!("tumble({size}ms)"),
            WindowSpec::Hop { slide, size } => format!("hop(slide {slide}ms, size {size}ms)"),
            WindowSpec::Session { gap } => format!("session(gap {gap}ms)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_windows_cover_the_row() {
        let mut v = Vec::new();
        WindowSpec::Hop { slide: 5, size: 10 }.starts(12, &mut v);
        assert_eq!(v, vec![10, 5]);
        v.clear();
        WindowSpec::Hop { slide: 5, size: 10 }.starts(-3, &mut v);
        assert_eq!(v, vec![-5, -10]);
        v.clear();
        WindowSpec::Tumble { size: 1000 }.starts(1999, &mut v);
        assert_eq!(v, vec![1000]);
    }
}
