//! Terser-style paths: `PID-5-1`, `PID-3(2)-1`, `OBX(2)-5`, `MSH-9-2`, `PID-3-4-2`.
//!
//! Grammar (indices are 1-based; `.` is accepted in place of `-`, and a leading `/` or `/.`
//! as HAPI writes them is ignored):
//! `SEG[(segment repetition)]-FIELD[(field repetition)][-COMPONENT[-SUBCOMPONENT]]`.
//! As in HAPI's Terser, an omitted component or subcomponent means the first one.

/// Why a path string is rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The segment ID is not three characters `[A-Z0-9]`.
    #[error("invalid segment ID in path {0:?}")]
    Segment(String),
    /// A number is missing, zero or not a number.
    #[error("invalid index in path {0:?} (indices are 1-based numbers)")]
    Index(String),
    /// Unexpected characters.
    #[error("malformed path {0:?}")]
    Syntax(String),
}

/// A parsed path; build once with [`Path::parse`] and reuse for fast lookups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    /// Segment ID.
    pub segment: [u8; 3],
    /// 1-based occurrence of the segment in the message.
    pub segment_rep: usize,
    /// Field number (HL7 numbering).
    pub field: usize,
    /// 1-based field repetition.
    pub field_rep: usize,
    /// 1-based component, `None` if not given.
    pub component: Option<usize>,
    /// 1-based subcomponent, `None` if not given.
    pub subcomponent: Option<usize>,
}

impl Path {
    /// Parses a path string.
    ///
    /// ```
    /// use xenrad_hl7v2::Path;
    /// let p = Path::parse("PID-3(2)-1").unwrap();
    /// assert_eq!((p.field, p.field_rep, p.component), (3, 2, Some(1)));
    /// ```
    pub fn parse(s: &str) -> Result<Self, PathError> {
        let b = s.as_bytes();
        let b = b
            .strip_prefix(b"/.")
            .or_else(|| b.strip_prefix(b"/"))
            .unwrap_or(b);
        if b.len() < 3
            || !b[..3]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(PathError::Segment(s.to_owned()));
        }
        let segment = [b[0], b[1], b[2]];
        let mut cur = Cursor { b, i: 3, s };
        let segment_rep = cur.paren()?.unwrap_or(1);
        if !cur.sep() {
            return Err(PathError::Syntax(s.to_owned()));
        }
        let field = cur.number()?;
        let field_rep = cur.paren()?.unwrap_or(1);
        let component = if cur.sep() { Some(cur.number()?) } else { None };
        let subcomponent = if component.is_some() && cur.sep() {
            Some(cur.number()?)
        } else {
            None
        };
        if cur.i != b.len() {
            return Err(PathError::Syntax(s.to_owned()));
        }
        Ok(Self {
            segment,
            segment_rep,
            field,
            field_rep,
            component,
            subcomponent,
        })
    }
}

impl core::str::FromStr for Path {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, PathError> {
        Self::parse(s)
    }
}

impl core::fmt::Display for Path {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(std::str::from_utf8(&self.segment).unwrap_or("???"))?;
        if self.segment_rep != 1 {
            write!(f, "({})", self.segment_rep)?;
        }
        write!(f, "-{}", self.field)?;
        if self.field_rep != 1 {
            write!(f, "({})", self.field_rep)?;
        }
        if let Some(c) = self.component {
            write!(f, "-{c}")?;
            if let Some(s) = self.subcomponent {
                write!(f, "-{s}")?;
            }
        }
        Ok(())
    }
}

struct Cursor<'s> {
    b: &'s [u8],
    i: usize,
    s: &'s str,
}

impl Cursor<'_> {
    fn sep(&mut self) -> bool {
        if matches!(self.b.get(self.i), Some(b'-' | b'.')) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn number(&mut self) -> Result<usize, PathError> {
        let start = self.i;
        let mut n: usize = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(c - b'0')))
                .ok_or_else(|| PathError::Index(self.s.to_owned()))?;
            self.i += 1;
        }
        if self.i == start || n == 0 {
            return Err(PathError::Index(self.s.to_owned()));
        }
        Ok(n)
    }
    fn paren(&mut self) -> Result<Option<usize>, PathError> {
        if self.b.get(self.i) != Some(&b'(') {
            return Ok(None);
        }
        self.i += 1;
        let n = self.number()?;
        if self.b.get(self.i) != Some(&b')') {
            return Err(PathError::Syntax(self.s.to_owned()));
        }
        self.i += 1;
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_terser_paths() {
        let p = Path::parse("OBX(2)-5").unwrap();
        assert_eq!((p.segment_rep, p.field, p.component), (2, 5, None));
        let p = Path::parse("PID-3(2)-4-2").unwrap();
        assert_eq!(
            (p.field, p.field_rep, p.component, p.subcomponent),
            (3, 2, Some(4), Some(2))
        );
        assert_eq!(Path::parse("/.MSH.9.2").unwrap().component, Some(2));
        assert_eq!(p.to_string(), "PID-3(2)-4-2");
    }

    #[test]
    fn rejects_bad_paths() {
        assert!(matches!(Path::parse("PI-5"), Err(PathError::Segment(_))));
        assert!(matches!(Path::parse("PID-0"), Err(PathError::Index(_))));
        assert!(matches!(Path::parse("PID-5x"), Err(PathError::Syntax(_))));
        assert!(matches!(Path::parse("PID"), Err(PathError::Syntax(_))));
        assert!(matches!(
            Path::parse("PID-99999999999999999999999"),
            Err(PathError::Index(_))
        ));
        assert!(matches!(Path::parse("PID(2-1"), Err(PathError::Syntax(_))));
    }
}
