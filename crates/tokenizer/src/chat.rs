//! Chat templates: the Jinja template shipped with the model, rendered with minijinja and its
//! Python-compatibility methods (`.strip()`, `.startswith()`, ...) that Hugging Face templates use.

use minijinja::{context, Environment, Error, ErrorKind, Value};
use serde::Serialize;

use crate::TokenizerError;

/// One turn of a conversation.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Renders `template` as `transformers` does (`trim_blocks` and `lstrip_blocks` on, the special
/// tokens as variables); `enable_thinking`, when given, is passed as the variable of that name
/// (Qwen3's templates open an empty think block when it is false), else left undefined.
pub(crate) fn render(
    template: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
    enable_thinking: Option<bool>,
    bos_token: Option<&str>,
    eos_token: Option<&str>,
) -> Result<String, TokenizerError> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    let fail = |e: Error| TokenizerError::Template(e.to_string());
    env.add_template("chat", template).map_err(fail)?;
    env.get_template("chat")
        .map_err(fail)?
        .render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            enable_thinking => enable_thinking.map_or(Value::UNDEFINED, Value::from),
            bos_token => bos_token.unwrap_or_default(),
            eos_token => eos_token.unwrap_or_default(),
        })
        .map_err(fail)
}
