//! The vendored rust-hdl-core (vendor/README.md) lets a block read what its parent wrote to
//! its inputs in the same settling pass, and sees a clock edge before the clock input is
//! latched, so a clock reaches every block of the hierarchy in one pass. This checks the
//! two things that must hold, on flip-flops at different depths: every flip-flop samples
//! what its input was before the edge (a value an upper flip-flop takes at the edge must
//! not reach a deeper one in the same edge), and a settled cycle takes a few passes, not
//! one a level of the hierarchy.
//!
//! The harness settles untraced runs by the patched core's settle modes (each block repeats
//! until what is below it is settled, `Skip` passes over blocks whose inputs did not
//! change, edges raised without a fall) and traced runs as rust-hdl does (whole-design
//! passes); the tests run both.
use rdbe_rtl::harness::{Clocked, Harness};
use rust_hdl::core::block::{latched_changes, set_settle_mode, SettleMode};
use rust_hdl::prelude::*;

/// Two levels of plumbing around a flip-flop: `d` reaches the flip-flop three levels below
/// the top, its `q` comes back up.
#[derive(LogicBlock, Default)]
struct Inner {
    clock: Signal<In, Clock>,
    d: Signal<In, Bits<8>>,
    q: Signal<Out, Bits<8>>,
    /// A combinational path: `echo` is `probe`.
    probe: Signal<In, Bits<8>>,
    echo: Signal<Out, Bits<8>>,
    stage: DFF<Bits<8>>,
}

impl Logic for Inner {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, stage);
        self.stage.d.next = self.d.val();
        self.q.next = self.stage.q.val();
        self.echo.next = self.probe.val();
    }
}

#[derive(LogicBlock, Default)]
struct Middle {
    clock: Signal<In, Clock>,
    d: Signal<In, Bits<8>>,
    q: Signal<Out, Bits<8>>,
    probe: Signal<In, Bits<8>>,
    echo: Signal<Out, Bits<8>>,
    inner: Inner,
}

impl Logic for Middle {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, inner);
        self.inner.d.next = self.d.val();
        self.q.next = self.inner.q.val();
        self.inner.probe.next = self.probe.val();
        self.echo.next = self.inner.echo.val();
    }
}

/// A three-stage shift register whose stages sit at depths 1, 3 and 1: `first` (here) →
/// `middle.inner.stage` → `last` (here).
#[derive(LogicBlock, Default)]
struct Chain {
    clock: Signal<In, Clock>,
    data: Signal<In, Bits<8>>,
    /// Down to the inner block and back up, through no flip-flop: `echo` is `probe`.
    probe: Signal<In, Bits<8>>,
    echo: Signal<Out, Bits<8>>,
    first_q: Signal<Out, Bits<8>>,
    deep_q: Signal<Out, Bits<8>>,
    last_q: Signal<Out, Bits<8>>,
    first: DFF<Bits<8>>,
    middle: Middle,
    last: DFF<Bits<8>>,
}

impl Logic for Chain {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, first, last);
        clock!(self, clock, middle);
        self.first.d.next = self.data.val();
        self.middle.d.next = self.first.q.val();
        self.last.d.next = self.middle.q.val();
        self.first_q.next = self.first.q.val();
        self.deep_q.next = self.middle.q.val();
        self.last_q.next = self.last.q.val();
        self.middle.probe.next = self.probe.val();
        self.echo.next = self.middle.echo.val();
    }
}

impl Clocked for Chain {
    fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}

/// A harness of `block`, traced (rust-hdl's whole-design passes) or not (the settle modes).
fn harness<B: Clocked>(block: B, traced: bool) -> Harness<B> {
    let mut h = Harness::new(block);
    h.check_settles = true;
    if traced {
        let path = std::env::temp_dir().join(format!(
            "rdbe_rust_hdl_inputs_{}_{:?}.vcd",
            std::process::id(),
            std::thread::current().id()
        ));
        h.trace_to(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
    }
    h
}

#[test]
fn flip_flops_at_every_depth_sample_the_value_before_the_edge() {
    for traced in [false, true] {
        flip_flops_sample_the_value_before_the_edge(traced);
    }
}

fn flip_flops_sample_the_value_before_the_edge(traced: bool) {
    let mut h = harness(Chain::default(), traced);
    let mut seen = Vec::new();
    for cycle in 1..=20u64 {
        h.uut.data.next = cycle.into();
        h.cycle();
        seen.push((
            h.uut.first_q.val().to_u64(),
            h.uut.deep_q.val().to_u64(),
            h.uut.last_q.val().to_u64(),
        ));
    }
    for (i, &(first, deep, last)) in seen.iter().enumerate() {
        let cycle = i as u64 + 1;
        assert_eq!(
            first, cycle,
            "first stage after cycle {cycle}, traced {traced}"
        );
        assert_eq!(
            deep,
            cycle.saturating_sub(1),
            "deep stage after cycle {cycle}, traced {traced}"
        );
        assert_eq!(
            last,
            cycle.saturating_sub(2),
            "last stage after cycle {cycle}, traced {traced}"
        );
    }
}

#[test]
fn a_cycle_settles_in_passes_not_one_a_level() {
    let mut h = harness(Chain::default(), true);
    let before = h.passes;
    let cycles = 20u64;
    for cycle in 0..cycles {
        h.uut.data.next = cycle.into();
        h.cycle();
    }
    let per_cycle = (h.passes - before) as f64 / cycles as f64;
    // Measured (traced, so in rust-hdl's whole-design passes; session 25 again): 3.9 passes
    // a cycle here, with the vendored derive macro's second `update`
    // (the flip-flops' new outputs reach their parents in the edge pass, and the outputs
    // the second run rewrote are latched in the next). With the patched core alone: 5.7
    // (session 24; 6.7 in session 13: the rise is the edge pass, the deep stage's `q`
    // climbing one level a pass, a pass that sees no change). As rust-hdl is published
    // (the clock and every input one level a pass): 13.5; with only one of the core
    // patch's two changes: 7.65 (inputs) or 12.55 (edges). Each is correct on its own (the test above passes with any of them); this
    // is what they are for.
    assert!(
        per_cycle <= 4.0,
        "{per_cycle} settling passes a cycle (3.9 with the patches, 13.5 without)"
    );
}

/// Untraced, a cycle is two passes, the inputs' settle and the edge's, and each leaves the
/// design settled (the harness checks it: a pass as rust-hdl takes it changes nothing).
#[test]
fn a_cycle_is_two_passes_in_the_settle_modes() {
    let mut h = harness(Chain::default(), false);
    let before = h.passes;
    for cycle in 0..20u64 {
        h.uut.data.next = cycle.into();
        h.uut.probe.next = (cycle * 3).into();
        h.cycle();
        assert_eq!(h.uut.echo.val().to_u64(), cycle * 3);
    }
    assert_eq!(h.passes - before, 40);
}

/// The patch latches an input without flagging its change (vendor/README.md): the change
/// is consumed in the pass it is written, and the settle goes on as long as the outputs it
/// feeds change. A value set on the top's input must so come back up from the inner block
/// in the same settle, with no clock edge. (Inputs left unflagged but read a pass late, as
/// rust-hdl publishes them, would end the settle before the value reaches the inner block.)
#[test]
fn a_combinational_path_through_every_depth_settles() {
    for traced in [false, true] {
        combinational_path_settles(traced);
    }
}

fn combinational_path_settles(traced: bool) {
    let mut h = harness(Chain::default(), traced);
    for value in [5u64, 9, 9, 0, 255, 1] {
        h.uut.probe.next = value.into();
        h.settle();
        assert_eq!(h.uut.echo.val().to_u64(), value, "echo of {value}, settled");
    }
    for value in [17u64, 3, 3, 200] {
        h.uut.probe.next = value.into();
        h.cycle();
        assert_eq!(
            h.uut.echo.val().to_u64(),
            value,
            "echo of {value}, after a cycle"
        );
    }
}

/// The vendored derive macro (vendor/README.md) runs a block's `update` a second time in a
/// pass when one of its sub-blocks latched a change in it, after all of its sub-blocks
/// have run. So what a flip-flop takes at the edge reaches its parent's outputs in the edge
/// pass itself, while its siblings, which have already taken their inputs, do not see it
/// until the next edge (checked by the first test: an update run after each sub-block
/// instead lets `middle` take `first`'s new output and fails it). Without the second run
/// the parent's outputs lag by a pass, and this fails (0 where 42 is due; session 24, the
/// published macros with the patched core).
#[test]
fn a_flip_flops_new_output_reaches_its_parent_in_the_edge_pass() {
    let mut h = Harness::new(Chain::default());
    h.uut.data.next = 42u64.into();
    h.settle();
    assert_eq!(h.uut.first_q.val().to_u64(), 0, "before the edge");
    h.uut.clock.next = Clock { clk: true };
    h.uut.update_all();
    assert_eq!(h.uut.first.q.val().to_u64(), 42, "the flip-flop took d");
    assert_eq!(
        h.uut.first_q.val().to_u64(),
        42,
        "the parent's output in the edge pass"
    );
    assert_eq!(h.uut.middle.inner.stage.q.val().to_u64(), 0, "deep stage");
}

/// A leaf that counts the runs of its `update`.
#[derive(LogicBlock, Default)]
struct Counted {
    data_in: Signal<In, Bits<8>>,
    data_out: Signal<Out, Bits<8>>,
    _runs: u32,
}

impl Logic for Counted {
    fn update(&mut self) {
        self._runs += 1;
        self.data_out.next = self.data_in.val();
    }

    fn connect(&mut self) {
        self.data_out.connect();
    }
}

/// Two counted leaves, each behind a block of its own (`Middle`-like plumbing).
#[derive(LogicBlock, Default)]
struct CountedPlumbing {
    data_in: Signal<In, Bits<8>>,
    data_out: Signal<Out, Bits<8>>,
    leaf: Counted,
}

impl Logic for CountedPlumbing {
    #[hdl_gen]
    fn update(&mut self) {
        self.leaf.data_in.next = self.data_in.val();
        self.data_out.next = self.leaf.data_out.val();
    }
}

#[derive(LogicBlock, Default)]
struct Pair {
    left_in: Signal<In, Bits<8>>,
    right_in: Signal<In, Bits<8>>,
    left_out: Signal<Out, Bits<8>>,
    right_out: Signal<Out, Bits<8>>,
    left: CountedPlumbing,
    right: CountedPlumbing,
}

impl Logic for Pair {
    #[hdl_gen]
    fn update(&mut self) {
        self.left.data_in.next = self.left_in.val();
        self.right.data_in.next = self.right_in.val();
        self.left_out.next = self.left.data_out.val();
        self.right_out.next = self.right.data_out.val();
    }
}

/// In `SettleMode::Skip` a block whose inputs are as it last took them is passed over with
/// everything below it; in `Local` every block runs; each settles the design in one pass.
#[test]
fn a_block_whose_inputs_did_not_change_is_skipped() {
    let mut pair = Pair::default();
    pair.connect_all();
    let previous = set_settle_mode(SettleMode::Local);
    pair.update_all();
    let runs = |p: &Pair| (p.left.leaf._runs, p.right.leaf._runs);
    let start = runs(&pair);

    set_settle_mode(SettleMode::Skip);
    pair.left_in.next = 7u64.into();
    pair.update_all();
    let after_left = runs(&pair);
    let settled = (pair.left_out.val().to_u64(), pair.right_out.val().to_u64());
    pair.update_all();
    let after_nothing = runs(&pair);

    set_settle_mode(SettleMode::Local);
    let before = latched_changes();
    pair.update_all();
    let changes_in_local = latched_changes() - before;
    let after_local = runs(&pair);
    set_settle_mode(previous);

    assert_eq!(settled, (7, 0), "one pass carried the change to the output");
    assert_eq!(after_left.0, start.0 + 1, "the left leaf ran once");
    assert_eq!(after_left.1, start.1, "the right leaf was skipped");
    assert_eq!(
        after_nothing, after_left,
        "nothing changed: everything skipped"
    );
    assert_eq!(changes_in_local, 0, "the skipping pass had left it settled");
    assert_eq!(
        after_local,
        (after_left.0 + 1, after_left.1 + 1),
        "Local runs all"
    );
}

/// A block whose `update` reads a local before it writes it takes the local's value from
/// its last run. rust-hdl's passes run it again until nothing changes; a block's loop in the
/// settle modes does not watch its own locals (vendor/README.md), so the value is left
/// stale, and the harness's check (`check_settles`, `RDBE_VERIFY_SETTLE=1`) must catch it.
/// rust-hdl's design check, which the harness runs first, rejects such logic as a "logic
/// loop" when it is `#[hdl_gen]` (every module of the engine is): this one is hand-written.
#[derive(LogicBlock, Default)]
struct ReadsBeforeWrite {
    clock: Signal<In, Clock>,
    data_in: Signal<In, Bits<8>>,
    data_out: Signal<Out, Bits<8>>,
    copy: Signal<Local, Bits<8>>,
}

impl Logic for ReadsBeforeWrite {
    fn update(&mut self) {
        self.data_out.next = self.copy.val();
        self.copy.next = self.data_in.val();
    }

    fn connect(&mut self) {
        self.data_out.connect();
        self.copy.connect();
    }
}

impl Clocked for ReadsBeforeWrite {
    fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}

#[test]
fn a_local_read_before_it_is_written_is_caught_by_the_check() {
    let mut traced = harness(ReadsBeforeWrite::default(), true);
    traced.uut.data_in.next = 9u64.into();
    traced.settle();
    assert_eq!(
        traced.uut.data_out.val().to_u64(),
        9,
        "rust-hdl's passes settle it"
    );

    let mut h = harness(ReadsBeforeWrite::default(), false);
    h.uut.data_in.next = 9u64.into();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.settle()));
    assert!(caught.is_err(), "the check let a stale output through");
}

/// Untraced, the clock stays high, but the time goes on as if it fell after each rise: a
/// trace started after untraced cycles shows them, as it did when every cycle was traced
/// (ten units a `cycle()`, five a stream cycle). Three cycles, then the trace: its first
/// time step is the fourth cycle's edge, at 5 + 10 + 10 + 5 (the first cycle's fall does not
/// count: the clock starts low).
#[test]
fn a_trace_started_late_goes_on_from_the_untraced_cycles() {
    let mut h = Harness::new(Chain::default());
    for _ in 0..3 {
        h.cycle();
    }
    let path = std::env::temp_dir().join(format!(
        "rdbe_rust_hdl_inputs_late_{}.vcd",
        std::process::id()
    ));
    h.trace_to(&path).unwrap();
    h.cycle();
    h.finish_trace();
    let vcd = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let first_step = vcd.lines().find(|l| l.starts_with('#')).unwrap();
    assert_eq!(first_step, "#30");
}
