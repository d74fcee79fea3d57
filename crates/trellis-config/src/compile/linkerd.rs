//! placeholder: being written.

use super::Ctx;

pub(crate) fn compile(_cx: &mut Ctx<'_>) {}
