//! Deterministic xorshift for the randomised never-panics tests: no dependency, and a
//! failure reproduces from its seed. Modules add their own input generators in `impl Rng`.

pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
