//! Rate-limit strings: `"10/minute"`, `"100 per hour; 1000 per day"`.
//!
//! The grammar is `limits`' (`limits.util.parse_many`), matched without
//! regular expressions:
//!
//! ```text
//! many   := single ( sep single )*          sep := "," | ";" | "|"
//! single := ws digits ws ( "/" | ws "per" ws ) ws digits? ws letters ws
//! ```
//!
//! `ws` is any run of the characters Python's `\s` matches (Unicode white
//! space and U+001C–U+001F, as `str.isspace()`). `per` and the granularity
//! word are case-insensitive; the granularity is
//! a built-in one's singular or plural name (`"second"`, `"7days"`). The
//! whole string must match. Every failure is an
//! [`ErrorKind::Parse`] error, including an amount
//! of zero, a multiple of zero, numbers that overflow, and windows longer
//! than [`MAX_EXPIRY`](crate::storage::MAX_EXPIRY). `limits` accepts an
//! amount of zero and reads a multiple of zero as one; both are refused here.
//! Its regular expression also lets a `:` precede a separator
//! (`"1/second:;2/minute"`), a typo of the pattern that is not reproduced.

use crate::error::{Error, ErrorKind, Result};
use crate::item::{Granularity, RateLimitItem};

/// `ws` of the grammar: what Python's `\s` matches in a `str` pattern, the
/// characters of `str.isspace()`. That is Unicode's White_Space (Rust's
/// [`char::is_whitespace`]) and the four separators U+001C–U+001F, which
/// Python counts as space and Unicode does not.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Parses a string holding one rate limit, or several of which the first is
/// returned (the whole string must still be valid).
///
/// ```
/// use limitstore::parse;
/// let item = parse("10 per minute").unwrap();
/// assert_eq!((item.amount(), item.get_expiry()), (10, 60));
/// assert!(parse("10/fortnight").is_err());
/// ```
pub fn parse(limit: &str) -> Result<RateLimitItem> {
    let mut items = parse_many(limit)?;
    // parse_many never returns an empty list.
    Ok(items.swap_remove(0))
}

/// Parses rate limits separated by `,`, `;` or `|`.
///
/// ```
/// use limitstore::{parse_many, Granularity};
/// let items = parse_many("100 per hour;1000 per day").unwrap();
/// assert_eq!(items.len(), 2);
/// assert_eq!(items[1].amount(), 1000);
/// assert_eq!(items[1].granularity(), Granularity::DAY);
/// ```
pub fn parse_many(limits: &str) -> Result<Vec<RateLimitItem>> {
    let mut parser = Parser {
        input: limits,
        pos: 0,
    };
    let mut items = Vec::new();
    loop {
        items.push(parser.single()?);
        match parser.peek() {
            None => return Ok(items),
            Some(b',' | b';' | b'|') => parser.pos += 1,
            Some(_) => return Err(parser.error("expected `,`, `;`, `|` or the end")),
        }
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn error(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::Parse,
            format!(
                "couldn't parse rate limit string `{}`: {what} at byte {}",
                self.input, self.pos
            ),
        )
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(is_space).len();
    }

    /// `[0-9]+`, if present.
    fn digits(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        self.pos += n;
        (n > 0).then(|| &rest[..n])
    }

    /// `[a-zA-Z]+`, if present.
    fn letters(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let n = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        self.pos += n;
        (n > 0).then(|| &rest[..n])
    }

    fn number(&self, digits: &str, what: &str) -> Result<u64> {
        digits
            .parse::<u64>()
            .map_err(|_| self.error(&format!("{what} `{digits}` is too large")))
    }

    fn single(&mut self) -> Result<RateLimitItem> {
        self.skip_whitespace();
        let amount = self
            .digits()
            .ok_or_else(|| self.error("expected an amount"))?;
        let amount = self.number(amount, "amount")?;
        self.skip_whitespace();
        if self.peek() == Some(b'/') {
            self.pos += 1;
        } else if self
            .rest()
            .get(..3)
            .is_some_and(|w| w.eq_ignore_ascii_case("per"))
        {
            self.pos += 3;
        } else {
            return Err(self.error("expected `/` or `per`"));
        }
        self.skip_whitespace();
        let multiples = match self.digits() {
            Some(d) => Some(self.number(d, "multiple")?),
            None => None,
        };
        self.skip_whitespace();
        let word_at = self.pos;
        let word = self
            .letters()
            .ok_or_else(|| self.error("expected a granularity"))?;
        let granularity = Granularity::from_name(word).ok_or_else(|| {
            Error::new(
                ErrorKind::Parse,
                format!(
                    "no granularity matched for `{word}` in rate limit string `{}`",
                    self.input
                ),
            )
        })?;
        self.skip_whitespace();
        if multiples == Some(0) {
            self.pos = word_at;
            return Err(self.error("a multiple of zero"));
        }
        RateLimitItem::new(amount, multiples.unwrap_or(1), granularity).map_err(|e| {
            Error::new(
                ErrorKind::Parse,
                format!("invalid rate limit in `{}`: {}", self.input, e.message()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_between_every_token() {
        let item = parse("  10 \t per\n 2  hours  ").unwrap();
        assert_eq!((item.amount(), item.multiples()), (10, 2));
        assert_eq!(item.granularity(), Granularity::HOUR);
    }

    #[test]
    fn whitespace_is_what_python_counts_as_space() {
        // `limits` accepts these: Python's `\s` covers U+001C–U+001F.
        for s in [
            "3/\x1fday",
            "3\x1c/\x1dday\x1e",
            "3/\u{a0}day",
            "3/\u{3000}day",
            "3\u{85}per day",
        ] {
            let item = parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!((item.amount(), item.get_expiry()), (3, 86_400), "{s:?}");
        }
        // Neither Python nor Unicode counts these as space.
        for s in ["3/\x1bday", "3/\x00day", "3/\u{200b}day"] {
            assert_eq!(parse(s).unwrap_err().kind(), ErrorKind::Parse, "{s:?}");
        }
    }

    /// Every code point `str.isspace()` is true for (Python 3.11), and only those.
    #[test]
    fn is_space_is_pythons_isspace() {
        const PYTHON: &[u32] = &[
            0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000,
            0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028,
            0x2029, 0x202f, 0x205f, 0x3000,
        ];
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            assert_eq!(
                is_space(c),
                PYTHON.contains(&(c as u32)),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn per_needs_no_spaces() {
        let item = parse("10perminute").unwrap();
        assert_eq!(item.get_expiry(), 60);
    }

    #[test]
    fn non_ascii_is_refused_without_panicking() {
        for s in [
            "10/mínute",
            "１０/minute",
            "10 pé minute",
            "10/minute ü",
            "é",
        ] {
            assert_eq!(parse(s).unwrap_err().kind(), ErrorKind::Parse, "{s}");
        }
    }
}
