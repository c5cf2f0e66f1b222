//! Status enums of RFC 8555 §7.1.6. Which status applies is decided in `authority::state`.

use serde::{Deserialize, Serialize};

macro_rules! status_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum!(AccountStatus { Valid => "valid", Deactivated => "deactivated", Revoked => "revoked" });
status_enum!(OrderStatus {
    Pending => "pending", Ready => "ready", Processing => "processing", Valid => "valid", Invalid => "invalid",
});
status_enum!(AuthorizationStatus {
    Pending => "pending", Valid => "valid", Invalid => "invalid", Deactivated => "deactivated",
    Expired => "expired", Revoked => "revoked",
});
status_enum!(ChallengeStatus { Pending => "pending", Processing => "processing", Valid => "valid", Invalid => "invalid" });
