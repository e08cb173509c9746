//! Command implementations that grew past a few lines, one file per area.

pub mod serve;
pub mod spoken;
