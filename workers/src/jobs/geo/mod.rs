//! The `geo` lane: read-only PostGIS queries.

pub mod nearest;
