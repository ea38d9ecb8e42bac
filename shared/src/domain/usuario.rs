//! Read model of usuario rows (placeholder; filled in by the domain work).
