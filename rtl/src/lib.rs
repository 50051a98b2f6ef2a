//! Synthesizable rust-hdl modules of the Delta Relational Database Engine's engine core
//! (Sakai et al., ICOT TR-063, 1984), each with its pure-Rust reference model.
pub mod block_ram;
pub mod control_rom;
pub mod cosim;
pub mod dff;
pub mod engine_core;
pub mod fault_injector;
pub mod harness;
pub mod head_reader;
pub mod hm_adapter;
pub mod in_module;
pub mod link_check;
pub mod memory_fault;
pub mod merger;
pub mod operation_part;
pub mod output_control_part;
pub mod rdbe_top;
pub mod self_check;
pub mod sort_pipeline;
pub mod sorter;
pub mod sorting_cell;
pub mod sorting_checker;
pub mod stream_slice;
pub mod tuple_stream;
pub mod verilog;
