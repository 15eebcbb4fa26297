//! Media policy values shared by `warpd apply`, the admin API and the media controller.

use serde::Serialize;

/// T.38 handling of a route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum T38Mode {
    #[default]
    None,
    Passthrough,
    Gateway,
}

impl T38Mode {
    pub fn parse(s: &str) -> Option<T38Mode> {
        match s {
            "none" => Some(T38Mode::None),
            "passthrough" => Some(T38Mode::Passthrough),
            "gateway" => Some(T38Mode::Gateway),
            _ => None,
        }
    }

    /// The `media_policies.t38_mode` text of this mode (inverse of [`T38Mode::parse`]).
    pub fn as_str(self) -> &'static str {
        match self {
            T38Mode::None => "none",
            T38Mode::Passthrough => "passthrough",
            T38Mode::Gateway => "gateway",
        }
    }
}
