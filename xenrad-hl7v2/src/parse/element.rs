//! Borrowed views of a segment and its fields, repetitions, components and subcomponents.
//! Splitting below the segment is lazy: nothing is scanned until asked for.

use crate::delimiters::Delimiters;
use crate::escape::{self, EscapePolicy};
use encoding_rs::Encoding;
use std::borrow::Cow;

/// Decoding context carried by every view: delimiters, charset, escape policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    pub(crate) delims: Delimiters,
    pub(crate) encoding: &'static Encoding,
    pub(crate) policy: EscapePolicy,
}

/// Position of `d` in `hay`: a plain loop for the short slices HL7 elements usually are
/// (memchr's setup costs more than it saves there), memchr for long ones.
#[inline]
pub(crate) fn find(d: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() < 32 {
        hay.iter().position(|&b| b == d)
    } else {
        memchr::memchr(d, hay)
    }
}

/// Iterator over the parts of `raw` between `delim` bytes (all of `raw` once if `None`).
#[derive(Clone, Debug)]
pub(crate) struct Split<'a> {
    rest: Option<&'a [u8]>,
    delim: Option<u8>,
}

impl<'a> Split<'a> {
    pub(crate) fn new(raw: &'a [u8], delim: Option<u8>) -> Self {
        Self {
            rest: Some(raw),
            delim,
        }
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        if let Some(i) = self.delim.and_then(|d| find(d, rest)) {
            self.rest = Some(&rest[i + 1..]);
            Some(&rest[..i])
        } else {
            self.rest = None;
            Some(rest)
        }
    }
}

/// The `n`-th (0-based) part of `raw` split on `delim`.
#[inline]
pub(crate) fn nth_part(raw: &[u8], delim: Option<u8>, n: usize) -> Option<&[u8]> {
    let Some(d) = delim else {
        return (n == 0).then_some(raw);
    };
    let mut start = 0;
    for _ in 0..n {
        start += find(d, &raw[start..])? + 1;
    }
    let end = find(d, &raw[start..]).map_or(raw.len(), |i| start + i);
    Some(&raw[start..end])
}

/// The prefix of `raw` before the first of the given delimiters.
#[inline]
pub(crate) fn first_leaf(raw: &[u8], a: Option<u8>, b: Option<u8>, c: Option<u8>) -> &[u8] {
    find3(raw, a, b, c).map_or(raw, |i| &raw[..i])
}

/// Position of the first of up to three bytes.
#[inline]
fn find3(raw: &[u8], a: Option<u8>, b: Option<u8>, c: Option<u8>) -> Option<usize> {
    if raw.len() < 32 {
        return raw
            .iter()
            .position(|&x| Some(x) == a || Some(x) == b || Some(x) == c);
    }
    match (a, b, c) {
        (Some(a), Some(b), Some(c)) => memchr::memchr3(a, b, c, raw),
        (Some(a), Some(b), None) | (Some(a), None, Some(b)) | (None, Some(a), Some(b)) => {
            memchr::memchr2(a, b, raw)
        }
        (Some(a), None, None) | (None, Some(a), None) | (None, None, Some(a)) => {
            memchr::memchr(a, raw)
        }
        (None, None, None) => None,
    }
}

/// The leaf at 1-based `(repetition, component, subcomponent)` of a field, found in one
/// left-to-right scan that stops at the end of that leaf (a 4 MiB OBX-5 is read once).
pub(crate) fn locate_leaf<'a>(
    raw: &'a [u8],
    delims: &crate::Delimiters,
    target: (usize, usize, usize),
) -> Option<&'a [u8]> {
    let (rd, cd, sd) = (delims.repetition, delims.component, delims.subcomponent);
    let mut at = (1, 1, 1);
    let mut start = 0;
    loop {
        let next = find3(&raw[start..], rd, cd, sd).map(|i| start + i);
        if at == target {
            return Some(&raw[start..next.unwrap_or(raw.len())]);
        }
        let i = next?;
        let b = raw[i];
        if Some(b) == rd {
            at = (at.0 + 1, 1, 1);
        } else if Some(b) == cd {
            at = (at.0, at.1 + 1, 1);
        } else {
            at.2 += 1;
        }
        if at > target {
            return None;
        }
        start = i + 1;
    }
}

macro_rules! common {
    ($t:ident) => {
        impl<'a> $t<'a> {
            /// The raw (still escaped, charset-encoded) bytes.
            #[inline]
            pub fn raw(&self) -> &'a [u8] {
                self.raw
            }
            /// True if the value is empty (not present or `||`).
            #[inline]
            pub fn is_empty(&self) -> bool {
                self.raw.is_empty()
            }
            /// True if the value is the HL7 explicit null `""` (section 2.5.3: delete the value).
            #[inline]
            pub fn is_null(&self) -> bool {
                self.raw == b"\"\""
            }
            /// The raw bytes as text without escape decoding (charset-decoded).
            pub fn raw_text(&self) -> Cow<'a, str> {
                crate::charset::decode(self.raw, self.ctx.encoding)
            }
        }
    };
}

/// A level of the field hierarchy (field, repetition, component) whose parts are split on one
/// delimiter: the view type, its parts' iterator and 1-based accessor, and its `text()` (the
/// first leaf below it, found by stopping at any lower delimiter). MSH-1 and MSH-2 are taken
/// literally (`verbatim`): no splitting, no escapes.
macro_rules! level {
    (
        $(#[$doc:meta])* $t:ident => $part:ident on $delim:ident,
        $(#[$iter_doc:meta])* fn $iter:ident,
        $(#[$nth_doc:meta])* fn $nth:ident,
        $(#[$text_doc:meta])* text stops at [$($stop:ident),+]
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $t<'a> {
            pub(crate) raw: &'a [u8],
            pub(crate) ctx: Ctx,
            pub(crate) verbatim: bool,
        }
        common!($t);

        impl<'a> $t<'a> {
            fn part_delim(&self) -> Option<u8> {
                if self.verbatim {
                    None
                } else {
                    self.ctx.delims.$delim
                }
            }
            $(#[$iter_doc])*
            pub fn $iter(&self) -> impl Iterator<Item = $part<'a>> + use<'a> {
                let (ctx, verbatim) = (self.ctx, self.verbatim);
                Split::new(self.raw, self.part_delim()).map(move |raw| $part {
                    raw,
                    ctx,
                    verbatim,
                })
            }
            $(#[$nth_doc])*
            pub fn $nth(&self, n: usize) -> Option<$part<'a>> {
                let raw = nth_part(self.raw, self.part_delim(), n.checked_sub(1)?)?;
                Some($part {
                    raw,
                    ctx: self.ctx,
                    verbatim: self.verbatim,
                })
            }
            $(#[$text_doc])*
            pub fn text(&self) -> Cow<'a, str> {
                if self.verbatim {
                    return self.raw_text();
                }
                let d = self.ctx.delims;
                let stops = [$(d.$stop),+];
                let leaf = first_leaf(
                    self.raw,
                    stops[0],
                    stops.get(1).copied().flatten(),
                    stops.get(2).copied().flatten(),
                );
                escape::decode(leaf, &d, self.ctx.encoding, self.ctx.policy)
            }
        }
    };
}

level! {
    /// One field of a segment.
    Field => Repetition on repetition,
    /// Iterates over the repetitions (at least one, possibly empty).
    fn repetitions,
    /// The `n`-th repetition, 1-based.
    fn repetition,
    /// Decoded text of the first repetition's first component's first subcomponent
    /// (what HAPI's Terser returns for a field path).
    text stops at [repetition, component, subcomponent]
}

impl<'a> Field<'a> {
    /// Component `n` (1-based) of the first repetition.
    pub fn component(&self, n: usize) -> Option<Component<'a>> {
        self.repetition(1)?.component(n)
    }
}

level! {
    /// One repetition of a field.
    Repetition => Component on component,
    /// Iterates over the components.
    fn components,
    /// Component `n`, 1-based.
    fn component,
    /// Decoded text of the first component's first subcomponent.
    text stops at [component, subcomponent]
}

level! {
    /// One component of a repetition.
    Component => SubComponent on subcomponent,
    /// Iterates over the subcomponents.
    fn subcomponents,
    /// Subcomponent `n`, 1-based.
    fn subcomponent,
    /// Decoded text of the first subcomponent.
    text stops at [subcomponent]
}

/// One subcomponent: a leaf value.
#[derive(Clone, Copy, Debug)]
pub struct SubComponent<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) ctx: Ctx,
    pub(crate) verbatim: bool,
}
common!(SubComponent);

impl<'a> SubComponent<'a> {
    /// Decoded text: escapes resolved, then the message charset decoded (U+FFFD for malformed
    /// bytes). Borrows the input when there is nothing to decode.
    pub fn text(&self) -> Cow<'a, str> {
        if self.verbatim {
            return self.raw_text();
        }
        escape::decode(
            self.raw,
            &self.ctx.delims,
            self.ctx.encoding,
            self.ctx.policy,
        )
    }
    /// Like [`text`](Self::text) but `None` if the bytes are not valid in their charset (the
    /// message charset, or the one a `\C..\`/`\M..\` escape switched to).
    pub fn try_text(&self) -> Option<Cow<'a, str>> {
        if self.verbatim {
            return crate::charset::decode_strict(self.raw, self.ctx.encoding);
        }
        escape::decode_strict(
            self.raw,
            &self.ctx.delims,
            self.ctx.encoding,
            self.ctx.policy,
        )
    }
}

/// One segment of a message.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) offset: usize,
    pub(crate) index: usize,
    pub(crate) ctx: Ctx,
}

impl<'a> Segment<'a> {
    /// The segment ID (`MSH`, `PID`, ...). Empty if not valid UTF-8 (only possible with
    /// `strict_segment_ids = false`).
    pub fn name(&self) -> &'a str {
        let sep = self.ctx.delims.field;
        let end = if self.raw.len() == 3 || self.raw.get(3) == Some(&sep) {
            3.min(self.raw.len())
        } else {
            find(sep, self.raw).unwrap_or(self.raw.len())
        };
        std::str::from_utf8(&self.raw[..end]).unwrap_or("")
    }
    /// The raw segment bytes (terminator excluded).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    /// Byte offset of the segment in the input.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// 1-based position of the segment in the message.
    pub fn index(&self) -> usize {
        self.index
    }
    fn is_msh(&self) -> bool {
        self.raw.starts_with(b"MSH") || self.raw.starts_with(b"FHS") || self.raw.starts_with(b"BHS")
    }
    /// Field `n` with HL7 numbering (for MSH, field 1 is the field separator itself and field
    /// 2 the encoding characters). `None` past the last field; `n = 0` is not a field.
    pub fn field(&self, n: usize) -> Option<Field<'a>> {
        if n == 0 {
            return None;
        }
        let sep = self.ctx.delims.field;
        if self.is_msh() {
            if n == 1 {
                return self.raw.get(3..4).map(|raw| Field {
                    raw,
                    ctx: self.ctx,
                    verbatim: true,
                });
            }
            let raw = nth_part(self.raw, Some(sep), n - 1)?;
            return Some(Field {
                raw,
                ctx: self.ctx,
                verbatim: n == 2,
            });
        }
        let raw = nth_part(self.raw, Some(sep), n)?;
        Some(Field {
            raw,
            ctx: self.ctx,
            verbatim: false,
        })
    }
    /// Number of fields present (HL7 numbering, so MSH counts MSH-1).
    pub fn field_count(&self) -> usize {
        let seps = memchr::memchr_iter(self.ctx.delims.field, self.raw).count();
        if self.is_msh() && seps > 0 {
            seps + 1
        } else {
            seps
        }
    }
    /// Iterates over the fields in order, starting with field 1.
    pub fn fields(&self) -> impl Iterator<Item = Field<'a>> + use<'a> {
        let ctx = self.ctx;
        let sep = ctx.delims.field;
        let msh = self.is_msh();
        let head = if msh { self.raw.get(3..4) } else { None };
        let mut parts = Split::new(self.raw, Some(sep));
        parts.next(); // segment ID
        let mut i = usize::from(msh);
        head.map(move |raw| Field {
            raw,
            ctx,
            verbatim: true,
        })
        .into_iter()
        .chain(parts.map(move |raw| {
            i += 1;
            Field {
                raw,
                ctx,
                verbatim: msh && i == 2,
            }
        }))
    }
    /// Decoded text of the first leaf of field `n` (see [`Field::text`]).
    pub fn text(&self, n: usize) -> Option<Cow<'a, str>> {
        self.field(n).map(|f| f.text())
    }
}
