//! Text ↔ token ids for momentkv models, from a Hugging Face directory (`tokenizer.json`,
//! `tokenizer_config.json`) or from GGUF metadata (byte-level BPE rebuilt the way llama.cpp reads
//! it), plus the model's chat template.

mod chat;
mod error;
mod gguf;

use std::path::Path;

pub use chat::ChatMessage;
pub use error::TokenizerError;
use serde::Deserialize;

/// A tokenizer with the special tokens and chat template that generation needs.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos_token: Option<String>,
    eos_token: Option<String>,
    chat_template: Option<String>,
}

/// The fields of `tokenizer_config.json` that momentkv reads.
#[derive(Deserialize, Default)]
struct TokenizerConfig {
    #[serde(default, deserialize_with = "token_text")]
    bos_token: Option<String>,
    #[serde(default, deserialize_with = "token_text")]
    eos_token: Option<String>,
    #[serde(default)]
    chat_template: Option<ChatTemplateField>,
}

/// `chat_template` is a string, or a list of named templates of which "default" is used.
#[derive(Deserialize)]
#[serde(untagged)]
enum ChatTemplateField {
    One(String),
    Named(Vec<NamedTemplate>),
}

#[derive(Deserialize)]
struct NamedTemplate {
    name: String,
    template: String,
}

/// Special tokens appear as a plain string or as an `AddedToken` object with a `content` field.
fn token_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Token {
        Text(String),
        Added { content: String },
    }
    Ok(Option::<Token>::deserialize(d)?.map(|t| match t {
        Token::Text(s) | Token::Added { content: s } => s,
    }))
}

impl Tokenizer {
    /// Loads `tokenizer.json` and, when present, `tokenizer_config.json` from a model directory.
    pub fn from_hf_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(TokenizerError::Missing(path));
        }
        let inner =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| TokenizerError::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let config_path = dir.join("tokenizer_config.json");
        let config: TokenizerConfig = match std::fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| TokenizerError::Invalid {
                path: config_path,
                reason: e.to_string(),
            })?,
            Err(_) => TokenizerConfig::default(),
        };
        let chat_template = config.chat_template.and_then(|t| match t {
            ChatTemplateField::One(s) => Some(s),
            ChatTemplateField::Named(list) => list
                .into_iter()
                .find(|t| t.name == "default")
                .map(|t| t.template),
        });
        Ok(Self {
            inner,
            bos_token: config.bos_token,
            eos_token: config.eos_token,
            chat_template,
        })
    }

    /// Rebuilds the tokenizer described by a GGUF file's `tokenizer.*` metadata.
    pub fn from_gguf(file: &momentkv_gguf::GgufFile) -> Result<Self, TokenizerError> {
        gguf::from_gguf(file)
    }

    /// Encodes text to ids. `add_special_tokens` applies the tokenizer's post-processor (a BOS
    /// token for models that want one); chat prompts already spell their special tokens.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Decodes ids to text, dropping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| TokenizerError::Decode(e.to_string()))
    }

    /// An incremental decoder: feed ids one at a time, get the text they complete.
    pub fn stream(&self) -> TextStream<'_> {
        TextStream(self.inner.decode_stream(true))
    }

    /// The id of a token spelled exactly `token`.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Renders `messages` with the model's chat template, ending with the assistant's turn opener
    /// when `add_generation_prompt` is set.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        self.render_chat(messages, add_generation_prompt, None)
    }

    /// [`Tokenizer::apply_chat_template`] with the template's `enable_thinking` switch set, as
    /// `transformers` passes `apply_chat_template(..., enable_thinking=...)` on to the template
    /// (kvpress's pipeline passes `False`); templates without the switch ignore it.
    pub fn apply_chat_template_thinking(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        enable_thinking: bool,
    ) -> Result<String, TokenizerError> {
        self.render_chat(messages, add_generation_prompt, Some(enable_thinking))
    }

    fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        enable_thinking: Option<bool>,
    ) -> Result<String, TokenizerError> {
        let template = self
            .chat_template
            .as_deref()
            .ok_or(TokenizerError::NoChatTemplate)?;
        chat::render(
            template,
            messages,
            add_generation_prompt,
            enable_thinking,
            self.bos_token.as_deref(),
            self.eos_token.as_deref(),
        )
    }
}

/// Incremental detokenization: emits text only once it is valid UTF-8, so a multi-byte character
/// split across tokens prints whole.
pub struct TextStream<'a>(
    tokenizers::DecodeStream<
        'a,
        tokenizers::ModelWrapper,
        tokenizers::NormalizerWrapper,
        tokenizers::PreTokenizerWrapper,
        tokenizers::PostProcessorWrapper,
        tokenizers::DecoderWrapper,
    >,
);

impl TextStream<'_> {
    /// Adds one id; returns the newly completed text, if any.
    pub fn step(&mut self, id: u32) -> Result<Option<String>, TokenizerError> {
        self.0
            .step(id)
            .map_err(|e| TokenizerError::Decode(e.to_string()))
    }
}
