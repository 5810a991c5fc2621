//! An alert's life, as the plant's incident loop runs it: `open` → `acknowledged` (someone
//! owns the diagnosis) → `dispatched` (a work order is out) → `fixed` (the corrective action
//! is done) → `verifying` (the verification condition holds) → `verified` (it held for the
//! hold time) → `closed` by a person. `reopen` (by a person, or when the condition fails or
//! the alert fires again) sends it back to `open`; `shelve` silences it until an expiry.
//! Which action is allowed from which state is decided here and nowhere else.
use serde::{Deserialize, Serialize};

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Raised; nobody owns it yet.
    Open,
    /// Someone owns the diagnosis.
    Acknowledged,
    /// A work order is out.
    Dispatched,
    /// The technician says the corrective action is done.
    Fixed,
    /// The verification condition holds; waiting out the hold time.
    Verifying,
    /// The condition held for the hold time.
    Verified,
    /// Done (a later firing raises a new alert).
    Closed,
    /// Silenced until its expiry.
    Shelved,
}

impl State {
    /// Every state, in the loop's order.
    pub const ALL: [State; 8] = [
        State::Open,
        State::Acknowledged,
        State::Dispatched,
        State::Fixed,
        State::Verifying,
        State::Verified,
        State::Closed,
        State::Shelved,
    ];

    /// Its name (`acknowledged`, …).
    pub fn name(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Acknowledged => "acknowledged",
            State::Dispatched => "dispatched",
            State::Fixed => "fixed",
            State::Verifying => "verifying",
            State::Verified => "verified",
            State::Closed => "closed",
            State::Shelved => "shelved",
        }
    }

    /// The state called `name`.
    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What a person does to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Takes the diagnosis.
    Ack,
    /// Sends a work order.
    Dispatch,
    /// Says the corrective action is done.
    Fixed,
    /// Closes a verified alert (or a fixed one that declares no verification).
    Confirm,
    /// Sends it back to `open`.
    Reopen,
    /// Silences it until an expiry.
    Shelve,
    /// Labels it a true or false positive (review; any state).
    Label,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 7] = [
        Action::Ack,
        Action::Dispatch,
        Action::Fixed,
        Action::Confirm,
        Action::Reopen,
        Action::Shelve,
        Action::Label,
    ];

    /// Its name in the API's paths (`ack`, `dispatch`, …).
    pub fn name(self) -> &'static str {
        match self {
            Action::Ack => "ack",
            Action::Dispatch => "dispatch",
            Action::Fixed => "fixed",
            Action::Confirm => "confirm",
            Action::Reopen => "reopen",
            Action::Shelve => "shelve",
            Action::Label => "label",
        }
    }

    /// The action called `name`.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The event it appends (`acknowledged`, …).
    pub fn event(self) -> &'static str {
        match self {
            Action::Ack => "acknowledged",
            Action::Dispatch => "dispatched",
            Action::Fixed => "fixed",
            Action::Confirm => "closed",
            Action::Reopen => "reopened",
            Action::Shelve => "shelved",
            Action::Label => "labelled",
        }
    }

    /// Whether it is a reviewer's action (the others are an operator's).
    pub fn is_review(self) -> bool {
        self == Action::Label
    }
}

/// The state `action` leads to from `from`, or why it is not allowed there. `verifies`:
/// whether the alert declares a verification condition (without one, `confirm` closes a
/// fixed alert).
pub fn next(from: State, action: Action, verifies: bool) -> Result<State, String> {
    use State::*;
    let to = match (action, from) {
        (Action::Ack, Open) => Acknowledged,
        (Action::Dispatch, Open | Acknowledged) => Dispatched,
        (Action::Fixed, Acknowledged | Dispatched) => Fixed,
        (Action::Confirm, Verified) => Closed,
        (Action::Confirm, Fixed) if !verifies => Closed,
        (Action::Reopen, Fixed | Verifying | Verified | Closed | Shelved) => Open,
        (Action::Shelve, Open | Acknowledged) => Shelved,
        (Action::Label, s) => s,
        (a, s) => return Err(refusal(a, s, verifies)),
    };
    Ok(to)
}

/// Why `action` is refused in state `s`, with what would be allowed.
fn refusal(action: Action, s: State, verifies: bool) -> String {
    let allowed: Vec<&str> = Action::ALL
        .into_iter()
        .filter(|&a| a != action && a != Action::Label)
        .filter(|&a| {
            let ok = matches!(
                (a, s),
                (Action::Ack, State::Open)
                    | (Action::Dispatch, State::Open | State::Acknowledged)
                    | (Action::Fixed, State::Acknowledged | State::Dispatched)
                    | (Action::Confirm, State::Verified)
                    | (Action::Shelve, State::Open | State::Acknowledged)
                    | (
                        Action::Reopen,
                        State::Fixed
                            | State::Verifying
                            | State::Verified
                            | State::Closed
                            | State::Shelved
                    )
            );
            ok || (a == Action::Confirm && s == State::Fixed && !verifies)
        })
        .map(Action::name)
        .collect();
    let wait = match (action, s) {
        (Action::Confirm, State::Fixed | State::Verifying) => {
            " (it is confirmed once its verification condition has held for the hold time)"
        }
        _ => "",
    };
    format!(
        "an alert that is {} cannot be {}{wait}; allowed now: {}",
        s.name(),
        action.event(),
        match allowed.is_empty() {
            true => "nothing".to_string(),
            false => allowed.join(", "),
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_runs_in_order() {
        let mut s = State::Open;
        for a in [Action::Ack, Action::Dispatch, Action::Fixed] {
            s = next(s, a, true).unwrap();
        }
        assert_eq!(s, State::Fixed);
        let e = next(s, Action::Confirm, true).unwrap_err();
        assert!(e.contains("verification condition"), "{e}");
        assert_eq!(next(s, Action::Confirm, false), Ok(State::Closed));
        assert_eq!(
            next(State::Verified, Action::Confirm, true),
            Ok(State::Closed)
        );
    }

    #[test]
    fn refusals_name_what_is_allowed() {
        let e = next(State::Dispatched, Action::Ack, true).unwrap_err();
        assert_eq!(
            e,
            "an alert that is dispatched cannot be acknowledged; allowed now: fixed"
        );
        assert!(next(State::Closed, Action::Fixed, true).is_err());
        assert_eq!(next(State::Closed, Action::Reopen, true), Ok(State::Open));
        assert_eq!(next(State::Closed, Action::Label, true), Ok(State::Closed));
        for s in State::ALL {
            assert_eq!(State::parse(s.name()), Some(s));
        }
        for a in Action::ALL {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
    }
}
