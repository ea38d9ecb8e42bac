//! Coordinates are kept to 1e-7 degrees (about 1 cm, far below any GPS fix).
//! PostGIS' geography KNN (`<->`) fails with "index returned tuples in wrong
//! order" when stored points differ from a query point by amounts like 1e-35
//! (found by the API fuzzer): snapping at the edge keeps such values out.

/// `v` rounded to 1e-7; a decimal input with at most seven decimals is
/// returned as the very same `f64` it was parsed to.
pub fn snap(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

#[cfg(test)]
mod tests {
    use super::snap;

    #[test]
    fn decimals_survive_and_specks_vanish() {
        assert_eq!(snap(-34.6037), -34.6037);
        assert_eq!(snap(-58.3816), -58.3816);
        assert_eq!(snap(179.9999999), 179.9999999);
        assert_eq!(snap(7.5e-35), 0.0);
        assert_eq!(snap(1.23456789), 1.2345679);
    }
}
