//! Synthesizable rust-hdl modules of the Delta Relational Database Engine's engine core
//! (Sakai et al., ICOT TR-063, 1984), with their reference models.
pub mod block_ram;
pub mod harness;
pub mod tuple_stream;
pub mod verilog;
pub mod stream_slice;
