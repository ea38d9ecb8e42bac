//! The emergency settings handlers need. `HandlerContext` carries no settings,
//! so the timers loop publishes them here when the worker process starts
//! (before any consumer pulls a job); tests that start a second worker with
//! other settings overwrite them, last start wins.

use std::sync::RwLock;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmergencyConfig {
    /// Dispatch only units within this distance (`EMERGENCY_MAX_RADIUS_M`).
    pub max_radius_m: Option<f64>,
    /// Skip units whose position is older (`EMERGENCY_MAX_POSITION_AGE`).
    pub max_position_age: Option<Duration>,
    /// `EMERGENCY_ACK_TIMEOUT`.
    pub ack_timeout: Duration,
}

pub const DEFAULT: EmergencyConfig = EmergencyConfig {
    max_radius_m: None,
    max_position_age: None,
    ack_timeout: Duration::from_secs(300),
};

static CONFIG: RwLock<EmergencyConfig> = RwLock::new(DEFAULT);

pub fn set(config: EmergencyConfig) {
    match CONFIG.write() {
        Ok(mut c) => *c = config,
        Err(poisoned) => *poisoned.into_inner() = config,
    }
}

pub fn get() -> EmergencyConfig {
    match CONFIG.read() {
        Ok(c) => *c,
        Err(poisoned) => *poisoned.into_inner(),
    }
}
