//! The D flip-flop every RTL module keeps its registers in: rust-hdl's own `DFF` (the same
//! ports `d`, `q`, `clock`, the same Verilog, the same timing entry) with one difference in
//! simulation only. Not a module of the paper: a primitive, as rust-hdl's is.
//!
//! Why not rust-hdl's: the harness settles a design by letting each block repeat its
//! `update` and its fields' `update_all` until nothing it holds changes (the patched
//! rust-hdl-core's `SettleMode`, vendor/README.md). rust-hdl's `DFF` takes that whole
//! pass every time its parent repeats, though a flip-flop changes nothing between clock
//! edges; it was a quarter of the simulation's instructions. This one returns at once
//! in those modes unless its clock has an edge or a change it has not seen. In rust-hdl's
//! own mode (`SettleMode::Passes`, its `Simulation`, a traced harness) it runs exactly as
//! rust-hdl's does.
//!
//! Module names in the exported Verilog come from the instance paths, not from this type,
//! so the Verilog is byte for byte the one rust-hdl's `DFF` gives
//! (`tests::the_verilog_is_rust_hdls`).
use rust_hdl::core::block::{settle_mode, SettleMode};
use rust_hdl::prelude::*;

/// A register of `T`: `q` takes `d` at every rising edge of `clock`.
#[derive(Clone, Debug)]
pub struct DFF<T: Synth> {
    pub d: Signal<In, T>,
    pub q: Signal<Out, T>,
    pub clock: Signal<In, Clock>,
}

impl<T: Synth> Default for DFF<T> {
    fn default() -> DFF<T> {
        Self {
            d: Signal::default(),
            q: Signal::default(),
            clock: Signal::default(),
        }
    }
}

impl<T: Synth> Logic for DFF<T> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            self.q.next = self.d.val()
        }
    }

    fn connect(&mut self) {
        self.q.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "\
initial begin
   q = {:x};
end

always @(posedge clock) begin
   q <= d;
end
      ",
            T::default().verilog()
        ))
    }

    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "dff".into(),
            clock: "clock".into(),
            inputs: vec!["d".into()],
            outputs: vec!["q".into()],
        }]
    }
}

/// What `#[derive(LogicBlock)]` writes for rust-hdl's `DFF`, but for `update_all`.
impl<T: Synth> Block for DFF<T> {
    fn connect_all(&mut self) {
        self.connect();
        self.d.connect_all();
        self.q.connect_all();
        self.clock.connect_all();
    }

    fn update_all(&mut self) {
        // Between edges `q` holds, and nothing reads the latched `d` but a VCD dump, which
        // only traced runs take, in `SettleMode::Passes`.
        if settle_mode() != SettleMode::Passes && !self.clock.inputs_changed() {
            return;
        }
        self.update();
        self.d.update_all();
        self.q.update_all();
        self.clock.update_all();
    }

    fn has_changed(&self) -> bool {
        self.d.has_changed() || self.q.has_changed() || self.clock.has_changed()
    }

    fn accept(&self, name: &str, probe: &mut dyn Probe) {
        probe.visit_start_scope(name, self);
        self.d.accept("d", probe);
        self.q.accept("q", probe);
        self.clock.accept("clock", probe);
        probe.visit_end_scope(name, self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_hdl::core::block::set_settle_mode;

    /// Two registers in a row, in a block of their own (`$register`: this `DFF` or
    /// rust-hdl's).
    macro_rules! pipe {
        ($name:ident, $register:ty) => {
            #[derive(LogicBlock, Default)]
            struct $name {
                clock: Signal<In, Clock>,
                data_in: Signal<In, Bits<8>>,
                data_out: Signal<Out, Bits<8>>,
                first: $register,
                second: $register,
            }

            impl Logic for $name {
                #[hdl_gen]
                fn update(&mut self) {
                    self.first.clock.next = self.clock.val();
                    self.second.clock.next = self.clock.val();
                    self.first.d.next = self.data_in.val();
                    self.second.d.next = self.first.q.val();
                    self.data_out.next = self.second.q.val();
                }
            }
        };
    }
    pipe!(Pipe, DFF<Bits<8>>);
    pipe!(RustHdlPipe, rust_hdl::widgets::dff::DFF<Bits<8>>);

    #[test]
    fn the_verilog_is_rust_hdls() {
        let mut ours = Pipe::default();
        ours.connect_all();
        let mut theirs = RustHdlPipe::default();
        theirs.connect_all();
        assert_eq!(generate_verilog(&ours), generate_verilog(&theirs));
        yosys_validate("rdbe_dff", &generate_verilog(&ours)).unwrap();
    }

    /// Each mode, a clock toggled or edges raised without a fall: the pipe delays by two
    /// edges, and a register takes its input once an edge however often its parent runs.
    #[test]
    fn it_takes_its_input_once_an_edge_in_every_settle_mode() {
        for mode in [SettleMode::Passes, SettleMode::Local, SettleMode::Skip] {
            for raised in [false, true] {
                if raised && mode == SettleMode::Passes {
                    continue;
                }
                let previous = set_settle_mode(mode);
                let mut pipe = Pipe::default();
                pipe.connect_all();
                let mut seen = vec![];
                for value in 1..=6u64 {
                    pipe.data_in.next = (value * 10).into();
                    if !raised {
                        pipe.clock.next = Clock { clk: false };
                    }
                    for _ in 0..3 {
                        pipe.update_all();
                    }
                    if raised {
                        rust_hdl::core::block::raise_clock_edge();
                    }
                    pipe.clock.next = Clock { clk: true };
                    for _ in 0..3 {
                        pipe.update_all();
                    }
                    seen.push(pipe.data_out.val().index());
                }
                set_settle_mode(previous);
                assert_eq!(seen, [0, 10, 20, 30, 40, 50], "{mode:?}, raised {raised}");
            }
        }
    }
}
