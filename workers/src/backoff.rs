//! Retry delays: exponential with full jitter, so retries of many failed jobs
//! spread out instead of arriving together.

use std::time::Duration;

use rand::Rng;

/// Delay before retry number `attempt` (1-based): uniform in `[0, min(cap, base·2^(attempt-1))]`.
pub fn full_jitter(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(cap);
    let ms = ceiling.as_millis().min(u64::MAX as u128) as u64;
    Duration::from_millis(rand::rng().random_range(0..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_and_never_passes_the_cap() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        for attempt in 1..40 {
            let d = full_jitter(attempt, base, cap);
            let ceiling = base.saturating_mul(1 << (attempt - 1).min(20)).min(cap);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        // Over many draws the mean of attempt 4 (ceiling 8 s) is near 4 s, i.e. jittered.
        let mean: f64 = (0..2000).map(|_| full_jitter(4, base, cap).as_secs_f64()).sum::<f64>() / 2000.0;
        assert!((3.0..5.0).contains(&mean), "mean {mean}");
    }
}
