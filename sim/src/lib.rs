//! The Delta RDBE's control program model (paper §5), reference models and the `rdbe` CLI.
pub mod bench;
pub mod csv_io;
pub mod demo_data;
pub mod join_job;
pub mod relation;
pub mod sort_job;
pub mod verilog_export;
