//! Exact proportions and the seeded random streams.
//!
//! Shares in §10 are exact: a label vector with the right counts is shuffled,
//! rather than drawing each row independently and landing near the target.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

/// One independent random stream per concern, so changing how one generator
/// consumes randomness does not reshuffle the others' output.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    People = 1,
    Units = 2,
    Positions = 3,
    Tasks = 4,
    Assign = 5,
    Timeline = 6,
    PeopleIds = 7,
    TaskIds = 8,
    TaskPositions = 9,
}

pub(crate) fn rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

/// Splits `total` in proportion to `weights` by the largest-remainder method,
/// so the parts always add up to `total`. Ties go to the earlier weight.
pub(crate) fn exact_counts(total: usize, weights: &[u32]) -> Vec<usize> {
    let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let total64 = total as u64;
    let mut counts: Vec<usize> = weights
        .iter()
        .map(|&w| (total64 * u64::from(w) / sum) as usize)
        .collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(total64 * u64::from(weights[i]) % sum));
    let missing = total - counts.iter().sum::<usize>();
    for &i in order.iter().take(missing) {
        counts[i] += 1;
    }
    counts
}

/// `total` labels in exact proportion to their weights, in random order.
pub(crate) fn shuffled<T: Copy>(rng: &mut ChaCha8Rng, total: usize, labels: &[(T, u32)]) -> Vec<T> {
    let weights: Vec<u32> = labels.iter().map(|&(_, w)| w).collect();
    let mut out = Vec::with_capacity(total);
    for (&(label, _), count) in labels.iter().zip(exact_counts(total, &weights)) {
        out.extend(std::iter::repeat_n(label, count));
    }
    out.shuffle(rng);
    out
}

/// A standard normal draw (Box–Muller); one transform per call keeps the
/// stream position independent of any cached second value.
pub(crate) fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A v4 UUID from the seeded stream, so re-runs and other databases get the
/// same external ids for the same arguments.
pub(crate) fn uuid(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// A uniform instant offset in `[lo, hi]` seconds.
pub(crate) fn secs(rng: &mut ChaCha8Rng, lo: i64, hi: i64) -> i64 {
    if hi <= lo { lo } else { rng.random_range(lo..=hi) }
}

/// A point `frac` of the way from `a` to `b`, in whole seconds.
pub(crate) fn between(a: i64, b: i64, frac: f64) -> i64 {
    a + ((b - a) as f64 * frac) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_counts_match_the_spec_shares() {
        assert_eq!(exact_counts(1000, &[60, 25, 10, 5]), vec![600, 250, 100, 50]);
        assert_eq!(
            exact_counts(100_000, &[40, 20, 5, 30, 5]),
            vec![40_000, 20_000, 5_000, 30_000, 5_000]
        );
        let six = exact_counts(1000, &[1; 6]);
        assert_eq!(six.iter().sum::<usize>(), 1000);
        assert!(six.iter().all(|&c| c == 166 || c == 167));
        assert_eq!(exact_counts(7, &[0, 0]), vec![0, 0]);
    }

    #[test]
    fn shuffled_keeps_counts_and_is_deterministic() {
        let labels = [('a', 70), ('b', 30)];
        let one = shuffled(&mut rng(42, Stream::People), 100, &labels);
        let two = shuffled(&mut rng(42, Stream::People), 100, &labels);
        assert_eq!(one, two);
        assert_eq!(one.iter().filter(|&&c| c == 'a').count(), 70);
        assert_ne!(one, shuffled(&mut rng(43, Stream::People), 100, &labels));
    }

    #[test]
    fn streams_differ() {
        let a: u64 = rng(42, Stream::People).random();
        let b: u64 = rng(42, Stream::Units).random();
        assert_ne!(a, b);
    }
}
