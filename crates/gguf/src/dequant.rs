//! Dequantization of GGML blocks to f32, following the block layouts of llama.cpp's `ggml-quants.c`.
//!
//! Legacy quants hold 32 values a block, one f16 scale `d` (and a minimum `m` for `_1` types):
//! `Q4_0: x = d·(q − 8)`, `Q4_1: x = d·q + m`, `Q5_0: x = d·(q − 16)` with the fifth bit packed
//! apart, `Q8_0: x = d·q`. K-quants hold 256 values a super-block with 6-bit (Q4_K) or 8-bit (Q6_K)
//! sub-block scales under an f16 super-scale.

use half::{bf16, f16};

use crate::{GgmlType, GgufError};

/// Dequantizes `bytes`, a whole number of `ty` blocks, to f32. `tensor` names it in errors.
pub fn dequantize(ty: GgmlType, bytes: &[u8], tensor: &str) -> Result<Vec<f32>, GgufError> {
    let unsupported = || GgufError::UnsupportedType {
        tensor: tensor.into(),
        ty: ty.to_string(),
    };
    let block: fn(&[u8], &mut [f32]) = match ty {
        GgmlType::F32 => |b, y| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => |b, y| y[0] = f16_at(b, 0),
        GgmlType::BF16 => |b, y| y[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q4_K => q4_k,
        GgmlType::Q6_K => q6_k,
        _ => return Err(unsupported()),
    };
    let (n_in, n_out) = (ty.block_bytes(), ty.block_len());
    let mut out = vec![0f32; bytes.len() / n_in * n_out];
    for (b, y) in bytes.chunks_exact(n_in).zip(out.chunks_exact_mut(n_out)) {
        block(b, y);
    }
    Ok(out)
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// `{ d: f16, qs: [u8; 16] }`: low nibbles are values 0..16, high nibbles 16..32.
fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..18].iter().enumerate() {
        y[j] = ((q & 0xF) as f32 - 8.0) * d;
        y[j + 16] = ((q >> 4) as f32 - 8.0) * d;
    }
}

/// `{ d: f16, m: f16, qs: [u8; 16] }`.
fn q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for (j, &q) in b[4..20].iter().enumerate() {
        y[j] = (q & 0xF) as f32 * d + m;
        y[j + 16] = (q >> 4) as f32 * d + m;
    }
}

/// `{ d: f16, qh: u32, qs: [u8; 16] }`: bit `j` of `qh` is the fifth bit of value `j`.
fn q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for (j, &q) in b[6..22].iter().enumerate() {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        y[j] = (((q & 0xF) as u32 | h0) as f32 - 16.0) * d;
        y[j + 16] = (((q >> 4) as u32 | h1) as f32 - 16.0) * d;
    }
}

/// `{ d: f16, qs: [i8; 32] }`.
fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (y, &q) in y.iter_mut().zip(&b[2..34]) {
        *y = q as i8 as f32 * d;
    }
}

/// The 6-bit scale and minimum of sub-block `j` (0..8) from Q4_K's packed `scales[12]`.
fn scale_min_k4(j: usize, s: &[u8]) -> (f32, f32) {
    let (sc, m) = if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    };
    (sc as f32, m as f32)
}

/// `{ d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128] }`: 8 sub-blocks of 32, each
/// `x = d·sc·q − dmin·m`, two sub-blocks per 32 bytes of nibbles.
fn q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    for (chunk, (qs, y)) in b[16..144]
        .chunks_exact(32)
        .zip(y.chunks_exact_mut(64))
        .enumerate()
    {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        for (l, &q) in qs.iter().enumerate() {
            y[l] = d * sc1 * (q & 0xF) as f32 - dmin * m1;
            y[l + 32] = d * sc2 * (q >> 4) as f32 - dmin * m2;
        }
    }
}

/// `{ ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16 }`: 6-bit values (low 4 bits in `ql`,
/// high 2 in `qh`) minus 32, times `d` and a signed 8-bit scale per 16 values.
fn q6_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 208);
    for half in 0..2 {
        let ql = &b[64 * half..64 * half + 64];
        let qh = &b[128 + 32 * half..128 + 32 * half + 32];
        let sc = &b[192 + 8 * half..192 + 8 * half + 8];
        let y = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}
