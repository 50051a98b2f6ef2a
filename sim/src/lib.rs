//! The Delta RDBE's control program model (paper §5), reference models and the `rdbe` CLI.
pub mod baseline;
pub mod bench;
pub mod bench_plot;
pub mod command;
pub mod control_program;
pub mod csv_io;
pub mod demo_data;
pub mod engine;
pub mod expr;
pub mod faults;
pub mod relation;
pub mod run;
pub mod sort_job;
pub mod synth;
pub mod verilator_backend;
pub mod verilog_export;
pub mod waveform;
