//! The built-in table of NANP area codes (NPAs) outside the fifty states, by country: Canada,
//! the Caribbean and Atlantic "Zone 1" countries, and the US territories. Pure data, looked up in
//! constant time (one byte per NPA, built at compile time).
//!
//! Every NPA not listed is a US area code (or not assigned). Source: the NANPA list of
//! geographic NPAs by location. Checked on 2026-12-06 against Google's libphonenumber metadata
//! (Python `phonenumbers` 9.0.43) with `scripts/check-nanp-table.py`: every NPA 200–999 maps to
//! the same country (273 and 633, new Canadian codes, were added then). Re-run the script and
//! update the table when NANPA assigns new codes.

/// Where a NANP area code is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NanpRegion {
    /// the fifty states and DC (and codes not in the table)
    Us,
    /// Puerto Rico, US Virgin Islands, Guam, Northern Mariana Islands, American Samoa: US
    /// numbers, classified `domestic` like the states
    UsTerritory,
    /// Canada: class `canada`
    Canada,
    /// the other NANP countries (Caribbean and Bermuda): class `caribbean`
    Caribbean,
}

/// (NPA, ISO 3166 country code, region) for every non-US-state NPA.
pub const NANP_AREAS: &[(u16, &str, NanpRegion)] = &[
    // Canada (geographic overlays included, and the non-geographic 600/622)
    (204, "CA", NanpRegion::Canada),
    (226, "CA", NanpRegion::Canada),
    (236, "CA", NanpRegion::Canada),
    (249, "CA", NanpRegion::Canada),
    (250, "CA", NanpRegion::Canada),
    (257, "CA", NanpRegion::Canada),
    (263, "CA", NanpRegion::Canada),
    (273, "CA", NanpRegion::Canada),
    (289, "CA", NanpRegion::Canada),
    (306, "CA", NanpRegion::Canada),
    (343, "CA", NanpRegion::Canada),
    (354, "CA", NanpRegion::Canada),
    (365, "CA", NanpRegion::Canada),
    (367, "CA", NanpRegion::Canada),
    (368, "CA", NanpRegion::Canada),
    (382, "CA", NanpRegion::Canada),
    (403, "CA", NanpRegion::Canada),
    (416, "CA", NanpRegion::Canada),
    (418, "CA", NanpRegion::Canada),
    (428, "CA", NanpRegion::Canada),
    (431, "CA", NanpRegion::Canada),
    (437, "CA", NanpRegion::Canada),
    (438, "CA", NanpRegion::Canada),
    (450, "CA", NanpRegion::Canada),
    (468, "CA", NanpRegion::Canada),
    (474, "CA", NanpRegion::Canada),
    (506, "CA", NanpRegion::Canada),
    (514, "CA", NanpRegion::Canada),
    (519, "CA", NanpRegion::Canada),
    (548, "CA", NanpRegion::Canada),
    (579, "CA", NanpRegion::Canada),
    (581, "CA", NanpRegion::Canada),
    (584, "CA", NanpRegion::Canada),
    (587, "CA", NanpRegion::Canada),
    (600, "CA", NanpRegion::Canada),
    (604, "CA", NanpRegion::Canada),
    (613, "CA", NanpRegion::Canada),
    (622, "CA", NanpRegion::Canada),
    (633, "CA", NanpRegion::Canada),
    (639, "CA", NanpRegion::Canada),
    (647, "CA", NanpRegion::Canada),
    (672, "CA", NanpRegion::Canada),
    (683, "CA", NanpRegion::Canada),
    (705, "CA", NanpRegion::Canada),
    (709, "CA", NanpRegion::Canada),
    (742, "CA", NanpRegion::Canada),
    (753, "CA", NanpRegion::Canada),
    (778, "CA", NanpRegion::Canada),
    (780, "CA", NanpRegion::Canada),
    (782, "CA", NanpRegion::Canada),
    (807, "CA", NanpRegion::Canada),
    (819, "CA", NanpRegion::Canada),
    (825, "CA", NanpRegion::Canada),
    (867, "CA", NanpRegion::Canada),
    (873, "CA", NanpRegion::Canada),
    (879, "CA", NanpRegion::Canada),
    (902, "CA", NanpRegion::Canada),
    (905, "CA", NanpRegion::Canada),
    (942, "CA", NanpRegion::Canada),
    // the Caribbean and Atlantic NANP countries
    (242, "BS", NanpRegion::Caribbean), // Bahamas
    (246, "BB", NanpRegion::Caribbean), // Barbados
    (264, "AI", NanpRegion::Caribbean), // Anguilla
    (268, "AG", NanpRegion::Caribbean), // Antigua and Barbuda
    (284, "VG", NanpRegion::Caribbean), // British Virgin Islands
    (345, "KY", NanpRegion::Caribbean), // Cayman Islands
    (441, "BM", NanpRegion::Caribbean), // Bermuda
    (473, "GD", NanpRegion::Caribbean), // Grenada
    (649, "TC", NanpRegion::Caribbean), // Turks and Caicos Islands
    (658, "JM", NanpRegion::Caribbean), // Jamaica (overlay)
    (664, "MS", NanpRegion::Caribbean), // Montserrat
    (721, "SX", NanpRegion::Caribbean), // Sint Maarten
    (758, "LC", NanpRegion::Caribbean), // Saint Lucia
    (767, "DM", NanpRegion::Caribbean), // Dominica
    (784, "VC", NanpRegion::Caribbean), // Saint Vincent and the Grenadines
    (809, "DO", NanpRegion::Caribbean), // Dominican Republic
    (829, "DO", NanpRegion::Caribbean),
    (849, "DO", NanpRegion::Caribbean),
    (868, "TT", NanpRegion::Caribbean), // Trinidad and Tobago
    (869, "KN", NanpRegion::Caribbean), // Saint Kitts and Nevis
    (876, "JM", NanpRegion::Caribbean), // Jamaica
    // US territories
    (340, "VI", NanpRegion::UsTerritory), // US Virgin Islands
    (670, "MP", NanpRegion::UsTerritory), // Northern Mariana Islands
    (671, "GU", NanpRegion::UsTerritory), // Guam
    (684, "AS", NanpRegion::UsTerritory), // American Samoa
    (787, "PR", NanpRegion::UsTerritory), // Puerto Rico
    (939, "PR", NanpRegion::UsTerritory),
];

/// Index into [`NANP_AREAS`] + 1 by NPA (0: a US area code).
static BY_NPA: [u8; 1000] = {
    let mut t = [0u8; 1000];
    let mut i = 0;
    while i < NANP_AREAS.len() {
        t[NANP_AREAS[i].0 as usize] = (i + 1) as u8;
        i += 1;
    }
    t
};

/// The entry of a 3-digit NPA (ASCII digits), None for a US area code.
pub fn area(npa: &[u8]) -> Option<(&'static str, NanpRegion)> {
    let [a, b, c] = npa else { return None };
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return None;
    }
    let n = (a - b'0') as usize * 100 + (b - b'0') as usize * 10 + (c - b'0') as usize;
    match BY_NPA[n] {
        0 => None,
        i => NANP_AREAS
            .get(i as usize - 1)
            .map(|&(_, country, region)| (country, region)),
    }
}

/// The region of a 3-digit NPA.
pub fn region(npa: &[u8]) -> NanpRegion {
    area(npa).map_or(NanpRegion::Us, |(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_unique_and_looked_up() {
        let mut seen = std::collections::HashSet::new();
        for (npa, _, _) in NANP_AREAS {
            assert!((200..1000).contains(npa), "{npa}");
            assert!(seen.insert(npa), "{npa} twice");
        }
        assert!(NANP_AREAS.len() < 255);
        assert_eq!(area(b"876"), Some(("JM", NanpRegion::Caribbean)));
        assert_eq!(area(b"809"), Some(("DO", NanpRegion::Caribbean)));
        assert_eq!(area(b"416"), Some(("CA", NanpRegion::Canada)));
        assert_eq!(area(b"273"), Some(("CA", NanpRegion::Canada)));
        assert_eq!(region(b"787"), NanpRegion::UsTerritory);
        assert_eq!(region(b"212"), NanpRegion::Us);
        assert_eq!(region(b"21"), NanpRegion::Us);
        assert_eq!(region(b"2x2"), NanpRegion::Us);
    }
}
