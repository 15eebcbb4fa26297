//! Rate decks, pure: streaming parsing and validation of vendor deck files ([`parse`]) and the
//! comparison of two versions ([`diff`]). Storing,
//! versioning and activating decks is the daemon's (`warpd::deck`).

pub mod diff;
pub mod parse;
