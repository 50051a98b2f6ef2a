use crate::logic::Logic;
use crate::probe::Probe;

/// The [Block] trait is required for all circuitry that
/// can be simulated by RustHDL.  If you want to be able
/// to simulate a circuit, the corresponding struct must
/// impl [Block].  Normally, this is done via the `#[derive(LogicBlock)]`
/// construct, and you will rarely, if ever, need to
/// impl the [Block] trait yourself.
pub trait Block: Logic {
    /// Connects the internal signals of the circuit - used to initialize the circuit
    fn connect_all(&mut self);
    /// Propogate changes from inputs to outputs within the circuit
    fn update_all(&mut self);
    /// Returns `true` if anything in the circuit has changed (outputs or internal state)
    fn has_changed(&self) -> bool;
    /// The visitor pattern - allows a circuit to be probed by a [Probe] struct.
    fn accept(&self, name: &str, probe: &mut dyn Probe);
    /// rdbe patch: `true` for a port of the block that holds it (a signal, a constant, an
    /// interface), `false` for a sub-block. A block's derived `update_all` runs its `update`
    /// a second time in the pass when a sub-block latched a change (see [latched_changes]);
    /// its ports' latches hold only what its own `update` wrote. `false` is always safe.
    fn is_port() -> bool
    where
        Self: Sized,
    {
        false
    }
    /// rdbe patch: whether an input of this block (a port of direction `In`, or a clock
    /// whose edge it has not seen) differs from what the block last took in. A block whose
    /// inputs are unchanged, in a pass of [SettleMode::Skip], has nothing to do: its last
    /// `update_all` left it settled. `true` is always safe.
    fn inputs_changed(&self) -> bool {
        true
    }
}

/// rdbe patch: how a derived `update_all` settles its block (vendor/README.md).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SettleMode {
    /// As published, and the block's second `update`: what rust-hdl's `Simulation` does.
    /// Settling takes whole-design passes until one changes nothing.
    Passes,
    /// Every block runs its `update` and its fields' `update_all` again until an
    /// iteration latches no change, so one pass leaves the design settled.
    Local,
    /// As `Local`, and a block whose inputs are unchanged since it last ran
    /// ([Block::inputs_changed]) is skipped with everything below it.
    Skip,
}

thread_local! {
    static SETTLE_MODE: std::cell::Cell<SettleMode> = const { std::cell::Cell::new(SettleMode::Passes) };
    static EDGE_GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// rdbe patch: the settle mode of this thread's passes (see [SettleMode]).
#[inline(always)]
pub fn settle_mode() -> SettleMode {
    SETTLE_MODE.with(|mode| mode.get())
}

/// rdbe patch: set this thread's settle mode; returns the one it replaces.
pub fn set_settle_mode(mode: SettleMode) -> SettleMode {
    SETTLE_MODE.with(|m| m.replace(mode))
}

/// rdbe patch: the count of clock edges raised by [raise_clock_edge] on this thread. A
/// clock input that last latched an older count sees a rising edge while it is high.
#[inline(always)]
pub fn edge_generation() -> u64 {
    EDGE_GENERATION.with(|count| count.get())
}

/// rdbe patch: a rising edge for every clock input that is high, without a fall first:
/// the next pass fires every flip-flop once (each clock input records the count when it
/// latches). For a simulation loop that does not trace the clock's fall.
pub fn raise_clock_edge() {
    EDGE_GENERATION.with(|count| count.set(count.get().wrapping_add(1)));
}

thread_local! {
    static LATCHED_CHANGES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// rdbe patch: how many signal latches on this thread have flagged a change (the flags
/// [Block::has_changed] reports), counted since the thread began. A pass of `update_all`
/// changed something exactly when this count moved during it.
#[inline(always)]
pub fn latched_changes() -> u64 {
    LATCHED_CHANGES.with(|count| count.get())
}

/// rdbe patch: count one flagged change (see [latched_changes]).
#[inline(always)]
pub fn note_latched_change() {
    LATCHED_CHANGES.with(|count| count.set(count.get().wrapping_add(1)));
}

/// rdbe patch: [Block::is_port] of a field, for the derive macros.
#[inline(always)]
pub fn is_port_of<B: Block>(_field: &B) -> bool {
    B::is_port()
}

impl<B: Block> Block for Vec<B> {
    fn connect_all(&mut self) {
        for x in self {
            x.connect_all();
        }
    }

    fn update_all(&mut self) {
        for x in self {
            x.update_all();
        }
    }

    fn has_changed(&self) -> bool {
        for x in self {
            if x.has_changed() {
                return true;
            }
        }
        false
    }

    fn accept(&self, name: &str, probe: &mut dyn Probe) {
        for x in self.iter().enumerate() {
            let name = format!("{}${}", name, x.0);
            x.1.accept(&name, probe);
        }
    }

    fn is_port() -> bool {
        B::is_port()
    }

    fn inputs_changed(&self) -> bool {
        self.iter().any(|x| x.inputs_changed())
    }
}

impl<B: Block, const P: usize> Block for [B; P] {
    fn connect_all(&mut self) {
        for x in self {
            x.connect_all();
        }
    }

    fn update_all(&mut self) {
        for x in self {
            x.update_all();
        }
    }

    fn has_changed(&self) -> bool {
        for x in self {
            if x.has_changed() {
                return true;
            }
        }
        false
    }

    fn accept(&self, name: &str, probe: &mut dyn Probe) {
        for x in self.iter().enumerate() {
            let name = format!("{}${}", name, x.0);
            x.1.accept(&name, probe);
        }
    }

    fn is_port() -> bool {
        B::is_port()
    }

    fn inputs_changed(&self) -> bool {
        self.iter().any(|x| x.inputs_changed())
    }
}
