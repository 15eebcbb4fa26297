//! Live calls, pure: call-event validation ([`events`]), the live call table and its rules
//! ([`state`]), the limits view and CPS token bucket ([`limits`]), rolling route quality
//! ([`quality`]). The daemon's `warpd::calls` drives them (the dip hook, the event queue, the
//! writer task).

pub mod auth_failure;
pub mod events;
pub mod limits;
pub mod quality;
pub mod state;
