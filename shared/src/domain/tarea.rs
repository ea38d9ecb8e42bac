//! Read model of tarea rows (placeholder; filled in by the domain work).
