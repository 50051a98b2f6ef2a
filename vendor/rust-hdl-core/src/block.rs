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
}
