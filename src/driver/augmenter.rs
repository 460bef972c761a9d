//! The teacher as the loop uses it: a journaled client that answers a batch
//! of augmentation requests, and the near-copy validator.
//!
//! NOTE: signatures only, until the `teacher` module's client is merged.

use sqlx::SqlitePool;

use crate::teacher::{AugmentOutcome, AugmentRequest, TeacherConfig};

/// Why the teacher is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Llm2llm,
}

/// The journaled teacher client.
pub struct Teacher {
    _private: (),
}

impl Teacher {
    pub fn new(_config: TeacherConfig, _pool: SqlitePool) -> anyhow::Result<Self> {
        todo!("teacher client")
    }

    pub async fn augment(
        &self,
        _run_id: i64,
        _iteration: i64,
        _purpose: Purpose,
        _requests: &[AugmentRequest],
    ) -> anyhow::Result<Vec<AugmentOutcome>> {
        todo!("teacher client")
    }
}

/// Rejects questions that are near copies of questions already in the run.
pub struct Validator {
    _private: (),
}

impl Validator {
    pub fn new(_threshold: f64, _existing: Vec<String>) -> Self {
        todo!("teacher validator")
    }

    /// Returns true and remembers the question when it is no near copy.
    pub fn admit(&mut self, _question: &str) -> bool {
        todo!("teacher validator")
    }
}
