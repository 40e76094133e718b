//! What a participant may do, as credentials grant it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A participant's role. Roles are ordered by what they allow: `Viewer < Guest < Owner`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watches only: never controls, gets no clipboard and no files.
    Viewer,
    /// Watches, and controls while an owner has given it control.
    Guest,
    /// Controls, changes stream settings, gives and takes control, shares links.
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Guest, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Guest => "guest",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role can ever hold keyboard and mouse.
    pub fn may_control(self) -> bool {
        self >= Role::Guest
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not a role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a role: use owner, guest or viewer")]
pub struct BadRole(pub String);

impl FromStr for Role {
    type Err = BadRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shown: String = s.chars().take(20).collect();
        Role::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(s.trim())).ok_or(BadRole(shown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_print_and_order_by_power() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(" Viewer ".parse::<Role>(), Ok(Role::Viewer));
        assert!("admin".parse::<Role>().is_err());
        assert!(Role::Viewer < Role::Guest && Role::Guest < Role::Owner);
        assert!(!Role::Viewer.may_control() && Role::Guest.may_control() && Role::Owner.may_control());
    }
}
