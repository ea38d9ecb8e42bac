//! How the benchmark binaries (`tests/src/bin/bench_*`) print their figures.

/// Microseconds (as HDR histograms record them) in milliseconds.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A rate or count rounded, with thousands separators: `1,217,941`.
pub fn thousands(r: f64) -> String {
    let s = (r.round().max(0.0) as u64).to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn separators_every_three_digits_from_the_right() {
        assert_eq!(super::thousands(1_217_941.4), "1,217,941");
        assert_eq!(super::thousands(999.0), "999");
        assert_eq!(super::thousands(1000.0), "1,000");
        assert_eq!(super::ms(1500), 1.5);
    }
}
