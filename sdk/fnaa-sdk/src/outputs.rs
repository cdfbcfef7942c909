//! What a processor returns from one `process` call.

use crate::Event;

/// The default input port of every processor.
pub const DEFAULT_INPUT: &str = "in";

/// The default output port of every processor.
pub const DEFAULT_OUTPUT: &str = "out";

/// The output port that mirrors input port `input` in an N -> N processor:
/// the default input `in` maps to the default output `out`, any other port
/// keeps its name.
pub fn mirror_port(input: &str) -> &str {
    if input == DEFAULT_INPUT {
        DEFAULT_OUTPUT
    } else {
        input
    }
}

/// One output of a `process` call (the WIT `output`).
// Not boxed: it mirrors the generated WIT type so that outputs convert in
// place, and a box would cost an allocation per emitted event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Input event number N of the batch, unchanged.
    Forward(u32),
    /// A new or modified event.
    Emit(Event),
}

/// An [`Output`] tagged with the output port it goes to (the WIT `emitted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// Output port name.
    pub port: String,
    /// What goes there.
    pub output: Output,
}

/// The outputs of one `process` call, in order.
///
/// Prefer [`Outputs::forward`] for events passed on unchanged: the host keeps
/// its own copy of the batch, so a forward sends four bytes back instead of
/// the whole event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    items: Vec<Emitted>,
}

impl Outputs {
    /// No outputs yet.
    pub fn new() -> Self {
        Outputs::default()
    }

    /// No outputs yet, with room for `capacity` of them.
    pub fn with_capacity(capacity: usize) -> Self {
        Outputs {
            items: Vec::with_capacity(capacity),
        }
    }

    /// Forwards input event `index` of the batch unchanged to `port`.
    ///
    /// An index past the batch is reported by the host as an error of the
    /// call; it is not checked here.
    pub fn forward(&mut self, index: usize, port: &str) {
        // A batch never holds more than u32::MAX events; a larger index is
        // out of range either way, and the host rejects it.
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        self.items.push(Emitted {
            port: port.to_owned(),
            output: Output::Forward(index),
        });
    }

    /// Emits `event` (new or modified) to `port`.
    pub fn emit(&mut self, event: Event, port: &str) {
        self.items.push(Emitted {
            port: port.to_owned(),
            output: Output::Emit(event),
        });
    }

    /// Number of outputs so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing was output.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The outputs so far, in order.
    pub fn as_slice(&self) -> &[Emitted] {
        &self.items
    }

    /// The outputs so far, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Emitted> {
        self.items.iter()
    }

    /// Takes the outputs.
    pub fn into_vec(self) -> Vec<Emitted> {
        self.items
    }
}

impl<'a> IntoIterator for &'a Outputs {
    type Item = &'a Emitted;
    type IntoIter = std::slice::Iter<'a, Emitted>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}
