//! Reading what sign-in needs from a directory entry: attribute names compared without regard to
//! case (as LDAP does), and the unique id in the one string form Phoenix stores.

use std::collections::HashMap;

use ldap3::{ResultEntry, SearchEntry};

/// A user or group entry as the directory returned it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its distinguished name.
    pub dn: String,
    attrs: HashMap<String, Vec<String>>,
    bin_attrs: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// Decodes a search result entry; `None` when the directory sent something malformed
    /// (ldap3's decoder panics on that, so the panic is contained here: a broken answer from the
    /// directory is a failed sign-in, never a crashed server).
    pub fn decode(raw: ResultEntry) -> Option<Self> {
        let entry =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(raw))).ok()?;
        Some(Self { dn: entry.dn, attrs: entry.attrs, bin_attrs: entry.bin_attrs })
    }

    /// Every text value of `name`.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.attrs
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .flat_map(|(_, values)| values.iter().cloned())
            .collect()
    }

    /// The first non-blank text value of `name`, trimmed.
    pub fn first(&self, name: &str) -> Option<String> {
        self.values(name).into_iter().map(|v| v.trim().to_owned()).find(|v| !v.is_empty())
    }

    /// The unique id in `name` as Phoenix stores it: a 16-byte value (Active Directory's
    /// `objectGUID`) as a lower-case GUID string in Microsoft's mixed-endian order, a text value
    /// (`entryUUID`, `nsUniqueId`) trimmed and lower-cased, other bytes as hex.
    pub fn unique_id(&self, name: &str) -> Option<String> {
        let raw: Vec<u8> = match self.bin_attrs.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)) {
            Some((_, values)) => values.first()?.clone(),
            None => self.values(name).into_iter().next()?.into_bytes(),
        };
        unique_id_from_bytes(&raw)
    }
}

/// See [`Entry::unique_id`].
pub fn unique_id_from_bytes(raw: &[u8]) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    if let Ok(guid) = <[u8; 16]>::try_from(raw) {
        // MS-DTYP §2.3.4: Data1, Data2 and Data3 are little-endian, Data4 is in order.
        let [a0, a1, a2, a3, b0, b1, c0, c1, d0, d1, e0, e1, e2, e3, e4, e5] = guid;
        return Some(format!(
            "{a3:02x}{a2:02x}{a1:02x}{a0:02x}-{b1:02x}{b0:02x}-{c1:02x}{c0:02x}-{d0:02x}{d1:02x}-{e0:02x}{e1:02x}{e2:02x}{e3:02x}{e4:02x}{e5:02x}"
        ));
    }
    match std::str::from_utf8(raw) {
        Ok(text) => Some(text.trim().to_lowercase()).filter(|t| !t.is_empty()),
        Err(_) => Some(raw.iter().map(|b| format!("{b:02x}")).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_as_phoenix_stores_them() {
        // The objectGUID of "2212e4c7-051e-4d0c-9a5b-12770a9bb7ab" on the wire.
        let wire =
            [0xc7, 0xe4, 0x12, 0x22, 0x1e, 0x05, 0x0c, 0x4d, 0x9a, 0x5b, 0x12, 0x77, 0x0a, 0x9b, 0xb7, 0xab];
        assert_eq!(unique_id_from_bytes(&wire).as_deref(), Some("2212e4c7-051e-4d0c-9a5b-12770a9bb7ab"));
        assert_eq!(
            unique_id_from_bytes(b" 550E8400-E29B-41D4-A716-446655440000 ").as_deref(),
            Some("550e8400-e29b-41d4-a716-446655440000")
        );
        assert_eq!(unique_id_from_bytes(&[0xff, 0x00, 0x10]).as_deref(), Some("ff0010"));
        assert_eq!(unique_id_from_bytes(b"   "), None);
        assert_eq!(unique_id_from_bytes(b""), None);
    }
}
