//! Turning a chat (a list of role/content messages) into the one prompt
//! string the student decodes from.
//!
//! A checkpoint that ships a chat template gets it applied as Hugging Face
//! transformers applies it. The Jinja source comes from `chat_template.jinja`
//! in the checkpoint directory, or else from the `chat_template` field of
//! `tokenizer_config.json`. It is rendered with `messages`, `bos_token`,
//! `eos_token`, `add_generation_prompt = true` and a `raise_exception`
//! function, with `trim_blocks` and `lstrip_blocks` on. Python string methods
//! (`.strip()`, `.split()`, ...) come from minijinja-contrib's pycompat.
//!
//! A checkpoint without a template gets the plain fallback format, one block
//! per message and an open assistant turn at the end:
//!
//! ```text
//! System: You solve math problems.
//!
//! User: What is 2 + 3?
//!
//! Assistant:
//! ```
//!
//! The fallback adds `"\nUser:"` as a stop string, so a model that goes on to
//! write the next user turn is cut there.

use std::path::{Path, PathBuf};

use minijinja::{Environment, ErrorKind, Value, context};
use serde::Serialize;

/// File that transformers (4.43 and later) writes the chat template to.
/// It takes precedence over `tokenizer_config.json`'s field.
const TEMPLATE_FILE: &str = "chat_template.jinja";
const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

/// Stop string of the fallback format: the start of the next user turn.
const FALLBACK_STOP: &str = "\nUser:";

/// One chat message as the template receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// Failure to read or compile a checkpoint's chat template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateLoadError {
    #[error("failed to read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid JSON", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: field `{field}` {problem}", path.display())]
    Field {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
    #[error("the chat template in {} does not compile as Jinja", path.display())]
    Compile {
        path: PathBuf,
        #[source]
        source: minijinja::Error,
    },
}

/// Failure to render a chat: the template raised an exception (for example
/// on roles that do not alternate) or hit an error in its own code.
#[derive(Debug, thiserror::Error)]
#[error("the chat template rejected the messages: {message}")]
pub struct TemplateRenderError {
    pub message: String,
}

/// The prompt format of one checkpoint.
pub struct ChatTemplate {
    kind: TemplateKind,
    /// Set when the tokenizer prepends bos by itself, so a bos at the start
    /// of the rendered text would be encoded twice.
    strip_leading_bos: bool,
}

enum TemplateKind {
    Jinja {
        env: Box<Environment<'static>>,
        bos_token: String,
        eos_token: String,
        source_path: PathBuf,
    },
    Fallback,
}

/// Name of the one template registered in the minijinja environment.
const TEMPLATE_NAME: &str = "chat";

impl ChatTemplate {
    /// Reads the chat template of the checkpoint in `model_dir`, or picks the
    /// fallback format when it has none. Set `tokenizer_adds_bos` when
    /// encoding the prompt prepends bos by itself, as LLaMA tokenizers do.
    pub fn load(model_dir: &Path, tokenizer_adds_bos: bool) -> Result<Self, TemplateLoadError> {
        let config_path = model_dir.join(TOKENIZER_CONFIG_FILE);
        let config = if config_path.is_file() {
            let text = std::fs::read_to_string(&config_path).map_err(|source| {
                TemplateLoadError::Read {
                    path: config_path.clone(),
                    source,
                }
            })?;
            serde_json::from_str::<serde_json::Value>(&text).map_err(|source| {
                TemplateLoadError::Json {
                    path: config_path.clone(),
                    source,
                }
            })?
        } else {
            serde_json::Value::Null
        };

        let template_path = model_dir.join(TEMPLATE_FILE);
        let (source, source_path) = if template_path.is_file() {
            let source = std::fs::read_to_string(&template_path).map_err(|source| {
                TemplateLoadError::Read {
                    path: template_path.clone(),
                    source,
                }
            })?;
            (Some(source), template_path)
        } else {
            (
                template_from_config(&config, &config_path)?,
                config_path.clone(),
            )
        };

        let Some(source) = source else {
            return Ok(Self {
                kind: TemplateKind::Fallback,
                strip_leading_bos: tokenizer_adds_bos,
            });
        };
        let bos_token = special_token(&config, &config_path, "bos_token")?;
        let eos_token = special_token(&config, &config_path, "eos_token")?;
        Self::from_source(
            source,
            bos_token,
            eos_token,
            source_path,
            tokenizer_adds_bos,
        )
    }

    /// Compiles a Jinja chat template given as text. `source_path` names
    /// where it came from in error messages.
    pub fn from_source(
        source: String,
        bos_token: String,
        eos_token: String,
        source_path: PathBuf,
        tokenizer_adds_bos: bool,
    ) -> Result<Self, TemplateLoadError> {
        let mut env = Environment::new();
        // transformers renders chat templates with these two Jinja options on;
        // without them, templates written for it leave stray newlines and
        // indentation in the prompt.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned(TEMPLATE_NAME, source)
            .map_err(|source| TemplateLoadError::Compile {
                path: source_path.clone(),
                source,
            })?;
        Ok(Self {
            kind: TemplateKind::Jinja {
                env: Box::new(env),
                bos_token,
                eos_token,
                source_path,
            },
            strip_leading_bos: tokenizer_adds_bos,
        })
    }

    /// Creates the plain fallback format, for checkpoints without a template.
    pub fn fallback(tokenizer_adds_bos: bool) -> Self {
        Self {
            kind: TemplateKind::Fallback,
            strip_leading_bos: tokenizer_adds_bos,
        }
    }

    /// Returns the file the Jinja template was read from, or `None` for the fallback format.
    pub fn source_path(&self) -> Option<&Path> {
        match &self.kind {
            TemplateKind::Jinja { source_path, .. } => Some(source_path),
            TemplateKind::Fallback => None,
        }
    }

    /// Stop strings the format itself needs, added to those of each request.
    pub fn stop_strings(&self) -> Vec<String> {
        match &self.kind {
            TemplateKind::Jinja { .. } => Vec::new(),
            TemplateKind::Fallback => vec![FALLBACK_STOP.to_string()],
        }
    }

    /// Renders `messages` into a prompt that ends with an open assistant turn.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, TemplateRenderError> {
        match &self.kind {
            TemplateKind::Jinja {
                env,
                bos_token,
                eos_token,
                ..
            } => {
                let template = env.get_template(TEMPLATE_NAME).map_err(render_error)?;
                let rendered = template
                    .render(context! {
                        messages => messages,
                        bos_token => bos_token,
                        eos_token => eos_token,
                        add_generation_prompt => true,
                    })
                    .map_err(render_error)?;
                Ok(self.without_leading_bos(rendered, bos_token))
            }
            TemplateKind::Fallback => Ok(render_fallback(messages)),
        }
    }

    fn without_leading_bos(&self, rendered: String, bos_token: &str) -> String {
        if self.strip_leading_bos
            && !bos_token.is_empty()
            && let Some(rest) = rendered.strip_prefix(bos_token)
        {
            return rest.to_string();
        }
        rendered
    }
}

fn render_fallback(messages: &[ChatMessage]) -> String {
    let mut prompt = String::new();
    for message in messages {
        let label = match message.role.as_str() {
            "system" => "System",
            "assistant" => "Assistant",
            _ => "User",
        };
        prompt.push_str(label);
        prompt.push_str(": ");
        prompt.push_str(&message.content);
        prompt.push_str("\n\n");
    }
    prompt.push_str("Assistant:");
    prompt
}

/// Reads the template source from `tokenizer_config.json`'s `chat_template`.
/// The field is a string, or a list of `{name, template}` objects of which
/// the one named `default` is used.
fn template_from_config(
    config: &serde_json::Value,
    config_path: &Path,
) -> Result<Option<String>, TemplateLoadError> {
    let field_error = |problem: &str| TemplateLoadError::Field {
        path: config_path.to_path_buf(),
        field: "chat_template",
        problem: problem.to_string(),
    };
    match config.get("chat_template") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(source)) => Ok(Some(source.clone())),
        Some(serde_json::Value::Array(entries)) => {
            for entry in entries {
                if entry.get("name").and_then(|name| name.as_str()) == Some("default") {
                    let source =
                        entry
                            .get("template")
                            .and_then(|t| t.as_str())
                            .ok_or_else(|| {
                                field_error("has a `default` entry without a string `template`")
                            })?;
                    return Ok(Some(source.to_string()));
                }
            }
            Err(field_error(
                "is a list of named templates without one named `default`; \
                 keep a `default` entry or write the template as a string",
            ))
        }
        Some(_) => Err(field_error(
            "must be a string or a list of {name, template} objects",
        )),
    }
}

/// Reads a special token's text, which `tokenizer_config.json` writes either
/// as a string or as an added-token object with a `content` field. A missing
/// token renders as the empty string, as in transformers.
fn special_token(
    config: &serde_json::Value,
    config_path: &Path,
    field: &'static str,
) -> Result<String, TemplateLoadError> {
    match config.get(field) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(object @ serde_json::Value::Object(_)) => object
            .get("content")
            .and_then(|content| content.as_str())
            .map(str::to_string)
            .ok_or_else(|| TemplateLoadError::Field {
                path: config_path.to_path_buf(),
                field,
                problem: "is an object without a string `content`".to_string(),
            }),
        Some(_) => Err(TemplateLoadError::Field {
            path: config_path.to_path_buf(),
            field,
            problem: "must be a string or an object with a `content` string".to_string(),
        }),
    }
}

/// `raise_exception(message)`, which transformers gives templates to reject
/// a chat they cannot format.
fn raise_exception(message: String) -> Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

fn render_error(err: minijinja::Error) -> TemplateRenderError {
    // A raised exception carries the template's own message as the detail;
    // other errors read best in full (kind, detail and template line).
    let message = match (err.kind(), err.detail()) {
        (ErrorKind::InvalidOperation, Some(detail)) => detail.to_string(),
        _ => err.to_string(),
    };
    TemplateRenderError { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LLaMA-2-style chat template written for these tests: an optional
    /// system prompt folded into the first user turn, `[INST]` markers,
    /// eos after each assistant reply, and strict role alternation.
    const LLAMA2_STYLE: &str = "\
{% if messages[0]['role'] == 'system' %}
{% set system = '<<SYS>>\\n' + messages[0]['content'].strip() + '\\n<</SYS>>\\n\\n' %}
{% set turns = messages[1:] %}
{% else %}
{% set system = '' %}
{% set turns = messages %}
{% endif %}
{% for message in turns %}
{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
{{ raise_exception('roles must alternate user/assistant/user/...') }}
{% endif %}
{% if message['role'] == 'user' %}
{{ bos_token + '[INST] ' + (system if loop.first else '') + message['content'].strip() + ' [/INST]' }}
{%- else %}
{{ ' ' + message['content'].strip() + ' ' + eos_token }}
{%- endif %}
{% endfor %}
";

    fn message(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.to_string(),
            content: content.to_string(),
        }
    }

    fn llama2_template(tokenizer_adds_bos: bool) -> ChatTemplate {
        ChatTemplate::from_source(
            LLAMA2_STYLE.to_string(),
            "<s>".to_string(),
            "</s>".to_string(),
            PathBuf::from("test-template"),
            tokenizer_adds_bos,
        )
        .expect("the test template compiles")
    }

    #[test]
    fn fallback_formats_roles_and_opens_assistant_turn() {
        let template = ChatTemplate::fallback(true);
        let prompt = template
            .render(&[message("system", "Be brief."), message("user", "Hi")])
            .expect("fallback never fails");
        assert_eq!(prompt, "System: Be brief.\n\nUser: Hi\n\nAssistant:");
    }

    #[test]
    fn fallback_stops_at_next_user_turn() {
        assert_eq!(
            ChatTemplate::fallback(true).stop_strings(),
            vec!["\nUser:".to_string()]
        );
    }

    #[test]
    fn llama2_template_folds_system_into_first_turn() {
        let template = llama2_template(false);
        let prompt = template
            .render(&[
                message("system", " Be brief. "),
                message("user", "Hi "),
                message("assistant", "Hello"),
                message("user", "2+3?"),
            ])
            .expect("alternating roles render");
        assert_eq!(
            prompt,
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] 2+3? [/INST]"
        );
    }

    #[test]
    fn leading_bos_dropped_when_tokenizer_adds_it() {
        let template = llama2_template(true);
        let prompt = template
            .render(&[message("user", "Hi")])
            .expect("one user turn renders");
        assert_eq!(prompt, "[INST] Hi [/INST]");
    }

    #[test]
    fn raise_exception_becomes_render_error() {
        let template = llama2_template(true);
        let err = template
            .render(&[message("user", "a"), message("user", "b")])
            .expect_err("two user turns in a row are rejected");
        assert_eq!(err.message, "roles must alternate user/assistant/user/...");
    }

    #[test]
    fn template_list_uses_default_entry() {
        let config = serde_json::json!({
            "chat_template": [
                {"name": "tool_use", "template": "tools"},
                {"name": "default", "template": "plain"},
            ]
        });
        let source = template_from_config(&config, Path::new("tokenizer_config.json"))
            .expect("a list with a default entry is valid");
        assert_eq!(source.as_deref(), Some("plain"));
    }

    #[test]
    fn special_token_reads_added_token_object() {
        let config = serde_json::json!({"bos_token": {"content": "<s>", "lstrip": false}});
        let bos = special_token(&config, Path::new("tokenizer_config.json"), "bos_token")
            .expect("an object with content is valid");
        assert_eq!(bos, "<s>");
    }

    #[test]
    fn broken_template_names_its_file() {
        let err = ChatTemplate::from_source(
            "{% if %}".to_string(),
            String::new(),
            String::new(),
            PathBuf::from("/ckpt/tokenizer_config.json"),
            true,
        )
        .err()
        .expect("an empty if condition does not compile");
        assert!(
            err.to_string().contains("/ckpt/tokenizer_config.json"),
            "{err}"
        );
    }
}
