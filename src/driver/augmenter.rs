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
        _requests: Vec<AugmentRequest>,
    ) -> anyhow::Result<Vec<AugmentOutcome>> {
        todo!("teacher client")
    }
}

/// Rejects questions that are near copies of questions already in the run.
pub struct Validator {
    _private: (),
}

impl Validator {
    pub fn new<I, S>(_threshold: f64, _existing: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        todo!("teacher validator")
    }

    pub fn admit_all<S: AsRef<str>>(&mut self, _questions: &[S]) -> Vec<Result<(), RejectReason>> {
        todo!("teacher validator")
    }
}

/// Why an item was rejected.
#[derive(Debug, Clone, Copy)]
pub enum RejectReason {
    NearCopy,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        "near_copy"
    }
}
