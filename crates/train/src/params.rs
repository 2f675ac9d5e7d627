use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// The trainable parameters of a module (those that require gradients: the adapter's factors
/// once the base is frozen), in the order burn visits them.
///
/// Two models of the same structure list their parameters in the same order, whatever ids burn
/// gave them. burn keys optimizer state by [`ParamId`], and a model rebuilt from saved files gets
/// fresh ids, so checkpoints key the state by position in this list instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trainable {
    pub ids: Vec<ParamId>,
    /// The shape of each, in the same order.
    pub shapes: Vec<Vec<usize>>,
}

impl Trainable {
    /// The trainable parameters of `module`.
    pub fn of<B: Backend, M: Module<B>>(module: &M) -> Self {
        let mut trainable = Self::default();
        module.visit(&mut trainable);
        trainable
    }

    /// The number of trainable values, `Σ_p Π shape_p`.
    pub fn count(&self) -> usize {
        self.shapes
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum()
    }

    /// The position of parameter `id` in the list.
    pub fn position(&self, id: ParamId) -> Option<usize> {
        self.ids.iter().position(|&p| p == id)
    }
}

impl<B: Backend> ModuleVisitor<B> for Trainable {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        if value.is_require_grad() {
            self.ids.push(param.id);
            self.shapes.push(value.dims().to_vec());
        }
    }
}
