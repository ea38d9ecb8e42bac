//! Synthetic positions in the Buenos Aires box (domain.md §10): most around a
//! few hotspots, as real deployments cluster, the rest anywhere in the box.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::shares;

pub(crate) const LAT_MIN: f64 = -34.705;
pub(crate) const LAT_MAX: f64 = -34.527;
pub(crate) const LNG_MIN: f64 = -58.531;
pub(crate) const LNG_MAX: f64 = -58.335;

/// Spread of a cluster around its hotspot.
const SIGMA_M: f64 = 800.0;
const METRES_PER_DEGREE_LAT: f64 = 111_320.0;
/// Percentage of points drawn around a hotspot; the rest are uniform.
const CLUSTERED_PCT: u32 = 70;

/// A WGS 84 point, rounded to 6 decimals (~0.1 m) so its text form is exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub lat: f64,
    pub lng: f64,
}

impl Point {
    fn rounded(lat: f64, lng: f64) -> Self {
        let r = |v: f64| (v * 1e6).round() / 1e6;
        Self {
            lat: r(lat.clamp(LAT_MIN, LAT_MAX)),
            lng: r(lng.clamp(LNG_MIN, LNG_MAX)),
        }
    }

    /// EWKT, which a geography column accepts directly as COPY text input.
    pub fn ewkt(&self) -> String {
        format!("SRID=4326;POINT({:.6} {:.6})", self.lng, self.lat)
    }
}

pub(crate) struct Hotspot {
    pub name: &'static str,
    pub lat: f64,
    pub lng: f64,
}

/// Fifteen fixed neighbourhood centres inside the box. Fixed, not drawn, so
/// benchmarks always see the same density pattern.
pub(crate) const HOTSPOTS: [Hotspot; 15] = [
    Hotspot {
        name: "Microcentro",
        lat: -34.6037,
        lng: -58.3816,
    },
    Hotspot {
        name: "Palermo",
        lat: -34.5889,
        lng: -58.4306,
    },
    Hotspot {
        name: "Belgrano",
        lat: -34.5627,
        lng: -58.4565,
    },
    Hotspot {
        name: "Recoleta",
        lat: -34.5875,
        lng: -58.3974,
    },
    Hotspot {
        name: "San Telmo",
        lat: -34.6218,
        lng: -58.3714,
    },
    Hotspot {
        name: "La Boca",
        lat: -34.6345,
        lng: -58.3631,
    },
    Hotspot {
        name: "Caballito",
        lat: -34.6186,
        lng: -58.4420,
    },
    Hotspot {
        name: "Flores",
        lat: -34.6280,
        lng: -58.4630,
    },
    Hotspot {
        name: "Balvanera",
        lat: -34.6090,
        lng: -58.4050,
    },
    Hotspot {
        name: "Villa Urquiza",
        lat: -34.5730,
        lng: -58.4870,
    },
    Hotspot {
        name: "Mataderos",
        lat: -34.6590,
        lng: -58.5020,
    },
    Hotspot {
        name: "Liniers",
        lat: -34.6420,
        lng: -58.5200,
    },
    Hotspot {
        name: "Núñez",
        lat: -34.5440,
        lng: -58.4650,
    },
    Hotspot {
        name: "Barracas",
        lat: -34.6450,
        lng: -58.3830,
    },
    Hotspot {
        name: "Villa Lugano",
        lat: -34.6760,
        lng: -58.4730,
    },
];

/// `count` points, exactly 70% clustered and 30% uniform, in random order.
pub(crate) fn sample(rng: &mut ChaCha8Rng, count: usize) -> Vec<Point> {
    let kinds = shares::shuffled(rng, count, &[(true, CLUSTERED_PCT), (false, 100 - CLUSTERED_PCT)]);
    kinds
        .into_iter()
        .map(|clustered| if clustered { around_hotspot(rng) } else { uniform(rng) })
        .collect()
}

fn around_hotspot(rng: &mut ChaCha8Rng) -> Point {
    let h = &HOTSPOTS[rng.random_range(0..HOTSPOTS.len())];
    let sigma_lat = SIGMA_M / METRES_PER_DEGREE_LAT;
    let sigma_lng = SIGMA_M / (METRES_PER_DEGREE_LAT * h.lat.to_radians().cos());
    let lat = h.lat + shares::gaussian(rng) * sigma_lat;
    let lng = h.lng + shares::gaussian(rng) * sigma_lng;
    // Clamped rather than redrawn: a few points on the edge are harmless and
    // keep the stream consumption fixed per point.
    Point::rounded(lat, lng)
}

fn uniform(rng: &mut ChaCha8Rng) -> Point {
    Point::rounded(rng.random_range(LAT_MIN..=LAT_MAX), rng.random_range(LNG_MIN..=LNG_MAX))
}

/// Index of the closest hotspot, to name places and pick a precinct.
pub(crate) fn nearest_hotspot(p: Point) -> usize {
    let cos_lat = p.lat.to_radians().cos();
    let dist2 = |h: &Hotspot| {
        let dy = h.lat - p.lat;
        let dx = (h.lng - p.lng) * cos_lat;
        dy * dy + dx * dx
    };
    let mut best = 0;
    for (i, h) in HOTSPOTS.iter().enumerate() {
        if dist2(h) < dist2(&HOTSPOTS[best]) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::shares::{Stream, rng};

    #[test]
    fn hotspots_lie_inside_the_box() {
        for h in &HOTSPOTS {
            assert!((LAT_MIN..=LAT_MAX).contains(&h.lat), "{}", h.name);
            assert!((LNG_MIN..=LNG_MAX).contains(&h.lng), "{}", h.name);
        }
    }

    #[test]
    fn samples_stay_in_the_box_and_cluster() {
        let points = sample(&mut rng(42, Stream::Positions), 10_000);
        assert!(
            points
                .iter()
                .all(|p| (LAT_MIN..=LAT_MAX).contains(&p.lat) && (LNG_MIN..=LNG_MAX).contains(&p.lng))
        );
        // Within ~2 sigma of some hotspot: all clustered points bar ~5%, plus a
        // few uniform ones, so clearly more than the 70% share alone.
        let near = points
            .iter()
            .filter(|p| {
                let h = &HOTSPOTS[nearest_hotspot(**p)];
                let dy = (h.lat - p.lat) * METRES_PER_DEGREE_LAT;
                let dx = (h.lng - p.lng) * METRES_PER_DEGREE_LAT * p.lat.to_radians().cos();
                (dx * dx + dy * dy).sqrt() < 2.0 * SIGMA_M
            })
            .count();
        assert!(near > 6_500, "{near}");
    }

    #[test]
    fn ewkt_is_lng_then_lat() {
        let p = Point::rounded(-34.6, -58.4);
        assert_eq!(p.ewkt(), "SRID=4326;POINT(-58.400000 -34.600000)");
    }
}
