//! Deterministic pseudo-randomness: a SplitMix64 generator and stateless hashing helpers.
//!
//! The dataset is derived from `(seed, entity, index)` hashes rather than from a sequential
//! generator, so any device, page or reading can be produced on demand, in any order, and is
//! always the same for the same seed.

/// One SplitMix64 finalisation round: a good 64-bit mixing function.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a seed, a tag (what is being generated) and two indices.
pub(crate) fn hash(seed: u64, tag: u64, a: u64, b: u64) -> u64 {
    mix(mix(mix(seed ^ tag.wrapping_mul(0xA24B_AED4_963E_E407)) ^ a) ^ b)
}

/// A small, fast, seedable generator (SplitMix64).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    /// A generator starting from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// A generator for one entity: `hash(seed, tag, a, b)` as its state.
    pub(crate) fn for_entity(seed: u64, tag: u64, a: u64, b: u64) -> Self {
        SplitMix(hash(seed, tag, a, b))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A uniform float in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A bijection on `u32` keyed by the seed, so that ids derived from it are unique and can be
/// mapped back to the index they came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Permutation {
    k1: u32,
    k2: u32,
    mul: u32,
    inv: u32,
}

impl Permutation {
    pub(crate) fn new(seed: u64) -> Self {
        let h = mix(seed ^ 0x05EE_D1D5);
        let mul = (mix(h) as u32) | 1;
        // Newton iteration for the inverse of an odd number modulo 2^32.
        let mut inv = mul;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(mul.wrapping_mul(inv)));
        }
        Permutation {
            k1: h as u32,
            k2: (h >> 32) as u32,
            mul,
            inv,
        }
    }

    pub(crate) fn apply(&self, x: u32) -> u32 {
        (x ^ self.k1).wrapping_mul(self.mul) ^ self.k2
    }

    pub(crate) fn invert(&self, y: u32) -> u32 {
        (y ^ self.k2).wrapping_mul(self.inv) ^ self.k1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_round_trips() {
        let p = Permutation::new(7);
        for x in [0u32, 1, 2, 99, 123_456, u32::MAX] {
            assert_eq!(p.invert(p.apply(x)), x);
        }
    }
}
