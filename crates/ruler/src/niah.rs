//! Needle in a haystack (RULER's `niah.py`), the eight `niah_*` tasks: key-value needles hidden
//! in essays, in repeated filler lines, or among other needles; the prompt asks for the values
//! of some keys.

use std::ops::RangeInclusive;

use crate::error::Error;
use crate::essays::Essays;
use crate::rng::{shuffle_fixed, Rng};
use crate::sample::Draft;
use crate::sources::Sources;
use crate::task::Task;
use crate::templates::{fill, NIAH, NIAH_NEEDLE};
use crate::words::WordLists;

/// The filler line of the `repeat` haystack.
const REPEAT_LINE: &str =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

/// The depths (percent of the essay's sentences) needles are placed at:
/// `np.round(np.linspace(0, 100, 40)).astype(int)`.
pub const DEPTHS: [u8; 40] = [
    0, 3, 5, 8, 10, 13, 15, 18, 21, 23, 26, 28, 31, 33, 36, 38, 41, 44, 46, 49, 51, 54, 56, 59, 62,
    64, 67, 69, 72, 74, 77, 79, 82, 85, 87, 90, 92, 95, 97, 100,
];

/// The sentence a needle goes before when the essay has `sentences` sentences: RULER's
/// `int(len(document_sents) * (depth / 100))`, in the same floating point.
pub fn depth_position(sentences: usize, depth: u8) -> usize {
    (sentences as f64 * (f64::from(depth) / 100.0)) as usize
}

/// What the haystack is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Haystack {
    /// Paul Graham's essays; the unit is a word, needles go between sentences at [`DEPTHS`].
    Essay,
    /// [`REPEAT_LINE`] again and again; the unit is a line.
    Repeat,
    /// Other needles, with random keys and values; the unit is a line.
    Needle,
}

/// What keys and values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `adjective-noun`.
    Words,
    /// Seven digits.
    Numbers,
    /// Version 4 UUIDs.
    Uuids,
}

impl Kind {
    /// The plural name the template and the needles use.
    fn plural(self) -> &'static str {
        match self {
            Kind::Words => "words",
            Kind::Numbers => "numbers",
            Kind::Uuids => "uuids",
        }
    }
}

/// One niah task's settings (`synthetic.yaml`).
#[derive(Debug, Clone, Copy)]
struct Config {
    haystack: Haystack,
    key: Kind,
    value: Kind,
    /// Keys with needles (at least `queries`).
    keys: usize,
    /// Values (needles) per key.
    values: usize,
    /// Keys asked for.
    queries: usize,
}

impl Config {
    fn of(task: Task) -> Self {
        let (haystack, key, value, keys, values, queries) = match task {
            Task::NiahSingle1 => (Haystack::Repeat, Kind::Words, Kind::Numbers, 1, 1, 1),
            Task::NiahSingle3 => (Haystack::Essay, Kind::Words, Kind::Uuids, 1, 1, 1),
            Task::NiahMultikey1 => (Haystack::Essay, Kind::Words, Kind::Numbers, 4, 1, 1),
            Task::NiahMultikey2 => (Haystack::Needle, Kind::Words, Kind::Numbers, 1, 1, 1),
            Task::NiahMultikey3 => (Haystack::Needle, Kind::Uuids, Kind::Uuids, 1, 1, 1),
            Task::NiahMultivalue => (Haystack::Essay, Kind::Words, Kind::Numbers, 1, 4, 1),
            Task::NiahMultiquery => (Haystack::Essay, Kind::Words, Kind::Numbers, 4, 1, 4),
            _ => (Haystack::Essay, Kind::Words, Kind::Numbers, 1, 1, 1),
        };
        Self {
            haystack,
            key,
            value,
            keys,
            values,
            queries,
        }
    }
}

/// How keys or values are drawn: a [`Kind`] with the data it needs.
#[derive(Clone, Copy)]
enum Draw<'a> {
    Words(&'a WordLists),
    Numbers,
    Uuids,
}

impl<'a> Draw<'a> {
    fn new(kind: Kind, task: Task, sources: &'a Sources) -> Result<Self, Error> {
        Ok(match kind {
            Kind::Words => Draw::Words(sources.words(task)?),
            Kind::Numbers => Draw::Numbers,
            Kind::Uuids => Draw::Uuids,
        })
    }

    /// How many distinct keys or values there are (at least).
    fn space(self) -> usize {
        match self {
            Draw::Words(words) => words.keys(),
            Draw::Numbers => 9_000_000,
            Draw::Uuids => usize::MAX,
        }
    }

    /// A random key or value: `random.choice(words)`, `random.randint(10**6, 10**7 - 1)` or a uuid.
    fn draw(self, rng: &mut Rng) -> String {
        match self {
            Draw::Words(words) => words.key(rng),
            Draw::Numbers => rng.between(1_000_000, 9_999_999).to_string(),
            Draw::Uuids => uuid4(rng),
        }
    }
}

/// Python's `str(uuid.UUID(int=random.getrandbits(128), version=4))`.
fn uuid4(rng: &mut Rng) -> String {
    let mut bits = rng.next_u128();
    bits = (bits & !(0xc000 << 48)) | (0x8000 << 48);
    bits = (bits & !(0xf000 << 64)) | (0x4000 << 64);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A niah sample with its needles, depths and question drawn.
pub(crate) struct Niah<'a> {
    config: Config,
    essays: Option<&'a Essays>,
    key: Draw<'a>,
    value: Draw<'a>,
    /// The template with RULER's singular rewrite applied where one value is asked for.
    template: String,
    /// `numbers` or `uuids`, singular where the template is.
    value_name: &'static str,
    /// In the order they go into the haystack.
    needles: Vec<String>,
    /// The needles' keys, all different; the `needle` haystack's distractors avoid them.
    keys: Vec<String>,
    /// Where the needles go (essay): one of [`DEPTHS`] each, sorted.
    depths: Vec<u8>,
    query: String,
    answers: Vec<String>,
    /// The draws that depend on the size: distractor needles and line positions.
    rng: Rng,
    sizes: RangeInclusive<usize>,
}

impl<'a> Niah<'a> {
    pub fn new(
        task: Task,
        sources: &'a Sources,
        target: usize,
        seed: u64,
        mut rng: Rng,
    ) -> Result<Self, Error> {
        let config = Config::of(task);
        let essays = match config.haystack {
            Haystack::Essay => Some(sources.essays(task)?),
            _ => None,
        };
        let key = Draw::new(config.key, task, sources)?;
        let value = Draw::new(config.value, task, sources)?;
        let distractors = usize::from(config.haystack == Haystack::Needle);
        if key.space() < config.keys + distractors {
            return Err(Error::Invalid {
                expected: "word lists with enough adjective-noun keys",
                reason: format!(
                    "they give {} keys; {task} needs {} different ones",
                    key.space(),
                    config.keys + distractors
                ),
            });
        }
        let mut keys: Vec<String> = Vec::new();
        let mut values = Vec::new();
        let mut needles = Vec::new();
        while keys.len() < config.keys {
            let drawn = key.draw(&mut rng);
            if keys.contains(&drawn) {
                continue;
            }
            let key_values: Vec<String> =
                (0..config.values).map(|_| value.draw(&mut rng)).collect();
            for v in &key_values {
                needles.push(needle(config.value, &drawn, v));
            }
            keys.push(drawn);
            values.push(key_values);
        }
        shuffle_fixed(seed, &mut needles);
        let mut depths: Vec<u8> = rng
            .sample(DEPTHS.len(), needles.len())
            .into_iter()
            .map(|i| DEPTHS[i])
            .collect();
        depths.sort_unstable();
        let asked = rng.sample(config.keys, config.queries);
        let queries: Vec<&str> = asked.iter().map(|&i| keys[i].as_str()).collect();
        let query = match queries.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
            _ => queries.concat(),
        };
        let answers = asked.iter().flat_map(|&i| values[i].clone()).collect();
        let mut template = NIAH.to_string();
        let mut value_name = config.value.plural();
        if config.queries * config.values == 1 {
            for (from, to) in [
                ("Some", "A"),
                ("are all", "is"),
                ("are", "is"),
                ("answers", "answer"),
            ] {
                template = template.replace(from, to);
            }
            value_name = &value_name[..value_name.len() - 1];
        }
        let sizes = match essays {
            Some(essays) => 1..=essays.words(),
            None => needles.len()..=target.max(needles.len()),
        };
        Ok(Self {
            config,
            essays,
            key,
            value,
            template,
            value_name,
            needles,
            keys,
            depths,
            query,
            answers,
            rng,
            sizes,
        })
    }

    /// The essay's first `words` words with the needles between its sentences.
    fn essay_context(&self, essays: &Essays, words: usize) -> String {
        let cut = essays.cut(words);
        let mut positions = vec![0];
        positions.extend(
            self.depths
                .iter()
                .map(|&d| depth_position(cut.sentences(), d)),
        );
        positions.push(cut.sentences());
        let mut pieces = Vec::with_capacity(2 * self.needles.len() + 1);
        for (i, pair) in positions.windows(2).enumerate() {
            pieces.push(cut.span(pair[0], pair[1]));
            if let Some(needle) = self.needles.get(i) {
                pieces.push(needle);
            }
        }
        pieces.join(" ")
    }

    /// `lines` lines of filler (or distractor needles), the needles inserted among them.
    fn line_context(&self, lines: usize) -> String {
        let mut rng = self.rng.clone();
        let mut haystack: Vec<String> = match self.config.haystack {
            Haystack::Needle => (0..lines)
                .map(|_| {
                    let key = loop {
                        let key = self.key.draw(&mut rng);
                        if !self.keys.contains(&key) {
                            break key;
                        }
                    };
                    needle(self.config.value, &key, &self.value.draw(&mut rng))
                })
                .collect(),
            _ => vec![REPEAT_LINE.to_string(); lines],
        };
        let mut at = rng.sample(lines, self.needles.len());
        at.sort_unstable_by(|a, b| b.cmp(a));
        for (&index, needle) in at.iter().zip(&self.needles) {
            haystack.insert(index, needle.clone());
        }
        haystack.join("\n")
    }
}

/// `One of the special magic numbers for {key} is: {value}.`
fn needle(value: Kind, key: &str, value_text: &str) -> String {
    fill(
        NIAH_NEEDLE,
        &[
            ("type_needle_v", value.plural()),
            ("key", key),
            ("value", value_text),
        ],
    )
}

impl Draft for Niah<'_> {
    fn sizes(&self) -> RangeInclusive<usize> {
        self.sizes.clone()
    }

    fn prompt(&self, size: usize) -> String {
        let context = match self.essays {
            Some(essays) => self.essay_context(essays, size),
            None => self.line_context(size),
        };
        fill(
            &self.template,
            &[
                ("type_needle_v", self.value_name),
                ("context", &context),
                ("query", &self.query),
            ],
        )
    }

    fn outputs(self) -> Vec<String> {
        self.answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_are_rulers_rounded_linspace() {
        let linspace: Vec<u8> = (0..40)
            .map(|i| (100.0 * f64::from(i) / 39.0).round() as u8)
            .collect();
        assert_eq!(DEPTHS.to_vec(), linspace);
    }

    #[test]
    fn depth_positions_floor_like_python() {
        assert_eq!(
            depth_position(100, 29),
            28,
            "100 * 0.29 is 28.999... in floating point"
        );
        assert_eq!(depth_position(57, 51), 29);
        assert_eq!(depth_position(57, 100), 57);
        assert_eq!(depth_position(0, 49), 0);
    }

    #[test]
    fn uuids_are_version_4() {
        let mut rng = Rng::new(9);
        for _ in 0..100 {
            let id = uuid4(&mut rng);
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'), "{id}");
            assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
            assert!(id
                .chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        }
    }

    #[test]
    fn the_singular_rewrite_gives_rulers_single_needle_template() {
        let sources = Sources::default();
        let niah = Niah::new(Task::NiahMultikey3, &sources, 1000, 42, Rng::new(1)).unwrap();
        let expected = "A special magic uuid is hidden within the following text. Make sure to memorize it. I will quiz you about the uuid afterwards.\n{context}\nWhat is the special magic uuid for {query} mentioned in the provided text? The special magic uuid for {query} mentioned in the provided text is";
        assert_eq!(
            niah.template.replace("{type_needle_v}", niah.value_name),
            expected
        );
    }
}
