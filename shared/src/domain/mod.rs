//! Read models of the domain (§6.3 shapes), shared by ingress (direct reads)
//! and workers (job results), so both answer with the same JSON.

pub mod efectivo;
pub mod tarea;
pub mod usuario;
