//! Message delimiters (HL7 v2.5.1 ch. 2, section 2.5.4 "Message delimiters").

/// The delimiter set of one message, read from MSH-1 (field separator) and MSH-2
/// (encoding characters, by position: component, repetition, escape, subcomponent,
/// and since v2.7 truncation).
///
/// A character missing from MSH-2 is `None` and never splits anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Delimiters {
    /// Field separator (MSH-1), usually `|`.
    pub field: u8,
    /// Component separator (MSH-2 position 1), usually `^`.
    pub component: Option<u8>,
    /// Repetition separator (MSH-2 position 2), usually `~`.
    pub repetition: Option<u8>,
    /// Escape character (MSH-2 position 3), usually `\`.
    pub escape: Option<u8>,
    /// Subcomponent separator (MSH-2 position 4), usually `&`.
    pub subcomponent: Option<u8>,
    /// Truncation character (MSH-2 position 5, v2.7+), usually `#`.
    pub truncation: Option<u8>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Self::STANDARD
    }
}

/// Why a delimiter set is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelimiterError {
    /// MSH-2 is empty: only the field separator is known.
    Empty,
    /// MSH-2 has more than five characters.
    TooLong,
    /// A delimiter is a letter, digit, CR, LF or NUL.
    Invalid(u8),
    /// The same character is used for two roles.
    Duplicate(u8),
}

impl core::fmt::Display for DelimiterError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => f.write_str("MSH-2 (encoding characters) is empty"),
            Self::TooLong => f.write_str("MSH-2 (encoding characters) has more than 5 characters"),
            Self::Invalid(b) => write!(f, "byte 0x{b:02X} cannot be a delimiter"),
            Self::Duplicate(b) => write!(f, "delimiter {:?} is used twice", *b as char),
        }
    }
}

pub(crate) fn valid_delimiter(b: u8) -> bool {
    !(b.is_ascii_alphanumeric() || b == b'\r' || b == b'\n' || b == 0 || b >= 0x80 || b == b' ')
}

impl Delimiters {
    /// The recommended set `|^~\&` (HL7 v2.5.1 section 2.5.4).
    pub const STANDARD: Self = Self {
        field: b'|',
        component: Some(b'^'),
        repetition: Some(b'~'),
        escape: Some(b'\\'),
        subcomponent: Some(b'&'),
        truncation: None,
    };

    /// Builds the set from the field separator and the MSH-2 bytes, checking that every
    /// character is a usable, distinct delimiter.
    pub fn from_msh(field: u8, encoding_chars: &[u8]) -> Result<Self, DelimiterError> {
        if !valid_delimiter(field) {
            return Err(DelimiterError::Invalid(field));
        }
        if encoding_chars.is_empty() {
            return Err(DelimiterError::Empty);
        }
        if encoding_chars.len() > 5 {
            return Err(DelimiterError::TooLong);
        }
        let mut seen = [field; 6];
        for (i, &b) in encoding_chars.iter().enumerate() {
            if !valid_delimiter(b) {
                return Err(DelimiterError::Invalid(b));
            }
            if seen[..=i].contains(&b) {
                return Err(DelimiterError::Duplicate(b));
            }
            seen[i + 1] = b;
        }
        let at = |i: usize| encoding_chars.get(i).copied();
        Ok(Self {
            field,
            component: at(0),
            repetition: at(1),
            escape: at(2),
            subcomponent: at(3),
            truncation: at(4),
        })
    }

    /// The MSH-2 value for this set (the encoding characters in order, up to the last present one).
    pub fn encoding_characters(&self) -> Vec<u8> {
        let all = [
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
            self.truncation,
        ];
        let n = all.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        // A gap (None before a later Some) cannot be expressed in MSH-2; a placeholder would
        // change the roles, so such sets only come from `from_msh`, which never makes gaps.
        all[..n].iter().map(|c| c.unwrap_or(b' ')).collect()
    }

    /// True if `b` is any of the delimiters or the escape character.
    pub fn is_special(&self, b: u8) -> bool {
        b == self.field
            || Some(b) == self.component
            || Some(b) == self.repetition
            || Some(b) == self.escape
            || Some(b) == self.subcomponent
            || Some(b) == self.truncation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_from_msh() {
        assert_eq!(
            Delimiters::from_msh(b'|', b"^~\\&"),
            Ok(Delimiters::STANDARD)
        );
        assert_eq!(Delimiters::STANDARD.encoding_characters(), b"^~\\&");
    }

    #[test]
    fn positional_short_set() {
        let d = Delimiters::from_msh(b'|', b"^~&").unwrap();
        assert_eq!(d.escape, Some(b'&'));
        assert_eq!(d.subcomponent, None);
        assert_eq!(d.encoding_characters(), b"^~&");
    }

    #[test]
    fn rejects_bad_sets() {
        assert_eq!(Delimiters::from_msh(b'|', b""), Err(DelimiterError::Empty));
        assert_eq!(
            Delimiters::from_msh(b'|', b"^~\\\\&"),
            Err(DelimiterError::Duplicate(b'\\'))
        );
        assert_eq!(
            Delimiters::from_msh(b'|', b"^~\\&#!"),
            Err(DelimiterError::TooLong)
        );
        assert_eq!(
            Delimiters::from_msh(b'A', b"^~\\&"),
            Err(DelimiterError::Invalid(b'A'))
        );
        assert_eq!(
            Delimiters::from_msh(b'|', b"^|\\&"),
            Err(DelimiterError::Duplicate(b'|'))
        );
    }
}
