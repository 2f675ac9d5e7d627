//! Mutations of a seed: byte-level edits for every input, plus token-level edits for text.

use crate::rng::Rng;

/// Inputs never grow beyond this (seeds may be larger; they are then only shrunk or overwritten).
pub const MAX_INPUT: usize = 4 << 20;

/// Values that find off-by-one, sign and overflow mistakes in lengths, counts and offsets.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    8,
    16,
    32,
    64,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000, // 2^31
    0xffff_ffff, // u32::MAX
    0x1_0000_0000,
    0x100_0000_0000, // 2^40
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
];

/// Numbers to put in place of a number in text: beyond every integer type, negative, not finite.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "0.5",
    "-0.5",
    "1e-300",
    "1e308",
    "-1e308",
    "1e309",
    "-1e309",
    "1e999999",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "-Infinity",
    "127",
    "128",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "1099511627776",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1.7976931348623157e308",
    "4.9e-324",
    "0x10",
    "1_000",
    "00012",
    "",
];

/// Fragments of JSON and of policy specs that parsers branch on.
const TOKENS: &[&str] = &[
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "\\uffff",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "=",
    "+",
    "+moments",
    "null",
    "true",
    "false",
    "[]",
    "{}",
    "\"\"",
    "[[]]",
    "\n",
    "\r\n",
    " ",
    "\t",
    "\u{0}",
    "\u{feff}",
    "é",
    "\u{10ffff}",
    "\"type\":\"llama3\"",
    "\"rope_type\":\"linear\"",
    "\"rope_scaling\":{\"type\":\"llama3\",\"factor\":8}",
    "\"eos_token_id\":[1,2]",
    "\"index\":",
    "\"length\":",
    "\"outputs\":[\"a\"]",
    "\"input\":\"x\"",
    "\"num_key_value_heads\":0",
    "\"head_dim\":1",
    "\"hidden_act\":\"gelu\"",
    "\"mlp_bias\":true",
    "\"use_sliding_window\":true",
    "\"tie_word_embeddings\":true",
    "window=",
    "kernel=",
    "sinks=",
    "recent=",
    "order=2",
    "segment=16",
    "scorer=",
    "alpha=",
];

/// A new input from `seeds[i]`: 1 to 8 stacked edits (`text` adds the token-level ones).
pub fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], i: usize, text: bool) -> Vec<u8> {
    let mut data = seeds[i].clone();
    for _ in 0..rng.len_up_to(8) {
        edit(rng, &mut data, seeds, text);
    }
    if data.len() > MAX_INPUT.max(seeds[i].len()) {
        data.truncate(MAX_INPUT.max(seeds[i].len()));
    }
    data
}

fn edit(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>], text: bool) {
    let kinds = if text { 14 } else { 11 };
    match rng.below(kinds) {
        0 => flip_bit(rng, data),
        1 => {
            if let Some(at) = position(rng, data) {
                data[at] = rng.byte();
            }
        }
        2 | 3 => interesting(rng, data),
        4 => arithmetic(rng, data),
        5 => insert_random(rng, data),
        6 => delete(rng, data),
        7 => duplicate(rng, data),
        8 => {
            if !data.is_empty() {
                let keep = rng.below(data.len());
                data.truncate(keep);
            }
        }
        9 => splice(rng, data, seeds),
        10 => copy_within(rng, data),
        11 | 12 => replace_number(rng, data),
        _ => insert_token(rng, data),
    }
}

fn position(rng: &mut Rng, data: &[u8]) -> Option<usize> {
    (!data.is_empty()).then(|| rng.below(data.len()))
}

fn flip_bit(rng: &mut Rng, data: &mut [u8]) {
    if let Some(at) = position(rng, data) {
        data[at] ^= 1 << rng.below(8);
    }
}

/// An interesting value, little-endian, 1, 2, 4 or 8 bytes wide, usually at an offset aligned to
/// its width (where GGUF's fields often sit), sometimes anywhere.
fn interesting(rng: &mut Rng, data: &mut [u8]) {
    let width = 1usize << rng.below(4);
    if data.len() < width {
        return;
    }
    let mut at = rng.below(data.len() - width + 1);
    if !rng.one_in(4) {
        at -= at % width;
    }
    let mut value = *rng.pick(INTERESTING);
    if rng.one_in(4) {
        // The negative of it, as a two's-complement value of the field's width.
        value = value.wrapping_neg();
    }
    data[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

/// Adds or subtracts a small amount to a little-endian field of 1, 2, 4 or 8 bytes.
fn arithmetic(rng: &mut Rng, data: &mut [u8]) {
    let width = 1usize << rng.below(4);
    if data.len() < width {
        return;
    }
    let at = rng.below(data.len() - width + 1);
    let mut bytes = [0u8; 8];
    bytes[..width].copy_from_slice(&data[at..at + width]);
    let delta = 1 + rng.below(35) as u64;
    let value = u64::from_le_bytes(bytes);
    let value = if rng.one_in(2) {
        value.wrapping_add(delta)
    } else {
        value.wrapping_sub(delta)
    };
    data[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

fn insert_random(rng: &mut Rng, data: &mut Vec<u8>) {
    let at = rng.below(data.len() + 1);
    let len = rng.len_up_to(64);
    let fill: Vec<u8> = if rng.one_in(2) {
        (0..len).map(|_| rng.byte()).collect()
    } else {
        vec![rng.byte(); len]
    };
    data.splice(at..at, fill);
}

fn delete(rng: &mut Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let at = rng.below(data.len());
    let len = rng.len_up_to(data.len() - at);
    data.drain(at..at + len);
}

/// Repeats a range right after itself (a repeated record, key or line).
fn duplicate(rng: &mut Rng, data: &mut Vec<u8>) {
    if data.is_empty() || data.len() >= MAX_INPUT {
        return;
    }
    let at = rng.below(data.len());
    let len = rng.len_up_to((data.len() - at).min(MAX_INPUT - data.len()).max(1));
    let copy = data[at..at + len].to_vec();
    let times = if rng.one_in(8) { 1 + rng.below(16) } else { 1 };
    for _ in 0..times {
        if data.len() + copy.len() > MAX_INPUT {
            break;
        }
        data.splice(at + len..at + len, copy.iter().copied());
    }
}

/// Overwrites a range with another range of the same input.
fn copy_within(rng: &mut Rng, data: &mut [u8]) {
    if data.len() < 2 {
        return;
    }
    let from = rng.below(data.len());
    let to = rng.below(data.len());
    let len = rng.len_up_to(data.len() - from.max(to));
    data.copy_within(from..from + len, to);
}

/// Crossover: a prefix of this input, then a suffix of another seed.
fn splice(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let other = rng.pick(seeds);
    let cut = rng.below(data.len() + 1);
    let from = rng.below(other.len() + 1);
    let take = (other.len() - from).min(MAX_INPUT.saturating_sub(cut));
    data.truncate(cut);
    data.extend_from_slice(&other[from..from + take]);
}

/// Replaces one number of the text (a run of digits with its sign, point and exponent) by one of
/// [`NUMBERS`], or inserts one where there is none.
fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if !is_number_byte(data[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < data.len() && is_number_byte(data[i]) {
            i += 1;
        }
        if data[start..i].iter().any(u8::is_ascii_digit) {
            runs.push((start, i));
        }
    }
    let replacement = rng.pick(NUMBERS).as_bytes();
    if runs.is_empty() {
        let at = rng.below(data.len() + 1);
        data.splice(at..at, replacement.iter().copied());
        return;
    }
    let (start, end) = *rng.pick(&runs);
    data.splice(start..end, replacement.iter().copied());
}

fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')
}

/// Inserts a structural token or replaces a byte range with one.
fn insert_token(rng: &mut Rng, data: &mut Vec<u8>) {
    let token = rng.pick(TOKENS).as_bytes();
    let at = rng.below(data.len() + 1);
    let end = if rng.one_in(2) && at < data.len() {
        at + rng.len_up_to(data.len() - at).min(16)
    } else {
        at
    };
    data.splice(at..end, token.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_edit_keeps_inputs_in_bounds() {
        let seeds = vec![
            b"{\"vocab_size\": 32, \"rope_theta\": -1.5e3}".to_vec(),
            Vec::new(),
            vec![0xAA; 100],
        ];
        let mut rng = Rng::new(1, 0);
        for n in 0..5000 {
            let i = n % seeds.len();
            let out = mutate(&mut rng, &seeds, i, n % 2 == 0);
            assert!(out.len() <= MAX_INPUT);
        }
    }

    #[test]
    fn numbers_are_replaced_whole() {
        let mut rng = Rng::new(3, 0);
        for _ in 0..50 {
            let mut data = b"{\"a\": -123.5e4}".to_vec();
            replace_number(&mut rng, &mut data);
            let text = String::from_utf8_lossy(&data);
            assert!(
                text.starts_with("{\"a\": ") && text.ends_with('}'),
                "{text}"
            );
            assert!(!text.contains("123"), "{text}");
        }
    }
}
