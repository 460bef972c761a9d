//! Prompt templates for the teacher: a system message and a user message per
//! purpose, written as minijinja templates in files under `configs/prompts/`
//! so users can edit them without rebuilding.
//!
//! Templates see `question`, `answer` (the reference solution), `k` (items to
//! write) and, for LLM2LLM prompts with `show_student_answer` set,
//! `student_answer`. The reply format the templates ask for is the one
//! `parse` reads; changing it there means changing the parser too.

use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde::Serialize;

use super::TeacherError;

/// What a teacher call is for. Each purpose has its own prompts and reply
/// format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Write k new problems similar to a missed seed problem (LLM2LLM).
    Llm2llm,
    /// Rephrase a seed question k times, keeping its answer (AugGPT
    /// baseline).
    AugGpt,
}

impl Purpose {
    /// The value stored in `teacher_calls.purpose`.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Llm2llm => "llm2llm",
            Purpose::AugGpt => "auggpt",
        }
    }
}

/// Built-in copies of the shipped prompt files, used for a purpose whose
/// prompts the configuration does not name.
const BUILTIN_LLM2LLM_SYSTEM: &str = include_str!("../../configs/prompts/llm2llm_system.md");
const BUILTIN_LLM2LLM_USER: &str = include_str!("../../configs/prompts/llm2llm_user.md");
const BUILTIN_AUGGPT_SYSTEM: &str = include_str!("../../configs/prompts/auggpt_system.md");
const BUILTIN_AUGGPT_USER: &str = include_str!("../../configs/prompts/auggpt_user.md");

/// A system and a user template, checked for syntax when loaded.
#[derive(Debug, Clone)]
pub struct PromptTemplates {
    system: Template,
    user: Template,
}

#[derive(Debug, Clone)]
struct Template {
    /// File the template came from, or `<built-in ...>`, for error messages.
    origin: PathBuf,
    source: String,
}

/// Values a template is rendered with.
#[derive(Debug, Serialize)]
struct PromptContext<'a> {
    question: &'a str,
    answer: &'a str,
    student_answer: Option<&'a str>,
    k: usize,
}

/// The rendered messages of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedPrompt {
    pub system: String,
    pub user: String,
}

impl PromptTemplates {
    /// Reads and syntax-checks a system and a user template file.
    pub fn load(system: &Path, user: &Path) -> Result<Self, TeacherError> {
        Ok(Self {
            system: Template::read(system)?,
            user: Template::read(user)?,
        })
    }

    /// The templates shipped in `configs/prompts/` for `purpose`, compiled
    /// into the binary.
    pub fn builtin(purpose: Purpose) -> Self {
        let (system, user) = match purpose {
            Purpose::Llm2llm => (BUILTIN_LLM2LLM_SYSTEM, BUILTIN_LLM2LLM_USER),
            Purpose::AugGpt => (BUILTIN_AUGGPT_SYSTEM, BUILTIN_AUGGPT_USER),
        };
        let name = purpose.as_str();
        Self {
            system: Template {
                origin: PathBuf::from(format!("<built-in {name}_system.md>")),
                source: system.to_owned(),
            },
            user: Template {
                origin: PathBuf::from(format!("<built-in {name}_user.md>")),
                source: user.to_owned(),
            },
        }
    }

    /// Renders both messages for one seed example. `student_answer` is
    /// passed only when the prompt should show it.
    pub fn render(
        &self,
        question: &str,
        answer: &str,
        student_answer: Option<&str>,
        k: usize,
    ) -> Result<RenderedPrompt, TeacherError> {
        let context = PromptContext {
            question: question.trim(),
            answer: answer.trim(),
            student_answer: student_answer.map(str::trim).filter(|s| !s.is_empty()),
            k,
        };
        Ok(RenderedPrompt {
            system: self.system.render(&context)?,
            user: self.user.render(&context)?,
        })
    }
}

impl Template {
    fn read(path: &Path) -> Result<Self, TeacherError> {
        let source = std::fs::read_to_string(path).map_err(|source| TeacherError::PromptRead {
            path: path.to_owned(),
            source,
        })?;
        let template = Self {
            origin: path.to_owned(),
            source,
        };
        // Compiling here reports a syntax error when the teacher is built,
        // not at the first call.
        let mut env = Environment::new();
        env.add_template("prompt", &template.source)
            .map_err(|error| template.error(error))?;
        Ok(template)
    }

    fn render(&self, context: &PromptContext<'_>) -> Result<String, TeacherError> {
        let mut env = Environment::new();
        // Undefined variables are errors so a misspelt name in an edited
        // template fails loudly instead of rendering as empty text.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(false);
        env.add_template("prompt", &self.source)
            .map_err(|error| self.error(error))?;
        let template = env
            .get_template("prompt")
            .map_err(|error| self.error(error))?;
        let text = template
            .render(context)
            .map_err(|error| self.error(error))?;
        Ok(text.trim().to_owned())
    }

    fn error(&self, error: minijinja::Error) -> TeacherError {
        TeacherError::PromptTemplate {
            path: self.origin.clone(),
            line: error.line(),
            source: error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_llm2llm_shows_student_answer_only_when_given() {
        let templates = PromptTemplates::builtin(Purpose::Llm2llm);
        let shown = templates
            .render("How many?", "2+2 = <<2+2=4>>4\n#### 4", Some("#### 5"), 3)
            .unwrap();
        let hidden = templates
            .render("How many?", "2+2 = <<2+2=4>>4\n#### 4", None, 3)
            .unwrap();
        assert!(shown.user.contains("#### 5"));
        assert!(!hidden.user.contains("wrong answer:"));
        assert!(hidden.user.contains("Write 3 new problems"));
    }

    #[test]
    fn builtin_auggpt_names_the_original_question() {
        let templates = PromptTemplates::builtin(Purpose::AugGpt);
        let prompt = templates
            .render("How many apples?", "#### 4", None, 2)
            .unwrap();
        assert!(prompt.user.contains("Original problem: How many apples?"));
    }

    #[test]
    fn undefined_variable_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.md");
        let user = dir.path().join("user.md");
        std::fs::write(&system, "You write problems.").unwrap();
        std::fs::write(&user, "line one\n{{ qestion }}").unwrap();
        let templates = PromptTemplates::load(&system, &user).unwrap();
        let message = templates.render("q", "a", None, 1).unwrap_err().to_string();
        assert!(message.contains("user.md"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn syntax_error_is_reported_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.md");
        std::fs::write(&system, "{% if %}").unwrap();
        let error = PromptTemplates::load(&system, &system).unwrap_err();
        assert!(matches!(error, TeacherError::PromptTemplate { .. }));
    }
}
