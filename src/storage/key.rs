//! A storage key given as its parts.
//!
//! Strategies hand storages a [`LimitKey`]: the namespace, the identifiers
//! and the limit's precomputed tail, never joined. A backend that needs the
//! key as a string (Redis, Memcached, MongoDB, etcd, custom storages) gets
//! `limits`' layout from [`LimitKey::with_str`] or [`LimitKey::write_to`];
//! the memory engine hashes the parts where they lie.

use std::fmt;

/// The parts of a storage key: `"{namespace}/{id1}/{id2}…{suffix}"`, where
/// `suffix` (`"/{amount}/{multiples}/{granularity}"` for a
/// [`RateLimitItem`](crate::RateLimitItem)) starts with its own separator.
/// Its [`Display`](fmt::Display) form is the key string.
///
/// ```
/// use limitstore::{LimitKey, RateLimitItem};
///
/// let item = RateLimitItem::per_minute(10).unwrap();
/// let key = item.key(&["user", "42"]);
/// assert_eq!(key.to_string(), "LIMITER/user/42/10/1/minute");
/// assert_eq!(key.len(), key.to_string().len());
/// assert_eq!(LimitKey::new("ns", &[], "/1/1/second").to_string(), "ns/1/1/second");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LimitKey<'a> {
    namespace: &'a str,
    identifiers: &'a [&'a str],
    suffix: &'a str,
}

impl<'a> LimitKey<'a> {
    /// The key `namespace`, then `/` and each identifier, then `suffix` as is.
    #[inline]
    pub fn new(namespace: &'a str, identifiers: &'a [&'a str], suffix: &'a str) -> Self {
        LimitKey {
            namespace,
            identifiers,
            suffix,
        }
    }

    /// The key string's length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.namespace.len()
            + self
                .identifiers
                .iter()
                .map(|id| id.len() + 1)
                .sum::<usize>()
            + self.suffix.len()
    }

    /// Whether the key string is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the key string to `out`.
    #[inline]
    pub fn write_to(&self, out: &mut String) {
        out.reserve(self.len());
        out.push_str(self.namespace);
        for id in self.identifiers {
            out.push('/');
            out.push_str(id);
        }
        out.push_str(self.suffix);
    }

    /// Runs `f` on the key string, built in a per-thread buffer (no
    /// allocation once the buffer has grown to fit).
    #[inline]
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        f(&PooledKey::new(self))
    }

    /// The key string's bytes copied into `buf`, or `None` when they do not
    /// fit: a key gathered without touching the heap or a thread local.
    #[inline]
    pub(crate) fn gather<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let len = self.len();
        let out = buf.get_mut(..len)?;
        let mut at = 0;
        copy_short(&mut out[at..], self.namespace.as_bytes());
        at += self.namespace.len();
        for id in self.identifiers {
            out[at] = b'/';
            copy_short(&mut out[at + 1..], id.as_bytes());
            at += 1 + id.len();
        }
        copy_short(&mut out[at..], self.suffix.as_bytes());
        Some(out)
    }

    /// Where the parts lie in memory, as one number: two keys whose parts
    /// lie in different places give different numbers (unless they
    /// collide); keys with equal numbers may still differ (a buffer
    /// rewritten in place), so equal numbers say only "compare the bytes".
    #[inline]
    pub(crate) fn place(&self) -> u64 {
        let part = |s: &str| (s.as_ptr() as u64) ^ ((s.len() as u64) << 48);
        self.identifiers.iter().fold(
            part(self.namespace) ^ part(self.suffix).rotate_left(17),
            |acc, id| acc.rotate_left(5) ^ part(id),
        )
    }

    /// Whether the key string is `bytes`, compared part by part.
    #[inline]
    pub(crate) fn matches(&self, bytes: &[u8]) -> bool {
        if bytes.len() != self.len() {
            return false;
        }
        let mut at = self.namespace.len();
        if !eq_short(&bytes[..at], self.namespace.as_bytes()) {
            return false;
        }
        for id in self.identifiers {
            let end = at + 1 + id.len();
            if bytes[at] != b'/' || !eq_short(&bytes[at + 1..end], id.as_bytes()) {
                return false;
            }
            at = end;
        }
        eq_short(&bytes[at..], self.suffix.as_bytes())
    }

    /// The key's bytes piece by piece, in order (for a streaming hash).
    pub(crate) fn pieces(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        std::iter::once(self.namespace.as_bytes())
            .chain(
                self.identifiers
                    .iter()
                    .flat_map(|id| [b"/".as_slice(), id.as_bytes()]),
            )
            .chain(std::iter::once(self.suffix.as_bytes()))
    }
}

/// Copies `src` to the start of `dst`. A key's parts are short, so up to
/// 32 bytes are copied inline with two overlapping loads and stores (as a
/// `memcpy` does for small sizes, without calling it); longer parts go to
/// `copy_from_slice`.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    let dst = &mut dst[..n];
    macro_rules! head_tail {
        ($t:ty, $w:expr) => {{
            let head = <$t>::from_ne_bytes(src[..$w].try_into().expect("width"));
            let tail = <$t>::from_ne_bytes(src[n - $w..].try_into().expect("width"));
            dst[..$w].copy_from_slice(&head.to_ne_bytes());
            dst[n - $w..].copy_from_slice(&tail.to_ne_bytes());
        }};
    }
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => head_tail!(u32, 4),
        8..=15 => head_tail!(u64, 8),
        16..=32 => head_tail!(u128, 16),
        _ => dst.copy_from_slice(src),
    }
}

/// Whether `a` and `b`, of the same length, are equal: up to 32 bytes
/// compared inline with two overlapping loads each (as [`copy_short`]
/// copies), longer ones with `==`.
#[inline(always)]
fn eq_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    debug_assert_eq!(n, b.len());
    macro_rules! head_tail {
        ($t:ty, $w:expr) => {{
            let word = |s: &[u8], at: usize| {
                <$t>::from_ne_bytes(s[at..at + $w].try_into().expect("width"))
            };
            word(a, 0) == word(b, 0) && word(a, n - $w) == word(b, n - $w)
        }};
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => head_tail!(u32, 4),
        8..=15 => head_tail!(u64, 8),
        16..=32 => head_tail!(u128, 16),
        _ => a == b,
    }
}

impl fmt::Display for LimitKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.namespace)?;
        for id in self.identifiers {
            write!(f, "/{id}")?;
        }
        f.write_str(self.suffix)
    }
}

std::thread_local! {
    static KEY_BUFFER: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// Keys longer than this are not kept in the per-thread buffer after use.
const KEY_BUFFER_KEEP: usize = 4096;

/// A key string built in the per-thread buffer: the buffer is taken out of
/// its slot while the key lives and put back in the slot of the thread that
/// drops it, so building a key does not allocate once the buffer has grown
/// to fit, and a future can hold the key across its awaits. A second key
/// built while one lives (a storage calling back into a limiter on the same
/// thread), or one built while the thread is torn down, finds the slot
/// empty and starts a fresh string.
pub(crate) struct PooledKey(String);

impl PooledKey {
    #[inline]
    pub(crate) fn new(key: &LimitKey<'_>) -> Self {
        let mut buffer = KEY_BUFFER.try_with(|slot| slot.take()).unwrap_or_default();
        buffer.clear();
        key.write_to(&mut buffer);
        PooledKey(buffer)
    }
}

impl std::ops::Deref for PooledKey {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for PooledKey {
    #[inline]
    fn drop(&mut self) {
        if self.0.capacity() <= KEY_BUFFER_KEEP {
            let buffer = std::mem::take(&mut self.0);
            // Fails only while the thread is torn down; the string is then dropped.
            let _ = KEY_BUFFER.try_with(|slot| slot.set(buffer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_the_same_string() {
        for (ns, ids, suffix) in [
            ("LIMITER", &["a", "b"][..], "/1/1/minute"),
            ("", &[][..], ""),
            ("ns", &[""][..], "/x"),
            ("n", &["é", "long/er"][..], "/2/3/hour"),
        ] {
            let key = LimitKey::new(ns, ids, suffix);
            let string = key.to_string();
            assert_eq!(key.len(), string.len());
            let mut written = String::from("pre");
            key.write_to(&mut written);
            assert_eq!(&written[3..], string);
            assert_eq!(key.with_str(str::to_owned), string);
            let mut buf = [0u8; 64];
            assert_eq!(key.gather(&mut buf), Some(string.as_bytes()));
            assert_eq!(key.pieces().collect::<Vec<_>>().concat(), string.as_bytes());
            let mut small = [0u8; 2];
            assert_eq!(key.gather(&mut small).is_some(), string.len() <= 2);
        }
    }

    /// Runs `check` on keys with every part length around the inline
    /// copy's size classes, in every position (`n`, `m`: two of the lengths).
    fn for_every_part_length(check: impl Fn(LimitKey<'_>, usize, usize)) {
        let text: String = (0..40u8).map(|i| char::from(b'a' + i % 26)).collect();
        let part = |n: usize| &text[..n];
        for n in 0..=40 {
            for m in [0, 1, 3, 7, 8, 16, 17, 33] {
                let ids = [part(m), part(n)];
                for key in [
                    LimitKey::new(part(n), &ids[..1], part(m)),
                    LimitKey::new(part(m), &ids, part(n)),
                    LimitKey::new(part(n), &[], part(n)),
                ] {
                    check(key, n, m);
                }
            }
        }
    }

    /// Every part length, in every position, gathers to the key string's bytes.
    #[test]
    fn gathered_parts_are_the_string_at_every_part_length() {
        for_every_part_length(|key, n, m| {
            let mut buf = [0xFFu8; 128];
            let string = key.to_string();
            let fits = string.len() <= buf.len();
            let want = fits.then_some(string.as_bytes());
            assert_eq!(key.gather(&mut buf), want, "{n} {m}");
        });
    }

    /// A key matches its own string and no other, at every part length.
    #[test]
    fn a_key_matches_its_string_only() {
        for_every_part_length(|key, n, m| {
            let string = key.to_string().into_bytes();
            assert!(key.matches(&string), "{n} {m}");
            // Every byte changed, one at a time, and one byte more or less.
            for i in 0..string.len() {
                let mut other = string.clone();
                other[i] ^= 0x20;
                assert!(!key.matches(&other), "{n} {m} byte {i}");
            }
            let mut longer = string.clone();
            longer.push(b'x');
            assert!(!key.matches(&longer));
            if let Some((_, shorter)) = string.split_last() {
                assert!(!key.matches(shorter));
            }
        });
        // The same string from other parts matches too: `matches` compares
        // bytes, not the parts' boundaries.
        let key = LimitKey::new("LIMITER", &["a", "b"], "/1/1/minute");
        assert!(key.matches(b"LIMITER/a/b/1/1/minute"));
        assert!(
            LimitKey::new("LIMITER/a", &["b"], "/1/1/minute").matches(b"LIMITER/a/b/1/1/minute")
        );
    }

    #[test]
    fn nested_keys_fall_back_to_a_fresh_string() {
        let outer = LimitKey::new("LIMITER", &["a"], "/1/1/minute");
        let inner = LimitKey::new("LIMITER", &["b"], "/2/1/hour");
        let (a, b) = outer.with_str(|k1| {
            let k2 = inner.with_str(str::to_owned);
            (k1.to_owned(), k2)
        });
        assert_eq!(a, "LIMITER/a/1/1/minute");
        assert_eq!(b, "LIMITER/b/2/1/hour");
        // The buffer is usable again afterwards.
        assert_eq!(
            LimitKey::new("LIMITER", &[], "/2/1/hour").with_str(str::to_owned),
            "LIMITER/2/1/hour"
        );
    }

    #[test]
    fn long_keys_are_not_kept() {
        let long = "x".repeat(KEY_BUFFER_KEEP * 2);
        let ids = [long.as_str()];
        let key = LimitKey::new("LIMITER", &ids, "/1/1/second");
        assert_eq!(key.with_str(str::len), key.len());
        let capacity = KEY_BUFFER.with(|slot| {
            let buffer = slot.take();
            let capacity = buffer.capacity();
            slot.set(buffer);
            capacity
        });
        assert!(capacity <= KEY_BUFFER_KEEP);
    }
}
