//! `parse_many`: never panics; what it accepts is in range and round-trips
//! through `Display`; a list parses as its pieces do one by one.

use arbitrary::Arbitrary;
use limitstore::{parse, parse_many, ErrorKind, MAX_AMOUNT, MAX_EXPIRY};

/// Whitespace runs, ASCII and not.
const WHITESPACE: &[&str] = &["", " ", "  ", "\t", "\n", "\u{a0}", "\u{3000}", " \r\n "];

/// Granularity words, valid and not.
const WORDS: &[&str] = &[
    "second",
    "minute",
    "hour",
    "day",
    "month",
    "year",
    "week",
    "fortnight",
    "secon",
    "s",
    "millisecond",
    "",
];

/// Separators between items, valid and not.
const SEPARATORS: &[&str] = &[",", ";", "|", " ; ", ":", "", ",,", "/"];

/// A number token: small, at a limit, or past one.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Number {
    /// A small number (0..=255).
    Small(u8),
    /// Any `u64`.
    Any(u64),
    /// Digits past `u64::MAX`.
    Overflowing,
    /// `MAX_AMOUNT` plus 0 or 1.
    MaxAmount(bool),
    /// With leading zeros.
    Padded(u8),
}

impl Number {
    fn write(self, out: &mut String) {
        match self {
            Number::Small(n) => out.push_str(&n.to_string()),
            Number::Any(n) => out.push_str(&n.to_string()),
            Number::Overflowing => out.push_str("18446744073709551616"),
            Number::MaxAmount(over) => out.push_str(&(MAX_AMOUNT + u64::from(over)).to_string()),
            Number::Padded(n) => out.push_str(&format!("000{n}")),
        }
    }
}

/// One generated item.
#[derive(Arbitrary, Debug)]
pub struct Piece {
    lead: u8,
    amount: Number,
    before_per: u8,
    slash: bool,
    per_case: u8,
    after_per: u8,
    multiple: Option<Number>,
    before_word: u8,
    word: u8,
    plural: bool,
    word_case: u8,
    trail: u8,
    separator: u8,
}

/// One fuzz input: free text or a list of generated items.
#[derive(Arbitrary, Debug)]
pub enum Input<'a> {
    /// Any UTF-8 text.
    Raw(&'a str),
    /// Items built from tokens, mostly well-formed.
    Built(Vec<Piece>),
}

fn pick<'a>(table: &[&'a str], index: u8) -> &'a str {
    table[usize::from(index) % table.len()]
}

fn recase(word: &str, mask: u8) -> String {
    word.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask & (1 << (i % 8)) != 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// The text a list of pieces stands for.
pub fn build(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            out.push_str(pick(SEPARATORS, p.separator));
        }
        out.push_str(pick(WHITESPACE, p.lead));
        p.amount.write(&mut out);
        out.push_str(pick(WHITESPACE, p.before_per));
        if p.slash {
            out.push('/');
        } else {
            out.push_str(&recase("per", p.per_case));
        }
        out.push_str(pick(WHITESPACE, p.after_per));
        if let Some(m) = p.multiple {
            m.write(&mut out);
        }
        out.push_str(pick(WHITESPACE, p.before_word));
        let mut word = pick(WORDS, p.word).to_owned();
        if p.plural {
            word.push('s');
        }
        out.push_str(&recase(&word, p.word_case));
        out.push_str(pick(WHITESPACE, p.trail));
    }
    out
}

/// Checks `parse_many` on `text`.
pub fn check(text: &str) {
    let many = parse_many(text);
    let pieces: Vec<_> = text.split([',', ';', '|']).map(parse).collect();
    match &many {
        Ok(items) => {
            assert!(!items.is_empty(), "{text:?}");
            assert_eq!(items.len(), pieces.len(), "{text:?}");
            for (item, piece) in items.iter().zip(&pieces) {
                assert!(
                    item.amount() >= 1 && item.amount() <= MAX_AMOUNT,
                    "{text:?}: {item:?}"
                );
                assert!(item.multiples() >= 1, "{text:?}: {item:?}");
                let expiry = item.get_expiry();
                assert!((1..=MAX_EXPIRY).contains(&expiry), "{text:?}: {item:?}");
                let shown = item.to_string();
                let again = parse(&shown)
                    .unwrap_or_else(|e| panic!("{text:?}: {shown:?} does not parse: {e}"));
                assert_eq!(&again, item, "{text:?} -> {shown:?}");
                assert_eq!(again.get_expiry(), expiry);
                assert_eq!(piece.as_ref().ok(), Some(item), "{text:?}");
            }
            assert_eq!(parse(text).ok().as_ref(), items.first(), "{text:?}");
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Parse, "{text:?}: {e}");
            assert!(
                pieces.iter().any(|p| p.is_err()),
                "{text:?} fails as a list ({e}) but every piece parses"
            );
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}

impl<'a> Input<'a> {
    /// Decodes the bytes of one fuzz input.
    pub fn decode(data: &'a [u8]) -> Self {
        Input::arbitrary_take_rest(arbitrary::Unstructured::new(data)).unwrap_or(Input::Raw(""))
    }
}

/// Checks one input.
pub fn run(input: &Input<'_>) {
    match input {
        Input::Raw(text) => check(text),
        Input::Built(pieces) => check(&build(pieces)),
    }
}
