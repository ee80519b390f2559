//! A small seeded random source for ids and jitter.
//!
//! The core has no randomness of its own: everything random (client ids,
//! back-off jitter) comes from this generator, seeded by the caller, so a
//! session replays identically. SplitMix64 is written out here because it is
//! six lines and a dependency would add nothing: it is not used for secrets.

/// A seeded SplitMix64 generator: client ids and back-off jitter that
/// replay identically from the same seed (never used for secrets).
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits. (`SeededRng::new(x).next_u64()` is
    /// SplitMix64's mix of `x`: a pure hash, for bytes derived from a
    /// position.)
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A random (version 4) UUID in its text form.
    pub fn uuid_v4(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format_uuid_v4(a, b)
    }
}

/// A version 4 UUID in its text form from 128 random bits (`hi`, then `lo`):
/// the version and variant bits are set here, whatever the source of the
/// others.
pub fn format_uuid_v4(hi: u64, lo: u64) -> String {
    let a = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let b = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_well_formed() {
        let mut a = SeededRng::new(7);
        let mut b = SeededRng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let id = a.uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_eq!(
            format_uuid_v4(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
            "01234567-89ab-4def-bedc-ba9876543210"
        );
        let f = a.next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
