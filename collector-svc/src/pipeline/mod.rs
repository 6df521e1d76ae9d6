//! The pipeline between decoding and storage: [`admission`] (decode slots, queue room, the
//! wait for the commit), the bounded [`queue`], and the `writer` that commits many exports
//! per transaction and only then answers each.

pub mod admission;
pub mod queue;
pub(crate) mod writer;
