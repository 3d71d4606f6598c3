//! Salesforce record ids: 15-character case-sensitive ids, 18-character ids with their
//! case checksum, and the key prefixes that tell which object an id belongs to.

use std::fmt;

const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// A validated record id, always held in its 18-character form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SfId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("'{0}' is not a Salesforce id: it must be 15 or 18 letters and digits")]
    Malformed(String),
    #[error(
        "'{0}' is not a Salesforce id: its last 3 characters are not the checksum of the first 15"
    )]
    BadChecksum(String),
}

impl SfId {
    /// Parses a 15- or 18-character id. An 18-character id must carry the right checksum.
    pub fn parse(raw: &str) -> Result<SfId, IdError> {
        let valid_chars = raw.bytes().all(|b| b.is_ascii_alphanumeric());
        match raw.len() {
            15 if valid_chars => Ok(SfId(format!("{raw}{}", checksum(raw)))),
            18 if valid_chars => {
                // Salesforce compares the suffix case-insensitively.
                if raw[15..].eq_ignore_ascii_case(&checksum(&raw[..15])) {
                    Ok(SfId(format!("{}{}", &raw[..15], checksum(&raw[..15]))))
                } else {
                    Err(IdError::BadChecksum(raw.to_string()))
                }
            }
            _ => Err(IdError::Malformed(raw.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 15-character, case-sensitive form.
    pub fn short(&self) -> &str {
        &self.0[..15]
    }

    /// The 3-character key prefix, e.g. `701` for a Campaign.
    pub fn prefix(&self) -> &str {
        &self.0[..3]
    }

    /// The standard object this id's prefix names, if it is one rulesforce knows.
    pub fn object(&self) -> Option<&'static str> {
        object_for_prefix(self.prefix())
    }
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SfId({})", self.0)
    }
}

/// The 3-character case checksum of a 15-character id: for each 5-character chunk, bit i
/// is set when character i is an upper-case letter.
pub fn checksum(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            CHECKSUM_ALPHABET[bits] as char
        })
        .collect()
}

/// Key prefixes of the standard objects rulesforce works with.
pub const KEY_PREFIXES: &[(&str, &str)] = &[
    ("701", "Campaign"),
    ("00v", "CampaignMember"),
    ("01Y", "CampaignMemberStatus"),
    ("00Q", "Lead"),
    ("003", "Contact"),
    ("001", "Account"),
    ("005", "User"),
    ("00D", "Organization"),
];

pub fn object_for_prefix(prefix: &str) -> Option<&'static str> {
    KEY_PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, object)| *object)
}

pub fn prefix_for_object(object: &str) -> Option<&'static str> {
    KEY_PREFIXES
        .iter()
        .find(|(_, o)| o.eq_ignore_ascii_case(object))
        .map(|(prefix, _)| *prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_documented_example() {
        let id = SfId::parse("001D000000IqhSL").unwrap();
        assert_eq!(id.as_str(), "001D000000IqhSLIAZ");
        assert_eq!(id.short(), "001D000000IqhSL");
        assert_eq!(id.object(), Some("Account"));
    }

    #[test]
    fn accepts_18_with_any_suffix_case_and_rejects_wrong_checksums() {
        assert_eq!(
            SfId::parse("001D000000IqhSLiaz").unwrap().as_str(),
            "001D000000IqhSLIAZ"
        );
        assert_eq!(
            SfId::parse("001D000000IqhSLAAA"),
            Err(IdError::BadChecksum("001D000000IqhSLAAA".into()))
        );
    }

    #[test]
    fn rejects_wrong_lengths_and_characters() {
        for bad in [
            "",
            "001",
            "001D000000IqhS-",
            "001D000000IqhSLIA",
            "001D000000IqhSLIAZX",
        ] {
            assert!(
                matches!(SfId::parse(bad), Err(IdError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn all_lower_case_ids_have_checksum_aaa() {
        assert_eq!(checksum("00q000000000001"), "AAA");
        assert_eq!(checksum("ZZZZZZZZZZZZZZZ"), "555");
    }
}
