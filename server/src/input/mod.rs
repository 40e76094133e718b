//! Input: the data-channel protocol (pure), keysym mapping (pure) and XTest injection.

pub mod binder;
pub mod keymap;
pub mod protocol;
pub mod queue;
pub mod x11;

pub use protocol::{parse_input, InputError, InputEvent};
pub use x11::{InputInjector, ViewerKey};
