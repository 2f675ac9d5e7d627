use std::fmt;

/// A GGML tensor element type, by its numeric id in the GGUF tensor table.
///
/// Every type llama.cpp defines is known here so that the tensor table can be validated; only
/// the ones [`GgmlType::can_dequantize`] accepts are turned into f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType(pub u32);

/// `(name, elements per block, bytes per block)` indexed by type id; `None` for unused ids.
const LAYOUT: [Option<(&str, usize, usize)>; 42] = [
    Some(("F32", 1, 4)),
    Some(("F16", 1, 2)),
    Some(("Q4_0", 32, 18)),
    Some(("Q4_1", 32, 20)),
    None,
    None,
    Some(("Q5_0", 32, 22)),
    Some(("Q5_1", 32, 24)),
    Some(("Q8_0", 32, 34)),
    Some(("Q8_1", 32, 36)),
    Some(("Q2_K", 256, 84)),
    Some(("Q3_K", 256, 110)),
    Some(("Q4_K", 256, 144)),
    Some(("Q5_K", 256, 176)),
    Some(("Q6_K", 256, 210)),
    Some(("Q8_K", 256, 292)),
    Some(("IQ2_XXS", 256, 66)),
    Some(("IQ2_XS", 256, 74)),
    Some(("IQ3_XXS", 256, 98)),
    Some(("IQ1_S", 256, 50)),
    Some(("IQ4_NL", 32, 18)),
    Some(("IQ3_S", 256, 110)),
    Some(("IQ2_S", 256, 82)),
    Some(("IQ4_XS", 256, 136)),
    Some(("I8", 1, 1)),
    Some(("I16", 1, 2)),
    Some(("I32", 1, 4)),
    Some(("I64", 1, 8)),
    Some(("F64", 1, 8)),
    Some(("IQ1_M", 256, 56)),
    Some(("BF16", 1, 2)),
    None,
    None,
    None,
    Some(("TQ1_0", 256, 54)),
    Some(("TQ2_0", 256, 66)),
    None,
    None,
    None,
    Some(("MXFP4", 32, 17)),
    None,
    None,
];

impl GgmlType {
    pub const F32: Self = Self(0);
    pub const F16: Self = Self(1);
    pub const Q4_0: Self = Self(2);
    pub const Q4_1: Self = Self(3);
    pub const Q5_0: Self = Self(6);
    pub const Q8_0: Self = Self(8);
    pub const Q4_K: Self = Self(12);
    pub const Q6_K: Self = Self(14);
    pub const BF16: Self = Self(30);

    fn layout(self) -> Option<(&'static str, usize, usize)> {
        LAYOUT.get(self.0 as usize).copied().flatten()
    }

    /// Whether llama.cpp defines this type id.
    pub fn is_known(self) -> bool {
        self.layout().is_some()
    }

    /// Elements per quantization block (1 for plain float types).
    pub fn block_len(self) -> usize {
        self.layout().map_or(1, |l| l.1)
    }

    /// Bytes per quantization block.
    pub fn block_bytes(self) -> usize {
        self.layout().map_or(0, |l| l.2)
    }

    /// Whether [`crate::dequantize`] handles this type.
    pub fn can_dequantize(self) -> bool {
        matches!(
            self,
            Self::F32
                | Self::F16
                | Self::BF16
                | Self::Q4_0
                | Self::Q4_1
                | Self::Q5_0
                | Self::Q8_0
                | Self::Q4_K
                | Self::Q6_K
        )
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.layout() {
            Some((name, _, _)) => write!(f, "{name}"),
            None => write!(f, "type#{}", self.0),
        }
    }
}
