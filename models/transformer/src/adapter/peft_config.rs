//! `adapter_config.json` in Hugging Face PEFT's layout: what momentkv writes, and which files it
//! accepts (plain LoRA on the seven projections; everything else is refused naming the key).

use std::path::Path;

use serde_json::{json, Map, Value};

use super::{AdapterError, AdapterTarget, LoraConfig};

/// The name of the configuration file of a PEFT adapter directory.
pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";

/// The PEFT release whose `adapter_config.json` fields momentkv writes.
const PEFT_VERSION: &str = "0.21.2";

/// Keys that make an adapter more than plain LoRA, refused when set (anything but null, false,
/// `{}` or `[]`), each with the reason.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "alora_invocation_tokens",
        "activated LoRA applies the adapter only from its invocation tokens on",
    ),
    ("alpha_pattern", "alpha must be the same for every module"),
    ("arrow_config", "Arrow routing is not supported"),
    ("exclude_modules", "every layer's targets are adapted"),
    (
        "fan_in_fan_out",
        "only the [out, in] weight layout is supported",
    ),
    ("kasa_config", "KaSA is not supported"),
    ("layer_replication", "layer replication is not supported"),
    ("layers_pattern", "every layer's targets are adapted"),
    ("layers_to_transform", "every layer's targets are adapted"),
    ("loftq_config", "LoftQ rewrites the base weights"),
    ("lora_bias", "lora_B has no bias"),
    ("lora_ga_config", "LoRA-GA rewrites the base weights"),
    ("megatron_config", "Megatron layers are not supported"),
    ("modules_to_save", "fully trained modules are not supported"),
    ("monteclora_config", "MonteCLoRA is not supported"),
    ("rank_pattern", "the rank must be the same for every module"),
    (
        "target_parameters",
        "only modules are adapted, not parameters",
    ),
    (
        "trainable_token_indices",
        "trainable tokens are not supported",
    ),
    ("use_bdlora", "block-diagonal LoRA is not supported"),
    ("use_dora", "DoRA is not supported"),
    ("use_qalora", "QALoRA is not supported"),
];

/// Keys that do not change what a plain LoRA adapter computes (initialisation-only settings,
/// bookkeeping, training-time memory savings).
const IGNORED: &[&str] = &[
    "auto_mapping",
    "base_model_name_or_path",
    "corda_config",
    "ensure_weight_tying",
    "eva_config",
    "inference_mode",
    "megatron_core",
    "peft_version",
    "qalora_group_size",
    "revision",
    "velora_config",
];

/// Keys read into the [`LoraConfig`] or checked on their own.
const READ: &[&str] = &[
    "bias",
    "init_lora_weights",
    "lora_alpha",
    "lora_dropout",
    "peft_type",
    "r",
    "target_modules",
    "task_type",
    "use_rslora",
];

/// `init_lora_weights` values that leave the base weights as the checkpoint has them.
const BASE_PRESERVING_INITS: &[&str] = &["gaussian", "eva", "orthogonal"];

/// Whether momentkv knows what `key` means.
fn known(key: &str) -> bool {
    READ.contains(&key) || IGNORED.contains(&key) || UNSUPPORTED.iter().any(|&(k, _)| k == key)
}

/// Whether a value is set: anything but null, false, `{}` or `[]`.
fn is_set(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        _ => true,
    }
}

/// Reads `adapter_config.json` at `path` as a [`LoraConfig`].
///
/// Accepted: `peft_type` `"LORA"`, `task_type` `"CAUSAL_LM"` or null, `bias` `"none"`,
/// `target_modules` a list of the seven projection names or `"all-linear"` (all seven), an
/// initialisation that keeps the base weights, and no key of [`UNSUPPORTED`] set; a key PEFT
/// 0.21.2 does not write must not be set either, since what it would change is unknown. Missing
/// `r`, `lora_alpha`, `lora_dropout` and `use_rslora` take PEFT's defaults (8, 8, 0, false).
pub(crate) fn read_config(path: &Path) -> Result<LoraConfig, AdapterError> {
    let text = std::fs::read_to_string(path).map_err(|e| AdapterError::file(path, e))?;
    let json: Map<String, Value> = serde_json::from_str(&text)
        .map_err(|e| AdapterError::file(path, format!("is not a JSON object: {e}")))?;
    ConfigFile { path, json }.lora()
}

/// A parsed `adapter_config.json` and where it came from, for errors naming both.
struct ConfigFile<'a> {
    path: &'a Path,
    json: Map<String, Value>,
}

impl ConfigFile<'_> {
    /// The value of `key`, `None` when absent or null.
    fn get(&self, key: &str) -> Option<&Value> {
        self.json.get(key).filter(|value| !value.is_null())
    }

    fn field(&self, key: &str, reason: String) -> AdapterError {
        AdapterError::Field {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            reason,
        }
    }

    fn unsupported(&self, key: &str, value: &Value, reason: &'static str) -> AdapterError {
        const SHOWN: usize = 80;
        let mut value = value.to_string();
        if value.len() > SHOWN {
            let end = (0..=SHOWN).rev().find(|&i| value.is_char_boundary(i));
            value.truncate(end.unwrap_or(0));
            value.push_str("...");
        }
        AdapterError::Unsupported {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            value,
            reason,
        }
    }

    /// Refuses `key` unless absent, null or one of `allowed`.
    fn require(
        &self,
        key: &str,
        allowed: &[&str],
        reason: &'static str,
    ) -> Result<(), AdapterError> {
        match self.get(key) {
            Some(value) if !value.as_str().is_some_and(|v| allowed.contains(&v)) => {
                Err(self.unsupported(key, value, reason))
            }
            _ => Ok(()),
        }
    }

    fn lora(&self) -> Result<LoraConfig, AdapterError> {
        match self.get("peft_type") {
            None => return Err(self.field("peft_type", "is missing".into())),
            Some(value) if value.as_str() != Some("LORA") => {
                return Err(self.unsupported("peft_type", value, "momentkv reads LORA adapters"));
            }
            Some(_) => {}
        }
        self.require(
            "task_type",
            &["CAUSAL_LM"],
            "momentkv reads CAUSAL_LM adapters",
        )?;
        self.require("bias", &["none"], "momentkv adapts no biases")?;
        if let Some(init) = self.get("init_lora_weights") {
            let keeps_base = init.is_boolean()
                || init
                    .as_str()
                    .is_some_and(|v| BASE_PRESERVING_INITS.contains(&v));
            if !keeps_base {
                return Err(self.unsupported(
                    "init_lora_weights",
                    init,
                    "this initialisation rewrites the base weights (save the adapter converted \
                     to plain LoRA)",
                ));
            }
        }
        for &(key, reason) in UNSUPPORTED {
            if let Some(value) = self.json.get(key).filter(|v| is_set(v)) {
                return Err(self.unsupported(key, value, reason));
            }
        }
        if let Some((key, value)) = self.json.iter().find(|(k, v)| is_set(v) && !known(k)) {
            return Err(self.unsupported(
                key,
                value,
                "the key is unknown to momentkv, which cannot tell what it changes",
            ));
        }
        let config = LoraConfig::new(self.rank()?, self.number("lora_alpha", 8.0)?)
            .with_dropout(self.number("lora_dropout", 0.0)?)
            .with_targets(self.targets()?)
            .with_use_rslora(self.flag("use_rslora")?);
        config
            .validate()
            .map_err(|e| AdapterError::file(self.path, e))?;
        Ok(config)
    }

    fn rank(&self) -> Result<usize, AdapterError> {
        match self.get("r") {
            None => Ok(8),
            Some(value) => value
                .as_u64()
                .and_then(|r| usize::try_from(r).ok())
                .ok_or_else(|| self.field("r", format!("is {value}, expected a positive integer"))),
        }
    }

    fn number(&self, key: &str, default: f64) -> Result<f64, AdapterError> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_f64()
                .ok_or_else(|| self.field(key, format!("is {value}, expected a number"))),
        }
    }

    fn flag(&self, key: &str) -> Result<bool, AdapterError> {
        match self.get(key) {
            None => Ok(false),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| self.field(key, format!("is {value}, expected true or false"))),
        }
    }

    /// `target_modules` as projections in canonical order.
    fn targets(&self) -> Result<Vec<AdapterTarget>, AdapterError> {
        const NAMES: &str = "the targets are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj \
                             and down_proj";
        let items = match self.get("target_modules") {
            None => {
                let reason = format!("is missing; list the projections to adapt ({NAMES})");
                return Err(self.field("target_modules", reason));
            }
            Some(Value::String(all)) if all == "all-linear" => {
                return Ok(AdapterTarget::ALL.to_vec())
            }
            Some(Value::Array(items)) => items,
            Some(value) => {
                return Err(self.unsupported(
                    "target_modules",
                    value,
                    "a regular expression is not supported; list the projections",
                ))
            }
        };
        let mut targets = items
            .iter()
            .map(|item| {
                item.as_str()
                    .and_then(|name| name.parse().ok())
                    .ok_or_else(|| self.unsupported("target_modules", item, NAMES))
            })
            .collect::<Result<Vec<AdapterTarget>, AdapterError>>()?;
        targets.sort();
        targets.dedup();
        Ok(targets)
    }
}

/// A JSON number for `value`: an integer when it is one (as Python writes `lora_alpha = 8`).
fn json_number(value: f64) -> Value {
    const EXACT: f64 = (1u64 << 53) as f64;
    if value.fract() == 0.0 && value.abs() < EXACT {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// `adapter_config.json` for `config` as PEFT 0.21.2's `save_pretrained` writes it: every field it
/// writes, keys sorted, indented by two spaces, the fields momentkv does not use at PEFT's
/// defaults; `base_model` is `base_model_name_or_path`.
pub(crate) fn config_json(config: &LoraConfig, base_model: Option<&str>) -> String {
    let targets: Vec<&str> = config.targets.iter().map(|t| t.name()).collect();
    let fields = [
        ("alora_invocation_tokens", Value::Null),
        ("alpha_pattern", json!({})),
        ("arrow_config", Value::Null),
        ("auto_mapping", Value::Null),
        ("base_model_name_or_path", json!(base_model)),
        ("bias", json!("none")),
        ("corda_config", Value::Null),
        ("ensure_weight_tying", json!(false)),
        ("eva_config", Value::Null),
        ("exclude_modules", Value::Null),
        ("fan_in_fan_out", json!(false)),
        ("inference_mode", json!(true)),
        ("init_lora_weights", json!(true)),
        ("kasa_config", Value::Null),
        ("layer_replication", Value::Null),
        ("layers_pattern", Value::Null),
        ("layers_to_transform", Value::Null),
        ("loftq_config", json!({})),
        ("lora_alpha", json_number(config.alpha)),
        ("lora_bias", json!(false)),
        ("lora_dropout", json!(config.dropout)),
        ("lora_ga_config", Value::Null),
        ("megatron_config", Value::Null),
        ("megatron_core", json!("megatron.core")),
        ("modules_to_save", Value::Null),
        ("monteclora_config", Value::Null),
        ("peft_type", json!("LORA")),
        ("peft_version", json!(PEFT_VERSION)),
        ("qalora_group_size", json!(16)),
        ("r", json!(config.rank)),
        ("rank_pattern", json!({})),
        ("revision", Value::Null),
        ("target_modules", json!(targets)),
        ("target_parameters", Value::Null),
        ("task_type", json!("CAUSAL_LM")),
        ("trainable_token_indices", Value::Null),
        ("use_bdlora", Value::Null),
        ("use_dora", json!(false)),
        ("use_qalora", json!(false)),
        ("use_rslora", json!(config.use_rslora)),
        ("velora_config", Value::Null),
    ];
    let fields: Map<String, Value> = fields
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
    format!("{:#}", Value::Object(fields))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// `read_config` of `json` written to a scratch file.
    fn read(json: &Value) -> Result<LoraConfig, AdapterError> {
        static FILES: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "momentkv-adapter-config-{}-{}.json",
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, json.to_string()).unwrap();
        let config = read_config(&path);
        std::fs::remove_file(&path).ok();
        config
    }

    /// What momentkv writes for `config`, as JSON.
    fn written(config: &LoraConfig) -> Value {
        serde_json::from_str(&config_json(config, Some("base"))).unwrap()
    }

    #[test]
    fn written_configs_read_back() {
        for config in [
            LoraConfig::new(4, 8.0),
            LoraConfig::new(16, 0.5)
                .with_dropout(0.05)
                .with_use_rslora(true)
                .with_targets(vec![AdapterTarget::QProj, AdapterTarget::DownProj]),
        ] {
            assert_eq!(read(&written(&config)).unwrap(), config);
        }
        let json = config_json(&LoraConfig::new(4, 8.0), None);
        assert!(json.starts_with("{\n  \"alora_invocation_tokens\": null,\n"));
        assert!(json.contains("\n  \"lora_alpha\": 8,\n  \"lora_bias\": false,\n"));
        assert!(json.contains("\n  \"base_model_name_or_path\": null,\n"));
    }

    #[test]
    fn peft_defaults_and_all_linear_are_understood() {
        let mut json = written(&LoraConfig::new(4, 8.0));
        let fields = json.as_object_mut().unwrap();
        for key in ["r", "lora_alpha", "lora_dropout", "use_rslora", "task_type"] {
            fields.remove(key);
        }
        fields.insert("target_modules".into(), json!("all-linear"));
        fields.insert("init_lora_weights".into(), json!("gaussian"));
        fields.insert("velora_config".into(), json!({"rank": 2}));
        fields.insert("future_setting".into(), Value::Null);
        assert_eq!(read(&json).unwrap(), LoraConfig::new(8, 8.0));
    }

    #[test]
    fn what_plain_lora_cannot_express_is_refused_naming_the_key() {
        let cases = [
            ("use_dora", json!(true), "use_dora = true is not supported"),
            (
                "rank_pattern",
                json!({"q_proj": 8}),
                "rank_pattern = {\"q_proj\":8}",
            ),
            ("bias", json!("all"), "bias = \"all\""),
            (
                "layers_to_transform",
                json!([0]),
                "layers_to_transform = [0]",
            ),
            ("modules_to_save", json!(["lm_head"]), "modules_to_save"),
            (
                "init_lora_weights",
                json!("pissa"),
                "rewrites the base weights",
            ),
            ("peft_type", json!("LOHA"), "peft_type = \"LOHA\""),
            ("task_type", json!("SEQ_CLS"), "task_type"),
            ("target_modules", json!(".*proj"), "a regular expression"),
            (
                "target_modules",
                json!(["q_proj", "lm_head"]),
                "\"lm_head\"",
            ),
            (
                "use_magic",
                json!(true),
                "use_magic = true is not supported: the key is unknown",
            ),
            ("r", json!("4"), "r is \"4\", expected a positive integer"),
            ("r", json!(0), "rank (0)"),
            ("lora_dropout", json!(1.5), "dropout (1.5)"),
        ];
        for (key, value, want) in cases {
            let mut json = written(&LoraConfig::new(4, 8.0));
            json.as_object_mut().unwrap().insert(key.into(), value);
            let err = read(&json).unwrap_err().to_string();
            assert!(
                err.contains(want)
                    && err.contains("momentkv-adapter-config-")
                    && !err.contains('\n'),
                "{key}: {err}"
            );
        }
        let err = read(&json!(["not", "an", "object"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a JSON object"), "{err}");
    }
}
