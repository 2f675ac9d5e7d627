//! Variable tracking (RULER's `variable_tracking.py`, one chain of four hops): assignments
//! `VAR B = VAR A` hidden among filler lines; the answer is every variable holding the chain's
//! value. A solved example of about 500 tokens comes first, its names made afresh per sample.

use std::ops::RangeInclusive;

use crate::fit::fit;
use crate::rng::Rng;
use crate::sample::Draft;
use crate::task::Task;
use crate::templates::{fill, VT};

/// One line of filler.
const NOISE: &str =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.\n";

/// Variables in the chain: four hops.
const VARIABLES: usize = 5;

/// The fewest filler lines. RULER splits the filler into sentences when it has no more lines
/// than the chain, which only happens in prompts far too short to matter.
const MIN_NOISES: usize = VARIABLES + 1;

/// The example's size: RULER builds it as a sample of a 500-token task.
const EXAMPLE_TARGET: usize = 500;

/// The random stream of a seed that the example is drawn from.
const EXAMPLE_STREAM: u64 = 1;

const UPPERCASE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A chain of assignments and where its lines go.
struct Chain {
    names: Vec<String>,
    /// Five digits (`np.random.randint(10000, 99999)`).
    value: String,
    /// The draws that depend on the size: the lines' positions.
    rng: Rng,
}

impl Chain {
    /// A chain of [`VARIABLES`] distinct names of `letters` uppercase letters.
    fn new(rng: &mut Rng, letters: usize) -> Self {
        let mut names: Vec<String> = Vec::with_capacity(VARIABLES);
        while names.len() < VARIABLES {
            let name = rng.letters(UPPERCASE, letters);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let value = rng.between(10_000, 99_998).to_string();
        Self {
            names,
            value,
            rng: rng.clone(),
        }
    }

    /// `VAR A = 12345`, then `VAR B = VAR A ` and so on (with RULER's trailing space).
    fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!("VAR {} = {}", self.names[0], self.value)];
        lines.extend(
            self.names
                .windows(2)
                .map(|pair| format!("VAR {} = VAR {} ", pair[1], pair[0])),
        );
        lines
    }

    /// The prompt with `noises` filler lines, the chain's lines in order among them.
    fn prompt(&self, noises: usize) -> String {
        let mut at = self.rng.clone().sample(noises, VARIABLES);
        at.sort_unstable();
        let lines = self.lines();
        let mut chain = at.iter().zip(&lines).peekable();
        let mut sentences: Vec<&str> = Vec::with_capacity(noises + VARIABLES);
        for i in 0..noises {
            if let Some((_, line)) = chain.next_if(|&(&position, _)| position == i) {
                sentences.push(line);
            }
            sentences.push(NOISE);
        }
        let context = sentences.join(" ").replace(". \n", ".\n");
        fill(
            VT,
            &[
                ("context", &context),
                ("query", &self.value),
                ("num_v", &VARIABLES.to_string()),
            ],
        )
    }
}

/// RULER's example: a chain of three-letter names in a prompt of about 500 tokens, then its
/// answer. Drawn from the seed alone, so every sample shares it.
fn example(seed: u64, count_tokens: &dyn Fn(&str) -> usize) -> String {
    let mut rng = Rng::derive(seed, &[Task::Vt as u64, EXAMPLE_STREAM]);
    let chain = Chain::new(&mut rng, 3);
    let budget = EXAMPLE_TARGET - Task::Vt.tokens_to_generate();
    let prompt = fit(
        MIN_NOISES..=EXAMPLE_TARGET,
        budget,
        |n| chain.prompt(n),
        count_tokens,
    )
    .map_or_else(|_| chain.prompt(MIN_NOISES), |fitted| fitted.prompt);
    format!("{prompt} {}\n\n", chain.names.join(" "))
}

/// RULER's `randomize_icl`: each name of the example's answer (after `they are: `) replaced,
/// wherever it occurs, by new random letters of the same length.
fn rename(example: &str, rng: &mut Rng) -> String {
    const MARKER: &str = "they are: ";
    let names: Vec<&str> = example
        .find(MARKER)
        .map(|at| example[at + MARKER.len()..].split_whitespace().collect())
        .unwrap_or_default();
    names.into_iter().fold(example.to_string(), |text, name| {
        text.replace(name, &rng.letters(UPPERCASE, name.len()))
    })
}

/// A vt sample with its example and chain drawn.
pub(crate) struct Vt {
    /// ` {example}\n\n`, put before the prompt.
    example: String,
    chain: Chain,
    sizes: RangeInclusive<usize>,
}

impl Vt {
    pub fn new(
        target: usize,
        seed: u64,
        mut rng: Rng,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Self {
        let example = format!(" {}\n\n", rename(&example(seed, count_tokens), &mut rng));
        Self {
            example,
            chain: Chain::new(&mut rng, 5),
            sizes: MIN_NOISES..=target.max(MIN_NOISES),
        }
    }
}

impl Draft for Vt {
    fn sizes(&self) -> RangeInclusive<usize> {
        self.sizes.clone()
    }

    fn prompt(&self, noises: usize) -> String {
        format!("{}{}", self.example, self.chain.prompt(noises))
    }

    fn outputs(self) -> Vec<String> {
        self.chain.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_is_laid_out_like_rulers() {
        let mut rng = Rng::new(1);
        let chain = Chain::new(&mut rng, 5);
        let prompt = chain.prompt(6);
        let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| chain.names[i].as_str());
        let v = &chain.value;
        assert_eq!(prompt.matches(NOISE).count(), 6);
        assert!(prompt.starts_with(
            "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n"
        ));
        let order: Vec<usize> = [
            format!("VAR {a} = {v} "),
            format!("VAR {b} = VAR {a}  "),
            format!("VAR {c} = VAR {b}  "),
            format!("VAR {d} = VAR {c}  "),
            format!("VAR {e} = VAR {d}  "),
        ]
        .iter()
        .map(|line| prompt.find(line.as_str()).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{prompt}");
        assert!(prompt.ends_with(&format!(
            "again.\n\nQuestion: Find all variables that are assigned the value {v} in the text above. Answer: According to the chain(s) of variable assignment in the text above, 5 variables are assgined the value {v}, they are: "
        )));
        assert!((10_000..=99_998).contains(&v.parse::<u32>().unwrap()));
    }

    #[test]
    fn renaming_replaces_every_answer_name_everywhere() {
        let example = "VAR ABC = 123 x VAR DEF = VAR ABC  y, they are:  ABC DEF\n\n";
        let renamed = rename(example, &mut Rng::new(3));
        assert!(
            !renamed.contains("ABC") && !renamed.contains("DEF"),
            "{renamed}"
        );
        let names: Vec<&str> = renamed
            .rsplit("they are:  ")
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names
            .iter()
            .all(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_uppercase())));
        assert_eq!(
            renamed,
            format!(
                "VAR {0} = 123 x VAR {1} = VAR {0}  y, they are:  {0} {1}\n\n",
                names[0], names[1]
            )
        );
    }
}
