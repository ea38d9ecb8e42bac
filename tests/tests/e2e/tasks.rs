//! Tareas (domain.md §2, §3, §6.3, §8, §9.3): the state machine, who may do
//! what, assignments and unit holds, validation, derived fields, events and
//! the worker's guarantees (serialised transitions, redelivery).

mod assignments;
mod concurrency;
mod derived;
mod lists;
mod property;
mod redelivery;
mod roles;
mod support;
mod transitions;
mod validation;
mod websocket;
