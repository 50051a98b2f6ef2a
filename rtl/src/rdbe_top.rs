//! The relational database engine as the control program's CPU sees it (paper §2, §5.1):
//! HM adapter IN → engine core → HM adapter OUT, with a register interface in front of the
//! engine core's static ports. [DeltaRdbe] is the paper-size engine, [SmallRdbe] the iCE40
//! HX8K one.
//!
//! # Ports
//! * `data_in`: raw HM words (data, `last`, `eos`; [crate::hm_adapter] explains the
//!   bundle) into HM adapter IN, paced by the PACE register.
//! * `data_out`: the step's result from HM adapter OUT: compact tuples with DP, then the
//!   end-of-stream beat.
//! * The register bus: `reg_address` (8 bits), `reg_write_data` (16 bits), `reg_write`
//!   (a write happens on the rising edge where `reg_write` is high), `reg_read_data`.
//!   **Reads are registered**: `reg_read_data` holds, from a rising edge on, the register
//!   `reg_address` named in the cycle before that edge (one cycle of latency; the CPU
//!   drives the address, waits one clock, samples). Reading has no side effects.
//!
//! # Register map
//! The settings registers hold 16-bit slices of the packed `LogicStruct`s the engine core's
//! static ports take (bit 0 of a struct is its first field's bit 0, see `TupleWord`):
//! register `base + i` holds struct bits `[16·i + 15 : 16·i]`. They read back what was
//! written (bits beyond a struct's width read 0). [register_writes] computes them. The
//! `REG_*` constants name the registers; the map, with every bit, is written once, in
//! `docs/ARCHITECTURE.md` ("The register interface").
//!
//! `hm_stop` is HM adapter IN's request to the HM to end the current input transfer: the
//! engine core no longer needs it (`input_unneeded`, e.g. a partial SORT-EX whose U chunk
//! ran out; `docs/ARCHITECTURE.md`, "Demand-driven streams").
//!
//! # Software side
//! [register_writes] packs a step's settings (validated first) into register writes;
//! [RdbeTop] is what the drivers need of a configuration, and [configure] clocks the writes
//! into a harnessed engine one per cycle; [read_register], [status_from_registers] and
//! [pulse_clear] do the rest of what a control program does on the bus. The same sequences
//! over any [RegisterBus] (the harness, or the `sim` crate's Verilator model process):
//! [configure_bus], [status_over_bus], [clear_over_bus].
use crate::dff::DFF;
use crate::engine_core::{CoreStatus, DeltaEngineCore, EngineCoreTop, SmallEngineCore};
use crate::fault_injector::{FaultKind, StreamFault};
use crate::harness::{Harness, StreamBlock};
use crate::hm_adapter::{HmAdapterIn, HmAdapterOut};
use crate::memory_fault::{LiveMemory, StoredWords};
use crate::merger::{MergerConfig, MergerDelta, MergerSmall};
use crate::operation_part::CommandSettings;
use crate::output_control_part::OutputFormat;
use crate::sort_pipeline::{
    DeltaSortPipeline, PipelinePort, PipelineSettings, SmallSortPipeline, SortPipelineTop,
};
use crate::tuple_stream::{TupleStreamIn, TupleStreamOut};
use anyhow::{ensure, Result};
use rust_hdl::prelude::*;

/// CONTROL: bit 0 pulses `clear`.
pub const REG_CONTROL: u8 = 0x00;
pub const REG_PACE: u8 = 0x01;
pub const REG_NEW_TID: u8 = 0x02;
pub const REG_FAULT_ENABLE: u8 = 0x03;
pub const REG_FAULT_WORD: u8 = 0x06;
/// TID_BASE: two registers, low word first.
pub const REG_TID_BASE: u8 = 0x04;
/// SORT_SETTINGS: four registers of `PipelinePort`.
pub const REG_SORT_SETTINGS: u8 = 0x08;
/// MERGE_SETTINGS: four registers of `CommandSettings`.
pub const REG_MERGE_SETTINGS: u8 = 0x0C;
/// U_FORMAT: five registers of `OutputFormat`.
pub const REG_U_FORMAT: u8 = 0x10;
/// L_FORMAT: five registers of `OutputFormat`.
pub const REG_L_FORMAT: u8 = 0x18;
/// INJECT (test equipment, issue 7): bits 3:0 the engine core's fault kind
/// ([FaultKind::index], 0 = off), 5:4 its site ([crate::fault_injector::FaultSite::index]), 11:8 its line; a write
/// restarts the injectors' beat counts. See [inject_writes].
pub const REG_INJECT: u8 = 0x20;
/// INJECT_TARGET: two registers, low word first: the beat the fault hits.
pub const REG_INJECT_TARGET: u8 = 0x21;
pub const REG_STATUS: u8 = 0x80;
pub const REG_VIOLATIONS: u8 = 0x81;
pub const REG_U_TUPLES: u8 = 0x82;
pub const REG_CAPACITY: u8 = 0x83;
/// TUPLES_OUT: two registers, low word first.
pub const REG_TUPLES_OUT: u8 = 0x84;
/// L_TAKEN: two registers, low word first.
pub const REG_L_TAKEN: u8 = 0x86;
/// STREAMS: end-of-stream beats since the last clear, modulo 32: bits 4:0 into the sort
/// pipeline, 9:5 into the merger, 14:10 out of HM adapter OUT; bit 15: a beat waits at
/// the output (`data_out.valid` between steps).
pub const REG_STREAMS: u8 = 0x88;

/// STATUS register bits.
pub mod status_bits {
    pub const BUSY: u16 = 1 << 0;
    pub const CORE_PARITY_ERROR: u16 = 1 << 1;
    pub const OUT_PARITY_ERROR: u16 = 1 << 2;
    pub const FRAMING_ERROR: u16 = 1 << 3;
    pub const SORT_ERROR: u16 = 1 << 4;
    pub const COMMAND_ERROR: u16 = 1 << 5;
    pub const U_OVERFLOW: u16 = 1 << 6;
    pub const L_OVERFLOW: u16 = 1 << 7;
    /// The armed fault injector hit its beat (test equipment; not an error).
    pub const FAULT_INJECTED: u16 = 1 << 8;
    /// A link check in the engine core failed ([crate::link_check]).
    pub const LINK_ERROR: u16 = 1 << 9;
    pub const ANY_ERROR: u16 = 1 << 15;
}

/// Words of a packed struct of `BITS` bits, as `count` 16-bit registers (low word first).
fn register_words<const BITS: usize>(bits: Bits<BITS>, count: usize) -> Vec<u16> {
    let v = bits.to_u128();
    (0..count).map(|i| (v >> (16 * i)) as u16).collect()
}

/// The HM adapters' settings for one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HmSettings {
    /// Minimum cycles between words on the HM side, both adapters (0, 1: full rate).
    pub pace: u8,
    /// HM adapter IN's diagnostic fault: the data word (of each stream) whose parity it
    /// inverts.
    pub parity_fault: Option<u16>,
}

/// The register writes (address, data) that set up one step: the relation's sort, the
/// merger command and its output formats, and the HM adapters' pacing and diagnostic
/// fault. The settings are
/// validated first, as `EngineCoreTop::apply` does (the output formats against the larger,
/// `delta`, tuple memories; [configure] checks them against the engine's own). No clear:
/// pulse CONTROL separately ([pulse_clear]) when a fresh start is wanted — it empties
/// U-memory too.
pub fn register_writes(
    sort: &PipelineSettings,
    merge: &MergerConfig,
    hm: HmSettings,
) -> Result<Vec<(u8, u16)>> {
    sort.validate()?;
    merge.validate(MergerDelta::TUPLE_MEMORY_WORDS)?;
    ensure!(
        merge.tuple_words == sort.input.tuple_words,
        "the merger expects {}-word tuples, the relation has {}",
        merge.tuple_words,
        sort.input.tuple_words
    );
    let mut writes = vec![
        (REG_PACE, hm.pace as u16),
        (REG_FAULT_ENABLE, hm.parity_fault.is_some() as u16),
        (REG_FAULT_WORD, hm.parity_fault.unwrap_or(0)),
        (REG_NEW_TID, merge.output.new_tid as u16),
        (REG_TID_BASE, merge.output.tid_base as u16),
        (REG_TID_BASE + 1, (merge.output.tid_base >> 16) as u16),
    ];
    let blocks: [(u8, Vec<u16>); 4] = [
        (
            REG_SORT_SETTINGS,
            register_words(Bits::<61>::from(sort.port()), 4),
        ),
        (
            REG_MERGE_SETTINGS,
            register_words(Bits::<51>::from(merge.command_settings()), 4),
        ),
        (
            REG_U_FORMAT,
            register_words(Bits::<71>::from(merge.output.u.to_bits()), 5),
        ),
        (
            REG_L_FORMAT,
            register_words(Bits::<71>::from(merge.output.l.to_bits()), 5),
        ),
    ];
    for (base, words) in blocks {
        for (i, w) in words.into_iter().enumerate() {
            writes.push((base + i as u8, w));
        }
    }
    Ok(writes)
}

/// The register writes that arm the engine core's fault injectors for the next stream
/// (`None`: disarm), the INJECT register last (its write restarts the beat counts). The
/// control program writes them only around a step with a fault, so fault-free steps cost
/// the bus cycles they always did.
pub fn inject_writes(fault: Option<StreamFault>) -> [(u8, u16); 3] {
    let (control, target) = match fault {
        Some(f) => (
            f.fault.kind.index() as u16
                | (f.site.index() as u16) << 4
                | ((f.fault.line & 15) as u16) << 8,
            f.fault.target,
        ),
        None => (0, 0),
    };
    [
        (REG_INJECT_TARGET, target as u16),
        (REG_INJECT_TARGET + 1, (target >> 16) as u16),
        (REG_INJECT, control),
    ]
}

/// What the drivers need of an engine with a register interface.
/// [StoredWords]: the memories a memory-word fault can hit (fault campaigns; their
/// [crate::memory_fault::MemorySite]s name them in the exported Verilog, for the Verilator
/// backend).
pub trait RdbeTop: StreamBlock + Default + StoredWords {
    /// Drive the register bus for the next clock edge: a write of `data` to `addr` when
    /// `write` is high; `addr` also selects the register read.
    fn set_register_write(&mut self, addr: u8, data: u16, write: bool);
    /// `reg_read_data`: the register addressed in the cycle before the last clock edge.
    fn register_read_data(&self) -> u16;
    /// The engine's status, read from its status lines directly (`parity_error` includes
    /// HM adapter OUT's).
    fn status(&self) -> CoreStatus;
    /// Tuples sent to the HM since the last clear (HM adapter OUT's counter).
    fn tuples_output(&self) -> u32;
    /// Address bits of the sorter's cells, for the model.
    fn cell_address_bits() -> &'static [usize];
    /// Longest tuple (words, tag included) the IN module takes.
    fn max_tuple_words() -> usize;
    /// Words of each of the output control part's tuple memories.
    fn tuple_memory_words() -> usize;
}

/// The register bus as the control program's CPU drives it, one bus cycle per register
/// write or read: the rust-hdl [Harness] of an [RdbeTop] and the Verilator backend's
/// driver process implement it, so [configure_bus], [status_over_bus] and [clear_over_bus]
/// make the same cycles on both.
pub trait RegisterBus {
    /// What can go wrong on the bus ([std::convert::Infallible] for the harness).
    type Error;
    /// One register write per clock cycle, in order, as [write_register] makes it.
    fn write_registers(&mut self, writes: &[(u8, u16)]) -> Result<(), Self::Error>;
    /// One registered read per clock cycle, in order, as [read_register] makes it.
    fn read_registers(&mut self, addresses: &[u8]) -> Result<Vec<u16>, Self::Error>;
    /// Clock cycles with the inputs unchanged.
    fn idle_cycles(&mut self, cycles: u64) -> Result<(), Self::Error>;
    /// Longest tuple (words, tag included) the engine's IN module takes.
    fn max_tuple_words(&self) -> usize;
    /// Words of each of the engine's output control part tuple memories.
    fn tuple_memory_words(&self) -> usize;
}

impl<T: RdbeTop> RegisterBus for Harness<T> {
    type Error = std::convert::Infallible;
    fn write_registers(&mut self, writes: &[(u8, u16)]) -> Result<(), Self::Error> {
        for &(addr, data) in writes {
            write_register(self, addr, data);
        }
        Ok(())
    }
    fn read_registers(&mut self, addresses: &[u8]) -> Result<Vec<u16>, Self::Error> {
        Ok(addresses.iter().map(|&a| read_register(self, a)).collect())
    }
    fn idle_cycles(&mut self, cycles: u64) -> Result<(), Self::Error> {
        for _ in 0..cycles {
            self.cycle();
        }
        Ok(())
    }
    fn max_tuple_words(&self) -> usize {
        T::max_tuple_words()
    }
    fn tuple_memory_words(&self) -> usize {
        T::tuple_memory_words()
    }
}

/// Set up an engine for one step over its register bus: validate for this configuration,
/// then clock [register_writes] in, one write per cycle. The bus is idle afterwards.
pub fn configure_bus<B: RegisterBus>(
    bus: &mut B,
    sort: &PipelineSettings,
    merge: &MergerConfig,
    hm: HmSettings,
) -> Result<()>
where
    anyhow::Error: From<B::Error>,
{
    sort.input.validate_for(bus.max_tuple_words())?;
    merge.validate(bus.tuple_memory_words())?;
    let writes = register_writes(sort, merge, hm)?;
    bus.write_registers(&writes)?;
    Ok(())
}

/// Set up a harnessed engine for one step ([configure_bus] on the rust-hdl simulation).
pub fn configure<T: RdbeTop>(
    h: &mut Harness<T>,
    sort: &PipelineSettings,
    merge: &MergerConfig,
    hm: HmSettings,
) -> Result<()> {
    configure_bus(h, sort, merge, hm)
}

/// One register write (one cycle).
pub fn write_register<T: RdbeTop>(h: &mut Harness<T>, addr: u8, data: u16) {
    h.uut.set_register_write(addr, data, true);
    h.cycle();
    h.uut.set_register_write(addr, 0, false);
}

/// One register read (one cycle: the read is registered).
pub fn read_register<T: RdbeTop>(h: &mut Harness<T>, addr: u8) -> u16 {
    h.uut.set_register_write(addr, 0, false);
    h.cycle();
    h.uut.register_read_data()
}

/// Pulse `clear` through the CONTROL register and let it act (two cycles).
pub fn clear_over_bus<B: RegisterBus>(bus: &mut B) -> Result<(), B::Error> {
    bus.write_registers(&[(REG_CONTROL, 1)])?;
    bus.idle_cycles(1)
}

/// Pulse `clear` through the CONTROL register (and let it act).
pub fn pulse_clear<T: RdbeTop>(h: &mut Harness<T>) {
    match clear_over_bus(h) {
        Ok(()) => {}
        Err(never) => match never {},
    }
}

/// The registers [status_over_bus] reads, in the order it reads them.
pub const STATUS_READS: [u8; 9] = [
    REG_STATUS,
    REG_CAPACITY,
    REG_VIOLATIONS,
    REG_U_TUPLES,
    REG_L_TAKEN,
    REG_L_TAKEN + 1,
    REG_TUPLES_OUT,
    REG_TUPLES_OUT + 1,
    REG_STREAMS,
];

/// The status as the CPU reads it over the bus (one cycle per register of
/// [STATUS_READS]): (status, tuples output). The STATUS register's two parity bits are
/// folded into `parity_error`.
pub fn status_over_bus<B: RegisterBus>(bus: &mut B) -> Result<(CoreStatus, u32), B::Error> {
    use status_bits::*;
    let r = bus.read_registers(&STATUS_READS)?;
    let flags = r[0];
    let status = CoreStatus {
        capacity_tuples: r[1] as usize,
        parity_error: flags & (CORE_PARITY_ERROR | OUT_PARITY_ERROR) != 0,
        framing_error: flags & FRAMING_ERROR != 0,
        sort_error: flags & SORT_ERROR != 0,
        violations: r[2] as u32,
        command_error: flags & COMMAND_ERROR != 0,
        u_overflow: flags & U_OVERFLOW != 0,
        l_overflow: flags & L_OVERFLOW != 0,
        u_tuples: r[3] as usize,
        l_taken: r[4] as u32 | (r[5] as u32) << 16,
        fault_injected: flags & FAULT_INJECTED != 0,
        link_error: flags & LINK_ERROR != 0,
        streams_in: (r[8] & 31) as u8,
        streams_merged: (r[8] >> 5 & 31) as u8,
        streams_out: (r[8] >> 10 & 31) as u8,
        output_pending: r[8] & 0x8000 != 0,
    };
    Ok((status, (r[7] as u32) << 16 | r[6] as u32))
}

/// The status as the CPU reads it over the bus, on the rust-hdl simulation
/// ([status_over_bus]).
pub fn status_from_registers<T: RdbeTop>(h: &mut Harness<T>) -> (CoreStatus, u32) {
    match status_over_bus(h) {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

macro_rules! define_rdbe {
    ($(#[$meta:meta])* $name:ident, $core:ty, $pipeline:ty, $merger:ty) => {
        $(#[$meta])*
        #[derive(LogicBlock, Default)]
        pub struct $name {
            pub clock: Signal<In, Clock>,
            /// Raw HM words into HM adapter IN.
            pub data_in: TupleStreamIn,
            /// The step's result from HM adapter OUT.
            pub data_out: TupleStreamOut,
            /// To the HM: end the current input transfer now (HM adapter IN's cut).
            pub hm_stop: Signal<Out, Bit>,
            pub reg_address: Signal<In, Bits<8>>,
            pub reg_write_data: Signal<In, Bits<16>>,
            pub reg_write: Signal<In, Bit>,
            /// Registered: the register `reg_address` named in the cycle before.
            pub reg_read_data: Signal<Out, Bits<16>>,
            pub hm_adapter_in: HmAdapterIn,
            pub engine_core: $core,
            pub hm_adapter_out: HmAdapterOut,
            pace_r: DFF<Bits<8>>,
            new_tid_r: DFF<Bit>,
            fault_enable_r: DFF<Bit>,
            fault_word_r: DFF<Bits<16>>,
            clear_r: DFF<Bit>,
            tid_r0: DFF<Bits<16>>,
            tid_r1: DFF<Bits<16>>,
            sort_r0: DFF<Bits<16>>,
            sort_r1: DFF<Bits<16>>,
            sort_r2: DFF<Bits<16>>,
            sort_r3: DFF<Bits<16>>,
            merge_r0: DFF<Bits<16>>,
            merge_r1: DFF<Bits<16>>,
            merge_r2: DFF<Bits<16>>,
            merge_r3: DFF<Bits<16>>,
            ufmt_r0: DFF<Bits<16>>,
            ufmt_r1: DFF<Bits<16>>,
            ufmt_r2: DFF<Bits<16>>,
            ufmt_r3: DFF<Bits<16>>,
            ufmt_r4: DFF<Bits<16>>,
            lfmt_r0: DFF<Bits<16>>,
            lfmt_r1: DFF<Bits<16>>,
            lfmt_r2: DFF<Bits<16>>,
            lfmt_r3: DFF<Bits<16>>,
            lfmt_r4: DFF<Bits<16>>,
            read_r: DFF<Bits<16>>,
            inject_r: DFF<Bits<16>>,
            inject_target_r0: DFF<Bits<16>>,
            inject_target_r1: DFF<Bits<16>>,
            inject_restart_r: DFF<Bit>,
            streams_out_count: DFF<Bits<5>>,
            streams_word: Signal<Local, Bits<16>>,
            flags: Signal<Local, Bits<16>>,
        }

        impl Logic for $name {
            #[hdl_gen]
            fn update(&mut self) {
                dff_setup!(
                    self, clock, pace_r, new_tid_r, fault_enable_r, fault_word_r, clear_r, tid_r0, tid_r1, sort_r0, sort_r1,
                    sort_r2, sort_r3, merge_r0, merge_r1, merge_r2, merge_r3, ufmt_r0, ufmt_r1,
                    ufmt_r2, ufmt_r3, ufmt_r4, lfmt_r0, lfmt_r1, lfmt_r2, lfmt_r3, lfmt_r4, read_r,
                    inject_r, inject_target_r0, inject_target_r1, inject_restart_r, streams_out_count
                );
                clock!(self, clock, hm_adapter_in, engine_core, hm_adapter_out);
                TupleStreamIn::link(&mut self.data_in, &mut self.hm_adapter_in.hm_in);
                TupleStreamOut::join(
                    &mut self.hm_adapter_in.data_out,
                    &mut self.engine_core.data_in,
                );
                TupleStreamOut::join(
                    &mut self.engine_core.data_out,
                    &mut self.hm_adapter_out.data_in,
                );
                TupleStreamOut::link(&mut self.data_out, &mut self.hm_adapter_out.hm_out);

                // ---- register writes
                self.clear_r.d.next = false;
                self.inject_restart_r.d.next = false;
                if self.reg_write.val() {
                    if self.reg_address.val() == 0x20 {
                        self.inject_r.d.next = self.reg_write_data.val();
                        self.inject_restart_r.d.next = true;
                    }
                    if self.reg_address.val() == 0x21 {
                        self.inject_target_r0.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x22 {
                        self.inject_target_r1.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x00 {
                        self.clear_r.d.next = self.reg_write_data.val().get_bit(0);
                    }
                    if self.reg_address.val() == 0x01 {
                        self.pace_r.d.next = self.reg_write_data.val().get_bits::<8>(0);
                    }
                    if self.reg_address.val() == 0x02 {
                        self.new_tid_r.d.next = self.reg_write_data.val().get_bit(0);
                    }
                    if self.reg_address.val() == 0x03 {
                        self.fault_enable_r.d.next = self.reg_write_data.val().get_bit(0);
                    }
                    if self.reg_address.val() == 0x04 {
                        self.tid_r0.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x06 {
                        self.fault_word_r.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x05 {
                        self.tid_r1.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x08 {
                        self.sort_r0.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x09 {
                        self.sort_r1.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x0A {
                        self.sort_r2.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x0B {
                        self.sort_r3.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x0C {
                        self.merge_r0.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x0D {
                        self.merge_r1.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x0E {
                        self.merge_r2.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x0F {
                        self.merge_r3.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x10 {
                        self.ufmt_r0.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x11 {
                        self.ufmt_r1.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x12 {
                        self.ufmt_r2.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x13 {
                        self.ufmt_r3.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x14 {
                        self.ufmt_r4.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x18 {
                        self.lfmt_r0.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x19 {
                        self.lfmt_r1.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x1A {
                        self.lfmt_r2.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x1B {
                        self.lfmt_r3.d.next = self.reg_write_data.val();
                    }
                    if self.reg_address.val() == 0x1C {
                        self.lfmt_r4.d.next = self.reg_write_data.val();
                    }
                }

                // ---- the registers drive the core's static ports: a field at bit o of a
                // register block is bits o % 16 and up of register o / 16, and when it
                // crosses into the next register, that register's low bits above them.
                // PipelinePort, CommandSettings, OutputFormat U and L (offsets checked
                // against the LogicStructs by a test). No concatenation of whole blocks:
                // rust-hdl simulates words over 32 bits bit by bit (a 71-bit one took a fifth
                // of a simulation pass), and the fields need no intermediate signal.
                self.engine_core.sort_settings.next.tuple_words = self.sort_r0.q.val().get_bits::<12>(0);
                self.engine_core.sort_settings.next.key_offset = bit_cast::<12, 4>(self.sort_r0.q.val().get_bits::<4>(12))
                    | (bit_cast::<12, 8>(self.sort_r1.q.val().get_bits::<8>(0)) << 4);
                self.engine_core.sort_settings.next.key_words = bit_cast::<12, 8>(self.sort_r1.q.val().get_bits::<8>(8))
                    | (bit_cast::<12, 4>(self.sort_r2.q.val().get_bits::<4>(0)) << 8);
                self.engine_core.sort_settings.next.key_type = self.sort_r2.q.val().get_bits::<2>(4);
                self.engine_core.sort_settings.next.key_nullable = self.sort_r2.q.val().get_bit(6);
                self.engine_core.sort_settings.next.key_null_bit = self.sort_r2.q.val().get_bits::<4>(7);
                self.engine_core.sort_settings.next.descending = self.sort_r2.q.val().get_bit(11);
                self.engine_core.sort_settings.next.sort_enable = self.sort_r2.q.val().get_bit(12);
                self.engine_core.sort_settings.next.tuples_hint = bit_cast::<16, 3>(self.sort_r2.q.val().get_bits::<3>(13))
                    | (bit_cast::<16, 13>(self.sort_r3.q.val().get_bits::<13>(0)) << 3);
                self.engine_core.merge_settings.next.command = self.merge_r0.q.val().get_bits::<5>(0);
                self.engine_core.merge_settings.next.delete_mode = self.merge_r0.q.val().get_bit(5);
                self.engine_core.merge_settings.next.key_words = bit_cast::<12, 10>(self.merge_r0.q.val().get_bits::<10>(6))
                    | (bit_cast::<12, 2>(self.merge_r1.q.val().get_bits::<2>(0)) << 10);
                self.engine_core.merge_settings.next.descending = self.merge_r1.q.val().get_bit(2);
                self.engine_core.merge_settings.next.tuple_words = self.merge_r1.q.val().get_bits::<12>(3);
                self.engine_core.merge_settings.next.second_offset = bit_cast::<12, 1>(self.merge_r1.q.val().get_bits::<1>(15))
                    | (bit_cast::<12, 11>(self.merge_r2.q.val().get_bits::<11>(0)) << 1);
                self.engine_core.merge_settings.next.second_nullable = self.merge_r2.q.val().get_bit(11);
                self.engine_core.merge_settings.next.second_null_bit = self.merge_r2.q.val().get_bits::<4>(12);
                self.engine_core.merge_settings.next.second_type = self.merge_r3.q.val().get_bits::<2>(0);
                self.engine_core.merge_settings.next.u_partial = self.merge_r3.q.val().get_bit(2);
                self.engine_core.u_format.next.tuple_words = self.ufmt_r0.q.val().get_bits::<12>(0);
                self.engine_core.u_format.next.key_offset = bit_cast::<12, 4>(self.ufmt_r0.q.val().get_bits::<4>(12))
                    | (bit_cast::<12, 8>(self.ufmt_r1.q.val().get_bits::<8>(0)) << 4);
                self.engine_core.u_format.next.key_words = bit_cast::<12, 8>(self.ufmt_r1.q.val().get_bits::<8>(8))
                    | (bit_cast::<12, 4>(self.ufmt_r2.q.val().get_bits::<4>(0)) << 8);
                self.engine_core.u_format.next.key_type = self.ufmt_r2.q.val().get_bits::<2>(4);
                self.engine_core.u_format.next.first_word = bit_cast::<12, 10>(self.ufmt_r2.q.val().get_bits::<10>(6))
                    | (bit_cast::<12, 2>(self.ufmt_r3.q.val().get_bits::<2>(0)) << 10);
                self.engine_core.u_format.next.end_word = self.ufmt_r3.q.val().get_bits::<12>(2);
                self.engine_core.u_format.next.first_field = bit_cast::<4, 2>(self.ufmt_r3.q.val().get_bits::<2>(14))
                    | (bit_cast::<4, 2>(self.ufmt_r4.q.val().get_bits::<2>(0)) << 2);
                self.engine_core.u_format.next.fields = self.ufmt_r4.q.val().get_bits::<5>(2);
                self.engine_core.l_format.next.tuple_words = self.lfmt_r0.q.val().get_bits::<12>(0);
                self.engine_core.l_format.next.key_offset = bit_cast::<12, 4>(self.lfmt_r0.q.val().get_bits::<4>(12))
                    | (bit_cast::<12, 8>(self.lfmt_r1.q.val().get_bits::<8>(0)) << 4);
                self.engine_core.l_format.next.key_words = bit_cast::<12, 8>(self.lfmt_r1.q.val().get_bits::<8>(8))
                    | (bit_cast::<12, 4>(self.lfmt_r2.q.val().get_bits::<4>(0)) << 8);
                self.engine_core.l_format.next.key_type = self.lfmt_r2.q.val().get_bits::<2>(4);
                self.engine_core.l_format.next.first_word = bit_cast::<12, 10>(self.lfmt_r2.q.val().get_bits::<10>(6))
                    | (bit_cast::<12, 2>(self.lfmt_r3.q.val().get_bits::<2>(0)) << 10);
                self.engine_core.l_format.next.end_word = self.lfmt_r3.q.val().get_bits::<12>(2);
                self.engine_core.l_format.next.first_field = bit_cast::<4, 2>(self.lfmt_r3.q.val().get_bits::<2>(14))
                    | (bit_cast::<4, 2>(self.lfmt_r4.q.val().get_bits::<2>(0)) << 2);
                self.engine_core.l_format.next.fields = self.lfmt_r4.q.val().get_bits::<5>(2);
                self.engine_core.new_tid.next = self.new_tid_r.q.val();
                self.engine_core.tid_base.next = (bit_cast::<32, 16>(self.tid_r1.q.val()) << 16)
                    | bit_cast::<32, 16>(self.tid_r0.q.val());
                self.engine_core.clear.next = self.clear_r.q.val();
                self.hm_adapter_out.clear.next = self.clear_r.q.val();
                self.hm_adapter_in.pace.next = self.pace_r.q.val();
                self.hm_adapter_out.pace.next = self.pace_r.q.val();
                self.hm_adapter_in.fault_enable.next = self.fault_enable_r.q.val();
                self.hm_adapter_in.fault_word.next = self.fault_word_r.q.val();
                self.hm_adapter_in.cut.next = self.engine_core.input_unneeded.val();
                self.hm_stop.next = self.hm_adapter_in.hm_stop.val();
                // ---- the fault injectors (test equipment): INJECT's kind index → FaultKind
                self.engine_core.fault_kind.next = FaultKind::Off;
                if self.inject_r.q.val().get_bits::<4>(0) == 1 {
                    self.engine_core.fault_kind.next = FaultKind::FlipData;
                }
                if self.inject_r.q.val().get_bits::<4>(0) == 2 {
                    self.engine_core.fault_kind.next = FaultKind::FlipParity;
                }
                if self.inject_r.q.val().get_bits::<4>(0) == 3 {
                    self.engine_core.fault_kind.next = FaultKind::FlipNull;
                }
                if self.inject_r.q.val().get_bits::<4>(0) == 4 {
                    self.engine_core.fault_kind.next = FaultKind::FlipDup;
                }
                if self.inject_r.q.val().get_bits::<4>(0) == 5 {
                    self.engine_core.fault_kind.next = FaultKind::FlipLast;
                }
                if self.inject_r.q.val().get_bits::<4>(0) == 6 {
                    self.engine_core.fault_kind.next = FaultKind::Drop;
                }
                if self.inject_r.q.val().get_bits::<4>(0) == 7 {
                    self.engine_core.fault_kind.next = FaultKind::Duplicate;
                }
                if self.inject_r.q.val().get_bits::<4>(0) == 8 {
                    self.engine_core.fault_kind.next = FaultKind::StuckAt0;
                }
                if self.inject_r.q.val().get_bits::<4>(0) == 9 {
                    self.engine_core.fault_kind.next = FaultKind::StuckAt1;
                }
                self.engine_core.fault_site.next = self.inject_r.q.val().get_bits::<2>(4);
                self.engine_core.fault_line.next = self.inject_r.q.val().get_bits::<4>(8);
                self.engine_core.fault_target.next = (bit_cast::<32, 16>(self.inject_target_r1.q.val()) << 16)
                    | bit_cast::<32, 16>(self.inject_target_r0.q.val());
                self.engine_core.fault_restart.next = self.inject_restart_r.q.val();
                // ---- streams out of HM adapter OUT since the clear, and a beat waiting
                if self.data_out.valid.val() & self.data_out.ready.val() & self.data_out.word.val().eos {
                    self.streams_out_count.d.next = self.streams_out_count.q.val() + 1;
                }
                if self.clear_r.q.val() {
                    self.streams_out_count.d.next = 0.into();
                }
                self.streams_word.next = bit_cast::<16, 5>(self.engine_core.streams_in.val())
                    | (bit_cast::<16, 5>(self.engine_core.streams_merged.val()) << 5)
                    | (bit_cast::<16, 5>(self.streams_out_count.q.val()) << 10);
                if self.data_out.valid.val() {
                    self.streams_word.next = self.streams_word.val() | 0x8000;
                }

                // ---- status word and registered reads
                self.flags.next = 0.into();
                if self.engine_core.busy.val() {
                    self.flags.next = self.flags.val() | 0x0001;
                }
                if self.engine_core.parity_error.val() {
                    self.flags.next = self.flags.val() | 0x8002;
                }
                if self.hm_adapter_out.parity_error.val() {
                    self.flags.next = self.flags.val() | 0x8004;
                }
                if self.engine_core.framing_error.val() {
                    self.flags.next = self.flags.val() | 0x8008;
                }
                if self.engine_core.sort_error.val() {
                    self.flags.next = self.flags.val() | 0x8010;
                }
                if self.engine_core.command_error.val() {
                    self.flags.next = self.flags.val() | 0x8020;
                }
                if self.engine_core.u_overflow.val() {
                    self.flags.next = self.flags.val() | 0x8040;
                }
                if self.engine_core.l_overflow.val() {
                    self.flags.next = self.flags.val() | 0x8080;
                }
                if self.engine_core.fault_injected.val() {
                    self.flags.next = self.flags.val() | 0x0100;
                }
                if self.engine_core.link_error.val() {
                    self.flags.next = self.flags.val() | 0x8200;
                }
                self.read_r.d.next = 0.into();
                if self.reg_address.val() == 0x01 {
                    self.read_r.d.next = bit_cast::<16, 8>(self.pace_r.q.val());
                }
                if (self.reg_address.val() == 0x02) & self.new_tid_r.q.val() {
                    self.read_r.d.next = 1.into();
                }
                if (self.reg_address.val() == 0x03) & self.fault_enable_r.q.val() {
                    self.read_r.d.next = 1.into();
                }
                if self.reg_address.val() == 0x04 {
                    self.read_r.d.next = self.tid_r0.q.val();
                }
                if self.reg_address.val() == 0x06 {
                    self.read_r.d.next = self.fault_word_r.q.val();
                }
                if self.reg_address.val() == 0x05 {
                    self.read_r.d.next = self.tid_r1.q.val();
                }
                if self.reg_address.val() == 0x08 {
                    self.read_r.d.next = self.sort_r0.q.val();
                }
                if self.reg_address.val() == 0x09 {
                    self.read_r.d.next = self.sort_r1.q.val();
                }
                if self.reg_address.val() == 0x0A {
                    self.read_r.d.next = self.sort_r2.q.val();
                }
                if self.reg_address.val() == 0x0B {
                    self.read_r.d.next = self.sort_r3.q.val();
                }
                if self.reg_address.val() == 0x0C {
                    self.read_r.d.next = self.merge_r0.q.val();
                }
                if self.reg_address.val() == 0x0D {
                    self.read_r.d.next = self.merge_r1.q.val();
                }
                if self.reg_address.val() == 0x0E {
                    self.read_r.d.next = self.merge_r2.q.val();
                }
                if self.reg_address.val() == 0x0F {
                    self.read_r.d.next = self.merge_r3.q.val();
                }
                if self.reg_address.val() == 0x10 {
                    self.read_r.d.next = self.ufmt_r0.q.val();
                }
                if self.reg_address.val() == 0x11 {
                    self.read_r.d.next = self.ufmt_r1.q.val();
                }
                if self.reg_address.val() == 0x12 {
                    self.read_r.d.next = self.ufmt_r2.q.val();
                }
                if self.reg_address.val() == 0x13 {
                    self.read_r.d.next = self.ufmt_r3.q.val();
                }
                if self.reg_address.val() == 0x14 {
                    self.read_r.d.next = self.ufmt_r4.q.val();
                }
                if self.reg_address.val() == 0x18 {
                    self.read_r.d.next = self.lfmt_r0.q.val();
                }
                if self.reg_address.val() == 0x19 {
                    self.read_r.d.next = self.lfmt_r1.q.val();
                }
                if self.reg_address.val() == 0x1A {
                    self.read_r.d.next = self.lfmt_r2.q.val();
                }
                if self.reg_address.val() == 0x1B {
                    self.read_r.d.next = self.lfmt_r3.q.val();
                }
                if self.reg_address.val() == 0x1C {
                    self.read_r.d.next = self.lfmt_r4.q.val();
                }
                if self.reg_address.val() == 0x20 {
                    self.read_r.d.next = self.inject_r.q.val();
                }
                if self.reg_address.val() == 0x21 {
                    self.read_r.d.next = self.inject_target_r0.q.val();
                }
                if self.reg_address.val() == 0x22 {
                    self.read_r.d.next = self.inject_target_r1.q.val();
                }
                if self.reg_address.val() == 0x80 {
                    self.read_r.d.next = self.flags.val();
                }
                if self.reg_address.val() == 0x81 {
                    self.read_r.d.next = self.engine_core.violations.val();
                }
                if self.reg_address.val() == 0x82 {
                    self.read_r.d.next = self.engine_core.u_tuples.val();
                }
                if self.reg_address.val() == 0x83 {
                    self.read_r.d.next = self.engine_core.capacity_tuples.val();
                }
                if self.reg_address.val() == 0x84 {
                    self.read_r.d.next = self.hm_adapter_out.tuples.val().get_bits::<16>(0);
                }
                if self.reg_address.val() == 0x85 {
                    self.read_r.d.next = self.hm_adapter_out.tuples.val().get_bits::<16>(16);
                }
                if self.reg_address.val() == 0x86 {
                    self.read_r.d.next = self.engine_core.l_taken.val().get_bits::<16>(0);
                }
                if self.reg_address.val() == 0x87 {
                    self.read_r.d.next = self.engine_core.l_taken.val().get_bits::<16>(16);
                }
                if self.reg_address.val() == 0x88 {
                    self.read_r.d.next = self.streams_word.val();
                }
                self.reg_read_data.next = self.read_r.q.val();
            }
        }

        impl StoredWords for $name {
            fn live_memories(&mut self) -> Vec<LiveMemory<'_>> {
                (self.engine_core.live_memories().into_iter())
                    .map(|m| m.within("engine_core"))
                    .collect()
            }
        }

        impl RdbeTop for $name {
            fn set_register_write(&mut self, addr: u8, data: u16, write: bool) {
                self.reg_address.next = (addr as u64).into();
                self.reg_write_data.next = (data as u64).into();
                self.reg_write.next = write;
            }
            fn register_read_data(&self) -> u16 {
                self.reg_read_data.val().index() as u16
            }
            fn status(&self) -> CoreStatus {
                let mut s = self.engine_core.status();
                s.parity_error |= self.hm_adapter_out.parity_error.val();
                s.streams_out = self.streams_out_count.q.val().index() as u8;
                s.output_pending = self.data_out.valid.val();
                s
            }
            fn tuples_output(&self) -> u32 {
                self.hm_adapter_out.tuples.val().to_u32()
            }
            fn cell_address_bits() -> &'static [usize] {
                <$core as EngineCoreTop>::cell_address_bits()
            }
            fn max_tuple_words() -> usize {
                <$pipeline as SortPipelineTop>::max_tuple_words()
            }
            fn tuple_memory_words() -> usize {
                <$merger>::TUPLE_MEMORY_WORDS
            }
        }

        impl crate::harness::Clocked for $name {
            fn clock_mut(&mut self) -> &mut Signal<In, Clock> {
                &mut self.clock
            }
        }

        impl crate::harness::StreamBlock for $name {
            fn stream_in(&mut self) -> &mut TupleStreamIn {
                &mut self.data_in
            }
            fn stream_out(&mut self) -> &mut TupleStreamOut {
                &mut self.data_out
            }
            fn transfer_stopped(&self) -> bool {
                self.hm_stop.val()
            }
        }
    };
}

define_rdbe!(
    /// The paper-size engine with its HM adapters and register interface.
    DeltaRdbe,
    DeltaEngineCore,
    DeltaSortPipeline,
    MergerDelta
);

define_rdbe!(
    /// The iCE40 HX8K engine with its HM adapters and register interface.
    SmallRdbe,
    SmallEngineCore,
    SmallSortPipeline,
    MergerSmall
);

// Keep the struct widths the registers assume in one place.
const _: () = assert!(<PipelinePort as Synth>::BITS == 61);
const _: () = assert!(<CommandSettings as Synth>::BITS == 51);
const _: () = assert!(<OutputFormat as Synth>::BITS == 71);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine_core::tests::{relation, sort_key, sorted_run};
    use crate::engine_core::{core_step_l_taken, core_step_model, core_step_model_with_dup};
    use crate::harness::Pacing;
    use crate::in_module::{InConfig, KeyType};
    use crate::merger::{MergerCommand, MergerSettings};
    use crate::output_control_part::{OutputSettings, SideFormat};
    use crate::sort_pipeline::model::sort_pipeline_model;
    use crate::tuple_stream::{compact_beats, dp_constant_per_tuple, split_tuples_with_dup, Beat};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn input() -> InConfig {
        InConfig {
            tuple_words: 4,
            key_offset: 2,
            key_words: 1,
            key_type: KeyType::Signed,
            key_null_bit: Some(1),
        }
    }

    fn sort() -> PipelineSettings {
        PipelineSettings {
            input: input(),
            descending: false,
            sort_enable: true,
            tuples_hint: 0,
        }
    }

    fn merge(command: MergerCommand) -> MergerConfig {
        MergerConfig {
            command,
            delete: false,
            settings: MergerSettings::ascending(1),
            tuple_words: 4,
            output: OutputSettings {
                new_tid: true,
                tid_base: 0x0003_fffe,
                ..OutputSettings::both(SideFormat::whole(&input(), 3))
            },
        }
    }

    /// Output tuples with their DP line.
    type TuplesWithDup = Vec<(Vec<u16>, bool)>;

    /// LOAD `u` then run `command` on `l`, all set up through the register bus; returns
    /// the RTL's output tuples with DP and the model's.
    fn step<T: RdbeTop>(
        h: &mut Harness<T>,
        command: MergerCommand,
        u: &[Vec<u16>],
        l: &[Vec<u16>],
        pace: u8,
        pacing: Pacing,
    ) -> (TuplesWithDup, TuplesWithDup) {
        let sort = sort();
        let cmd = merge(command);
        let load = MergerConfig {
            command: MergerCommand::Load,
            ..cmd
        };
        let hm = HmSettings {
            pace,
            ..Default::default()
        };
        pulse_clear(h);
        configure(h, &sort, &load, hm).unwrap();
        let r = h.run_stream(&compact_beats(u), pacing, 400_000);
        assert_eq!(r.output, vec![Beat::eos()], "LOAD outputs nothing");
        configure(h, &sort, &cmd, hm).unwrap();
        let r = h.run_stream(&compact_beats(l), pacing, 400_000);
        assert!(!h.uut.status().error(), "{:?}", h.uut.status());
        assert!(dp_constant_per_tuple(&r.output));
        let got = split_tuples_with_dup(&r.output);
        assert_eq!(h.uut.tuples_output() as usize, got.len());
        let cells = T::cell_address_bits();
        let u_internal = sort_pipeline_model(cells, &sort, u).tuples;
        let expected = core_step_model_with_dup(cells, &sort, l, &cmd, &u_internal).unwrap();
        assert_eq!(
            core_step_model(cells, &sort, l, &cmd, &u_internal).unwrap(),
            expected.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>()
        );
        (got, expected)
    }

    #[test]
    fn register_decode_matches_the_packed_structs() {
        // The offsets hard-wired in the decode are the LogicStructs' own.
        let p = PipelinePort::default();
        let pipeline = [
            (p.get_my_offset_tuple_words(), 0),
            (p.get_my_offset_key_offset(), 12),
            (p.get_my_offset_key_words(), 24),
            (p.get_my_offset_key_type(), 36),
            (p.get_my_offset_key_nullable(), 38),
            (p.get_my_offset_key_null_bit(), 39),
            (p.get_my_offset_descending(), 43),
            (p.get_my_offset_sort_enable(), 44),
            (p.get_my_offset_tuples_hint(), 45),
        ];
        let c = CommandSettings::default();
        let command = [
            (c.get_my_offset_command(), 0),
            (c.get_my_offset_delete_mode(), 5),
            (c.get_my_offset_key_words(), 6),
            (c.get_my_offset_descending(), 18),
            (c.get_my_offset_tuple_words(), 19),
            (c.get_my_offset_second_offset(), 31),
            (c.get_my_offset_second_nullable(), 43),
            (c.get_my_offset_second_null_bit(), 44),
            (c.get_my_offset_second_type(), 48),
            (c.get_my_offset_u_partial(), 50),
        ];
        let f = OutputFormat::default();
        let format = [
            (f.get_my_offset_tuple_words(), 0),
            (f.get_my_offset_key_offset(), 12),
            (f.get_my_offset_key_words(), 24),
            (f.get_my_offset_key_type(), 36),
            (f.get_my_offset_first_word(), 38),
            (f.get_my_offset_end_word(), 50),
            (f.get_my_offset_first_field(), 62),
            (f.get_my_offset_fields(), 66),
        ];
        for (got, want) in pipeline.iter().chain(&command).chain(&format) {
            assert_eq!(got, want);
        }
        // And the ports the registers drive equal what EngineCoreTop::apply would set.
        let mut rng = ChaCha8Rng::seed_from_u64(71);
        let mut h = Harness::new(SmallRdbe::default());
        let mut checked = 0;
        for _ in 0..20 {
            let n = rng.gen_range(2..40);
            let key_offset = rng.gen_range(1..n);
            let input = InConfig {
                tuple_words: n,
                key_offset,
                key_words: rng.gen_range(1..=n - key_offset),
                key_type: KeyType::Unsigned,
                key_null_bit: if rng.gen() {
                    Some(rng.gen_range(0..16))
                } else {
                    None
                },
            };
            let sort = PipelineSettings {
                input: input.clone(),
                descending: rng.gen(),
                sort_enable: rng.gen(),
                tuples_hint: rng.gen_range(0..70000),
            };
            let command = MergerCommand::ALL[rng.gen_range(0..29)];
            let cfg = MergerConfig {
                command,
                delete: rng.gen(),
                settings: MergerSettings {
                    key_words: 1,
                    descending: rng.gen(),
                    second_offset: 0,
                    second_null_bit: Some(rng.gen_range(0..16)),
                    second_type: KeyType::Signed,
                    u_partial: command == MergerCommand::SortEx,
                },
                tuple_words: n,
                output: OutputSettings {
                    new_tid: rng.gen(),
                    tid_base: rng.gen(),
                    ..OutputSettings::both(SideFormat {
                        first_field: rng.gen_range(0..4),
                        fields: rng.gen_range(0..5),
                        ..SideFormat::whole(&input, 8)
                    })
                },
            };
            let hm = HmSettings {
                pace: rng.gen(),
                parity_fault: rng.gen_bool(0.5).then(|| rng.gen()),
            };
            if register_writes(&sort, &cfg, hm).is_err() {
                continue;
            }
            checked += 1;
            configure(&mut h, &sort, &cfg, hm).unwrap();
            h.cycle();
            let core = &h.uut.engine_core;
            assert_eq!(core.sort_settings.val(), sort.port());
            assert_eq!(core.merge_settings.val(), cfg.command_settings());
            assert_eq!(core.u_format.val(), cfg.output.u.to_bits());
            assert_eq!(core.l_format.val(), cfg.output.l.to_bits());
            assert_eq!(core.new_tid.val(), cfg.output.new_tid);
            assert_eq!(core.tid_base.val().to_u32(), cfg.output.tid_base);
            assert_eq!(h.uut.hm_adapter_in.pace.val().index(), hm.pace as usize);
            assert_eq!(h.uut.hm_adapter_out.pace.val().index(), hm.pace as usize);
            assert_eq!(
                h.uut.hm_adapter_in.fault_enable.val(),
                hm.parity_fault.is_some()
            );
            if let Some(word) = hm.parity_fault {
                assert_eq!(h.uut.hm_adapter_in.fault_word.val().index(), word as usize);
            }
            // Every register reads back what was written.
            for (addr, data) in register_writes(&sort, &cfg, hm).unwrap() {
                assert_eq!(read_register(&mut h, addr), data, "register {addr:#04x}");
            }
        }
        assert!(checked >= 10, "{checked} valid random configurations");
    }

    #[test]
    fn register_writes_validate_first() {
        let mut cfg = merge(MergerCommand::JoinEq);
        cfg.tuple_words = 5;
        let hm = HmSettings::default();
        let e = register_writes(&sort(), &cfg, hm).unwrap_err().to_string();
        assert!(e.contains("differs") || e.contains("5-word"), "{e}");
        let mut s = sort();
        s.input.key_offset = 9;
        assert!(register_writes(&s, &merge(MergerCommand::Pass1), hm).is_err());
        // A tuple longer than the small IN module takes is refused by configure.
        let mut h = Harness::new(SmallRdbe::default());
        let long = InConfig {
            tuple_words: 200,
            key_offset: 1,
            key_words: 1,
            key_type: KeyType::Unsigned,
            key_null_bit: None,
        };
        let s = PipelineSettings {
            input: long.clone(),
            ..sort()
        };
        let cfg = MergerConfig {
            tuple_words: 200,
            output: OutputSettings::both(SideFormat::whole(&long, 1)),
            ..merge(MergerCommand::Pass1)
        };
        assert!(register_writes(&s, &cfg, hm).is_ok());
        assert!(configure(&mut h, &s, &cfg, hm).is_err());
    }

    #[test]
    fn small_rdbe_runs_load_then_commands_through_registers_like_the_model() {
        let mut rng = ChaCha8Rng::seed_from_u64(72);
        let mut h = Harness::new(SmallRdbe::default());
        for command in [
            MergerCommand::JoinEq,
            MergerCommand::Pass1,
            MergerCommand::SortEx,
            MergerCommand::RestNe,
        ] {
            let (nu, nl) = (rng.gen_range(0..25), rng.gen_range(0..30));
            let u = relation(&mut rng, nu);
            let l = relation(&mut rng, nl);
            let pace = rng.gen_range(0..4);
            let pacing = Pacing {
                source_duty: rng.gen_range(0.5..=1.0),
                sink_duty: rng.gen_range(0.5..=1.0),
                seed: rng.gen(),
            };
            let (got, expected) = step(&mut h, command, &u, &l, pace, pacing);
            assert_eq!(got, expected, "{}", command.name());
        }
    }

    #[test]
    fn delta_rdbe_joins_through_registers() {
        let mut rng = ChaCha8Rng::seed_from_u64(73);
        let mut h = Harness::new(DeltaRdbe::default());
        let u = relation(&mut rng, 30);
        let l = relation(&mut rng, 40);
        let (got, expected) = step(&mut h, MergerCommand::JoinEq, &u, &l, 0, Pacing::FULL_RATE);
        assert!(!got.is_empty());
        assert_eq!(got, expected);
    }

    #[test]
    fn status_reads_back_over_the_bus() {
        let mut rng = ChaCha8Rng::seed_from_u64(74);
        let mut h = Harness::new(SmallRdbe::default());
        let u = relation(&mut rng, 9);
        let l = relation(&mut rng, 12);
        step(&mut h, MergerCommand::Pass1, &u, &l, 0, Pacing::FULL_RATE);
        let (status, tuples) = status_from_registers(&mut h);
        assert_eq!(status, h.uut.status());
        assert_eq!(status.u_tuples, 9);
        assert_eq!(status.capacity_tuples, 32);
        assert_eq!(tuples, 12);
        assert_eq!(h.uut.tuples_output(), 12);
        assert_eq!(read_register(&mut h, REG_STATUS), 0, "idle, no error");
        // A command code beyond Fig. 5's 29: command error.
        write_register(&mut h, REG_MERGE_SETTINGS, 31);
        h.run_stream(&compact_beats(&l), Pacing::FULL_RATE, 10_000);
        // A relation whose `last` disagrees with the tuple length: framing error.
        let hm = HmSettings::default();
        configure(&mut h, &sort(), &merge(MergerCommand::Pass1), hm).unwrap();
        let mut beats = compact_beats(&l[..2]);
        beats[1].last = true;
        h.run_stream(&beats, Pacing::FULL_RATE, 10_000);
        let flags = read_register(&mut h, REG_STATUS);
        use status_bits::*;
        assert_eq!(
            flags,
            COMMAND_ERROR | FRAMING_ERROR | ANY_ERROR,
            "{flags:#06x}"
        );
        let (status, _) = status_from_registers(&mut h);
        assert_eq!(status, h.uut.status());
        assert!(status.command_error && status.framing_error && !status.parity_error);
        // BUSY, read over the bus every cycle while a PASS-1 runs, is high while the
        // merger passes the tuples and low again after the end-of-stream beat.
        let beats = compact_beats(&l);
        let mut next = 0;
        let mut busy_cycles = 0;
        h.uut.set_register_write(REG_STATUS, 0, false);
        h.uut.stream_out().ready.next = true;
        for _ in 0..2000 {
            let offer = next < beats.len();
            h.uut.stream_in().valid.next = offer;
            if offer {
                h.uut.stream_in().word.next = beats[next].into();
            }
            h.settle();
            let fire = offer && h.uut.stream_in().ready.val();
            let out_eos = h.uut.stream_out().valid.val() && h.uut.stream_out().word.val().eos;
            h.cycle();
            next += fire as usize;
            busy_cycles += (h.uut.register_read_data() & BUSY != 0) as usize;
            if out_eos {
                break;
            }
        }
        h.uut.stream_in().valid.next = false;
        assert_eq!(next, beats.len());
        assert!(busy_cycles >= 12 * 4, "busy for {busy_cycles} cycles");
        h.cycle();
        assert_eq!(read_register(&mut h, REG_STATUS) & BUSY, 0, "idle again");
        // CONTROL's clear resets the flags, the counters and U-memory.
        pulse_clear(&mut h);
        let (status, tuples) = status_from_registers(&mut h);
        assert!(!status.error(), "{status:?}");
        assert_eq!((status.u_tuples, status.violations, tuples), (0, 0, 0));
        assert_eq!(read_register(&mut h, REG_CONTROL), 0);
        assert_eq!(read_register(&mut h, 0x7f), 0, "unmapped");
    }

    /// What the top shows its environment: the two handshakes out, the beat out, hm_stop
    /// and the register read data.
    fn outputs<T: RdbeTop>(
        h: &mut Harness<T>,
    ) -> (bool, bool, crate::tuple_stream::TupleWord, bool, u16) {
        (
            h.uut.stream_in().ready.val(),
            h.uut.stream_out().valid.val(),
            h.uut.stream_out().word.val(),
            h.uut.transfer_stopped(),
            h.uut.register_read_data(),
        )
    }

    /// No output of the top follows an input within a cycle: every output comes from
    /// flip-flops, through logic on them and on internal signals only. The Verilator
    /// driver relies on it (sim/verilator/rdbe_driver.cpp samples the outputs before it
    /// sets a cycle's inputs, so a cycle costs one evaluation). Checked here on a JOIN
    /// run with random pacing on both sides and random register reads: every cycle, the
    /// outputs settled with the cycle's inputs must not move when every input is changed.
    #[test]
    fn no_output_follows_an_input_within_a_cycle() {
        let mut rng = ChaCha8Rng::seed_from_u64(76);
        let mut h = Harness::new(SmallRdbe::default());
        let u = relation(&mut rng, 20);
        let l = relation(&mut rng, 30);
        let load = MergerConfig {
            command: MergerCommand::Load,
            ..merge(MergerCommand::JoinEq)
        };
        let hm = HmSettings::default();
        configure(&mut h, &sort(), &load, hm).unwrap();
        h.run_stream(&compact_beats(&u), Pacing::FULL_RATE, 10_000);
        configure(&mut h, &sort(), &merge(MergerCommand::JoinEq), hm).unwrap();
        let beats = compact_beats(&l);
        let mut next = 0;
        let mut ended = false;
        for _ in 0..20_000 {
            let offer = next < beats.len() && !h.uut.transfer_stopped() && rng.gen_bool(0.7);
            let ready = rng.gen_bool(0.7);
            let address: u8 = rng.gen_range(0..0x80);
            let apply = |h: &mut Harness<SmallRdbe>, offer: bool, word: Beat, ready, address| {
                h.uut.stream_in().valid.next = offer;
                h.uut.stream_in().word.next = word.into();
                h.uut.stream_out().ready.next = ready;
                h.uut.set_register_write(address, 0, false);
                h.settle();
            };
            let word = beats[next.min(beats.len() - 1)];
            apply(&mut h, offer, word, ready, address);
            let seen = outputs(&mut h);
            let mut other = word;
            other.data ^= 0xffff;
            other.parity ^= 3;
            other.null = !other.null;
            other.dup = !other.dup;
            other.last = !other.last;
            other.eos = !other.eos;
            apply(&mut h, !offer, other, !ready, address ^ 0x55);
            assert_eq!(outputs(&mut h), seen, "outputs moved with the inputs");
            apply(&mut h, offer, word, ready, address);
            let (in_ready, out_valid, out_word, _, _) = seen;
            h.cycle();
            next += (offer && in_ready) as usize;
            if out_valid && ready && out_word.eos {
                ended = true;
                break;
            }
        }
        assert!(ended, "the JOIN ended ({next} of {} beats in)", beats.len());
    }

    #[test]
    fn pace_3_takes_about_3_cycles_per_word_on_both_hm_sides() {
        let mut rng = ChaCha8Rng::seed_from_u64(75);
        let l = relation(&mut rng, 30);
        let beats = compact_beats(&l);
        for (pace, low, high) in [(0u8, 1.0, 1.1), (3, 2.99, 3.1)] {
            let mut h = Harness::new(SmallRdbe::default());
            let hm = HmSettings {
                pace,
                ..Default::default()
            };
            configure(&mut h, &sort(), &merge(MergerCommand::Pass1), hm).unwrap();
            let r = h.run_stream(&beats, Pacing::FULL_RATE, 20_000);
            for (what, c) in [("input", &r.input_cycles), ("output", &r.output_cycles)] {
                let per_word = (c[c.len() - 1] - c[0]) as f64 / (c.len() - 1) as f64;
                assert!(
                    (low..=high).contains(&per_word),
                    "pace {pace}: {per_word:.3} cycles per {what} word"
                );
            }
            assert_eq!(split_tuples_with_dup(&r.output).len(), 30);
        }
    }

    #[test]
    fn partial_sort_ex_cuts_the_input_and_reports_l_taken_over_the_bus() {
        // Case 3's two-way merge of runs A and B with A in chunks of 12 tuples: each chunk
        // but the last is merged with the rest of B in partial-U mode; the core stops
        // taking B when the chunk runs out, HM adapter IN cuts B's transfer, and L_TAKEN
        // says where B resumes.
        let mut rng = ChaCha8Rng::seed_from_u64(77);
        let (a, b) = (sorted_run(&mut rng, 60), sorted_run(&mut rng, 200));
        let mut h = Harness::new(SmallRdbe::default());
        let cells = SmallRdbe::cell_address_bits();
        let hm = HmSettings::default();
        let presorted = PipelineSettings {
            sort_enable: false,
            ..sort()
        };
        let mut merged = vec![];
        let mut resume = 0;
        let mut cuts = 0;
        let chunks: Vec<&[Vec<u16>]> = a.chunks(12).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let partial = i + 1 < chunks.len();
            let mut cmd = merge(MergerCommand::SortEx);
            cmd.output.new_tid = false;
            let load = MergerConfig {
                command: MergerCommand::Load,
                ..cmd
            };
            cmd.settings.u_partial = partial;
            pulse_clear(&mut h);
            configure(&mut h, &presorted, &load, hm).unwrap();
            h.run_stream(&compact_beats(chunk), Pacing::FULL_RATE, 20_000);
            configure(&mut h, &presorted, &cmd, hm).unwrap();
            let rest = &b[resume..];
            let beats = compact_beats(rest);
            let r = h.run_stream(&beats, Pacing::FULL_RATE, 40_000);
            let (status, _) = status_from_registers(&mut h);
            assert!(!status.error(), "{status:?}");
            let u = sort_pipeline_model(cells, &presorted, chunk).tuples;
            let want = core_step_model(cells, &presorted, rest, &cmd, &u).unwrap();
            let want_taken = core_step_l_taken(cells, &presorted, rest, &cmd, &u).unwrap();
            let got: Vec<Vec<u16>> = split_tuples_with_dup(&r.output)
                .into_iter()
                .map(|(t, _)| t)
                .collect();
            assert_eq!(got, want, "chunk {i}");
            assert_eq!(status.l_taken as usize, want_taken, "chunk {i}");
            if partial && want_taken + 80 < rest.len() {
                // L-memory (64 tuples) and the pipeline hold what was taken in flight.
                assert!(
                    r.input_cycles.len() < beats.len(),
                    "chunk {i}: the transfer of B was not cut"
                );
                cuts += 1;
            }
            merged.extend(got);
            resume += status.l_taken as usize;
        }
        // The chunked merge is the stable merge of A and B (A first on equal keys).
        assert!(cuts >= 2, "{cuts} cut transfers");
        let mut want: Vec<Vec<u16>> = [a, b].concat();
        want.sort_by_key(|t| sort_key(t));
        assert_eq!(merged, want);
    }

    #[test]
    fn diagnostic_fault_reaches_the_core_parity_checker() {
        let mut rng = ChaCha8Rng::seed_from_u64(76);
        let l = relation(&mut rng, 10);
        let mut h = Harness::new(SmallRdbe::default());
        let pass = merge(MergerCommand::Pass1);
        for (fault, flagged) in [(None, false), (Some(13), true), (Some(40), false)] {
            pulse_clear(&mut h);
            let hm = HmSettings {
                pace: 0,
                parity_fault: fault,
            };
            configure(&mut h, &sort(), &pass, hm).unwrap();
            let r = h.run_stream(&compact_beats(&l), Pacing::FULL_RATE, 20_000);
            assert_eq!(split_tuples_with_dup(&r.output).len(), 10);
            let flags = read_register(&mut h, REG_STATUS);
            assert_eq!(
                flags & status_bits::CORE_PARITY_ERROR != 0,
                flagged,
                "fault {fault:?} (the stream has 40 words): {flags:#06x}"
            );
            assert_eq!(flags & status_bits::ANY_ERROR != 0, flagged);
        }
    }

    /// The memory sites a Verilog simulation strikes memory faults by name: every array and
    /// register they name is in the exported Verilog (rust-hdl names a sub-module after its
    /// path from the top, and a register's flip-flop is a module with the output `q`).
    #[test]
    fn every_memory_site_names_arrays_and_registers_of_the_exported_verilog() {
        fn check(v: &str, sites: &[crate::memory_fault::MemorySite], memories: usize) {
            let module = |path: &str| format!("module top${}(", path.replace('.', "$"));
            assert_eq!(sites.len(), memories);
            for site in sites {
                let start = v
                    .find(&module(&site.path))
                    .unwrap_or_else(|| panic!("no module for {site:?}"));
                let body = &v[start..start + v[start..].find("endmodule").unwrap()];
                for (array, _, width) in site.arrays() {
                    let var = array.rsplit_once('.').unwrap().1;
                    let declaration =
                        format!("reg [{}:0] {var} [0:{}];", width - 1, site.words - 1);
                    assert!(
                        body.contains(&declaration),
                        "{declaration} in {}",
                        site.path
                    );
                }
                for register in site.range.clone().registers_mut() {
                    let flip_flop = format!("{}d,q,clock);", module(&register.path));
                    assert!(v.contains(&flip_flop), "{flip_flop}");
                }
            }
        }
        let mut small = SmallRdbe::default();
        let v = crate::verilog::export(SmallRdbe::default());
        // 5 cells × 2 FIFOs, U and L, the output control part's two.
        check(&v, &crate::memory_fault::memory_sites(&mut small), 14);
        let mut delta = DeltaRdbe::default();
        let v = crate::verilog::export(DeltaRdbe::default());
        let sites = crate::memory_fault::memory_sites(&mut delta);
        check(&v, &sites, 28);
        // The deep memories are two arrays (lanes): U-memory's data and parity, then the rest.
        let u = sites.iter().find(|s| s.name == "U-memory").unwrap();
        assert_eq!(u.arrays().len(), 2);
    }

    #[test]
    fn small_rdbe_verilog_passes_yosys_and_verilator() {
        let v = crate::verilog::export(SmallRdbe::default());
        crate::verilog::check_module("rdbe_small", &v).unwrap();
    }

    #[test]
    fn delta_rdbe_verilog_passes_yosys_and_verilator() {
        let t0 = std::time::Instant::now();
        let v = crate::verilog::export(DeltaRdbe::default());
        crate::verilog::check_module("rdbe_delta", &v).unwrap();
        eprintln!(
            "DeltaRdbe Verilog check: {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }
}
