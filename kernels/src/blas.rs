//! The two CBLAS routines momentkv calls, behind one safe wrapper that checks every bound first.
//!
//! OpenBLAS threads each call itself. (Splitting calls across burn-flex's rayon pool with
//! single-threaded OpenBLAS was measured too: 20-25% slower on SmolLM2-135M with 2 cores.)

#![allow(unsafe_code)]

use std::os::raw::c_int;

const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

extern "C" {
    fn cblas_sgemm(
        layout: c_int,
        trans_a: c_int,
        trans_b: c_int,
        m: c_int,
        n: c_int,
        k: c_int,
        alpha: f32,
        a: *const f32,
        lda: c_int,
        b: *const f32,
        ldb: c_int,
        beta: f32,
        c: *mut f32,
        ldc: c_int,
    );
    fn cblas_sgemv(
        layout: c_int,
        trans: c_int,
        m: c_int,
        n: c_int,
        alpha: f32,
        a: *const f32,
        lda: c_int,
        x: *const f32,
        incx: c_int,
        beta: f32,
        y: *mut f32,
        incy: c_int,
    );
}

/// A row-major matrix view: `rows × cols` elements, rows `ld` apart, at the start of `data`.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub ld: usize,
}

impl<'a> Matrix<'a> {
    /// A contiguous `rows × cols` matrix.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            ld: cols,
        }
    }

    fn fits(&self) -> bool {
        self.ld >= self.cols.max(1)
            && (self.rows == 0 || (self.rows - 1) * self.ld + self.cols <= self.data.len())
            && [self.rows, self.cols, self.ld]
                .iter()
                .all(|&v| v <= c_int::MAX as usize)
    }
}

/// `out = alpha · a · op(b)` with `op(b) = b` (`[k, n]`) or, when `b_transposed`, `bᵀ` for `b`
/// `[n, k]`; `out` is the contiguous `[m, n]` result. Returns `false`, touching nothing, when an
/// operand does not fit its buffer or the shapes disagree.
pub fn gemm(alpha: f32, a: Matrix, b: Matrix, b_transposed: bool, out: &mut [f32]) -> bool {
    let (m, k) = (a.rows, a.cols);
    let (kb, n) = if b_transposed {
        (b.cols, b.rows)
    } else {
        (b.rows, b.cols)
    };
    if kb != k || !a.fits() || !b.fits() || out.len() != m * n || n > c_int::MAX as usize {
        return false;
    }
    if m == 0 || n == 0 {
        return true;
    }
    if k == 0 {
        out.fill(0.0);
        return true;
    }
    // SAFETY: `fits` checked that every element the routines read lies inside `a.data` and
    // `b.data`, and `out` holds exactly the m × n results written with leading dimension n.
    unsafe {
        if m == 1 {
            // One row: y[n] = op(b)ᵀ x, a matrix-vector product over b's storage.
            let (trans, rows, cols) = if b_transposed {
                (NO_TRANS, n, k)
            } else {
                (TRANS, k, n)
            };
            cblas_sgemv(
                ROW_MAJOR,
                trans,
                rows as c_int,
                cols as c_int,
                alpha,
                b.data.as_ptr(),
                b.ld as c_int,
                a.data.as_ptr(),
                1,
                0.0,
                out.as_mut_ptr(),
                1,
            );
        } else {
            cblas_sgemm(
                ROW_MAJOR,
                NO_TRANS,
                if b_transposed { TRANS } else { NO_TRANS },
                m as c_int,
                n as c_int,
                k as c_int,
                alpha,
                a.data.as_ptr(),
                a.ld as c_int,
                b.data.as_ptr(),
                b.ld as c_int,
                0.0,
                out.as_mut_ptr(),
                n as c_int,
            );
        }
    }
    true
}
