//! Rate decks, pure: streaming parsing and validation of vendor deck files ([`parse`]). Storing,
//! versioning and activating decks is the daemon's (`warpd::deck`).

pub mod parse;
