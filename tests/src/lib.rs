//! Harness pieces shared by the end-to-end tests (`tests/suite`) and `just bench`: backends run
//! as their own OS processes, and the kill-during-a-burst recovery measurement.

pub mod bulk;
pub mod process;
pub mod provider;
pub mod recovery;
