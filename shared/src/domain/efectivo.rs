//! Read model of efectivo rows (placeholder; filled in by the domain work).
