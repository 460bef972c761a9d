//! Tables, charts and exports of recorded runs.

pub mod cli;
pub mod compare;
