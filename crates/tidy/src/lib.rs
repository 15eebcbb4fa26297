//! Architecture checks of the warpd workspace, as tests (`cargo test -p warpd-tidy`):
//! `tests/tidy.rs` reads the sources and asks cargo for the dependency trees. No code here.
#![forbid(unsafe_code)]
