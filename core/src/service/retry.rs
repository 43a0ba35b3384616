//! The pause between attempts of a command that met a version conflict.

use super::ServiceConfig;
use crate::ids::CommandId;
use std::time::Duration;

/// The pause before attempt `attempt` (2, 3, …) of a command: the base delay
/// doubled per earlier conflict, capped, then scaled into [½, 1) of itself by
/// a jitter drawn from the command id and the attempt. Pure: the same command
/// waits the same on every run, two commands almost never the same.
pub fn retry_delay(config: &ServiceConfig, command: CommandId, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(2).min(20);
    let full = config
        .retry_base_delay
        .saturating_mul(1u32 << doublings)
        .min(config.retry_max_delay);
    // SplitMix64 over the id's two halves and the attempt.
    let (hi, lo) = command.as_uuid().as_u64_pair();
    let mut z = hi ^ lo.rotate_left(32) ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let fraction = (z >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    full / 2 + full.mul_f64(fraction / 2.0)
}
