//! The checkpoint's `tokenizer.json`, read with the `tokenizers` crate.
//!
//! Prompts are encoded with the tokenizer's special tokens (LLaMA's
//! post-processor prepends `<s>`); completions are encoded without them, so
//! `prompt ++ completion` is what a trainer sees. Decoding skips special
//! tokens, and byte-fallback runs that are not valid UTF-8 decode to U+FFFD
//! as in Hugging Face.

use std::path::{Path, PathBuf};

/// Failure to load or run the tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot load tokenizer {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("cannot {action} with tokenizer {path}: {message}")]
    Run {
        action: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error(
        "no end-of-sequence token: neither config.json `eos_token_id` nor token `</s>` in {path}"
    )]
    NoEos { path: PathBuf },
}

/// A loaded tokenizer with the ids of its beginning and end tokens.
pub struct StudentTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    pub bos_id: Option<u32>,
    pub eos_id: u32,
}

impl StudentTokenizer {
    /// Loads `path`; `bos_id` and `eos_id` from config.json take precedence
    /// over the tokenizer's `<s>` and `</s>`.
    pub fn from_file(
        path: &Path,
        bos_id: Option<u32>,
        eos_id: Option<u32>,
    ) -> Result<Self, TokenizerError> {
        if !path.is_file() {
            return Err(TokenizerError::Load {
                path: path.to_owned(),
                message: "file not found".into(),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| TokenizerError::Load {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let bos_id = bos_id.or_else(|| inner.token_to_id("<s>"));
        let eos_id = eos_id
            .or_else(|| inner.token_to_id("</s>"))
            .ok_or_else(|| TokenizerError::NoEos {
                path: path.to_owned(),
            })?;
        Ok(Self {
            inner,
            path: path.to_owned(),
            bos_id,
            eos_id,
        })
    }

    /// Token ids of `text`; `add_special_tokens` adds `<s>` for LLaMA.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| self.run_error("encode", e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token strings of `ids` (e.g. `▁Ana`, `<0x5A>`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Text of `ids` with special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| self.run_error("decode", e))
    }

    fn run_error(&self, action: &'static str, e: tokenizers::Error) -> TokenizerError {
        TokenizerError::Run {
            action,
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}
