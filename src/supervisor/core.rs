//! The supervisor state machine.
pub struct Supervisor {}
