//! Sorting a typed relation through the engine core's front half (IN module → sorter →
//! sorting checker), on the rust-hdl simulation of the RTL or on the reference model.
//!
//! This is the part of the control program (paper §5) that turns "sort R by field F" into
//! engine parameters: the key's word offset and length, its type (for the IN module's key
//! transformation) and its null tag bit. Undoing the rotation and the key transformation is
//! the merger's output control part (Fig. 7), not built yet; until then this module undoes
//! them in software, with the same inverse functions the output control part will mirror.
use crate::relation::{decode_tuple, Relation};
use anyhow::{bail, ensure, Context, Result};
use rdbe_rtl::harness::{Harness, Pacing};
use rdbe_rtl::in_module::{rotate_to_compact, undo_transform_key, InConfig, KeyType};
use rdbe_rtl::sort_pipeline::{
    model_output, run_pipeline, DeltaSortPipeline, PipelineSettings, PipelineStatus,
    SmallSortPipeline, SortPipelineTop,
};
use rdbe_rtl::tuple_stream::StreamTuple;
use std::path::Path;

/// Which engine configuration to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineConfig {
    /// The paper's sizes: 12-cell sorter, C = min(4096·L, 64 KB).
    Delta,
    /// iCE40 HX8K sizes: 5-cell sorter, 32 tuples of ≤ 16 bytes.
    Small,
}

/// Which backend computes the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The rust-hdl simulation of the RTL.
    Rtl,
    /// The pure-Rust reference model.
    Model,
    /// The same RDBE top as `rtl`, its exported Verilog compiled by Verilator (built on
    /// first use, then cached): the same results and cycle counts, much faster. Needs
    /// `verilator` (`apt-get install -y verilator`).
    Verilator,
}

impl Backend {
    /// The name `--backend` takes and reports give ([crate::engine::Engine::backend_name]).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Rtl => "rtl",
            Backend::Model => "model",
            Backend::Verilator => "verilator",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortKey {
    Field(String),
    /// Every field, in schema order starting from the first, then the null tags.
    WholeTuple,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortSpec {
    pub key: SortKey,
    pub descending: bool,
}

#[derive(Clone, Debug)]
pub struct SortResult {
    /// The relation in the order the engine emitted it.
    pub relation: Relation,
    /// The DP line of each output tuple: its key equals the next tuple's.
    pub dup: Vec<bool>,
    /// Simulated cycles (0 for the model).
    pub cycles: u64,
    pub status: PipelineStatus,
}

/// Engine parameters for sorting `relation` by `spec` (paper §5 (3)).
pub fn pipeline_settings(relation: &Relation, spec: &SortSpec) -> Result<PipelineSettings> {
    let schema = &relation.schema;
    let n = schema.tuple_words();
    let input = match &spec.key {
        SortKey::WholeTuple => InConfig {
            tuple_words: n,
            key_offset: 1,
            key_words: n,
            key_type: KeyType::Unsigned,
            key_null_bit: None,
        },
        SortKey::Field(name) => {
            let index = schema
                .field_index(name)
                .with_context(|| format!("sort key of relation '{}'", relation.name))?;
            let ty = schema.fields[index].ty;
            InConfig {
                tuple_words: n,
                key_offset: schema.word_offset(index),
                key_words: ty.words(),
                key_type: ty.key_type(),
                key_null_bit: Some(index as u8),
            }
        }
    };
    let s = PipelineSettings {
        input,
        descending: spec.descending,
        sort_enable: true,
        tuples_hint: relation.tuples.len(),
    };
    s.validate()?;
    Ok(s)
}

fn decode_output(
    relation: &Relation,
    s: &PipelineSettings,
    output: &[StreamTuple],
) -> Result<(Relation, Vec<bool>)> {
    let mut tuples = Vec::with_capacity(output.len());
    let mut dup = Vec::with_capacity(output.len());
    for t in output {
        let mut internal = t.words.clone();
        undo_transform_key(s.input.key_type, &mut internal[..s.input.key_words]);
        let compact = rotate_to_compact(&s.input, &internal);
        tuples.push(decode_tuple(&relation.schema, &compact)?);
        dup.push(t.dup);
    }
    Ok((
        Relation {
            name: relation.name.clone(),
            schema: relation.schema.clone(),
            tuples,
        },
        dup,
    ))
}

fn check_capacity(relation: &Relation, capacity: usize) -> Result<()> {
    ensure!(
        relation.tuples.len() <= capacity,
        "relation '{}' has {} tuples of {} bytes; the sorter holds {capacity} such tuples \
         (relations beyond the capacity need the control program's external sort)",
        relation.name,
        relation.tuples.len(),
        relation.schema.tuple_bytes()
    );
    Ok(())
}

fn run_on<T: SortPipelineTop>(
    relation: &Relation,
    spec: &SortSpec,
    backend: Backend,
    vcd: Option<&Path>,
) -> Result<SortResult> {
    let s = pipeline_settings(relation, spec)?;
    ensure!(
        s.input.tuple_words <= T::max_tuple_words(),
        "tuples of relation '{}' are {} words; this configuration takes at most {}",
        relation.name,
        s.input.tuple_words,
        T::max_tuple_words()
    );
    let capacity = rdbe_rtl::sorter::capacity_tuples(T::cell_address_bits(), s.input.tuple_words);
    check_capacity(relation, capacity)?;
    let compact = relation.encode()?;
    let (output, cycles, status) = match backend {
        Backend::Model => {
            let report = model_output::<T>(&s, &compact);
            let status = PipelineStatus {
                capacity_tuples: capacity,
                violations: report.violations,
                sort_error: report.violations != 0,
                ..Default::default()
            };
            (report.tuples, 0, status)
        }
        Backend::Rtl => {
            let mut h = Harness::new(T::default());
            // Trace into a temporary file, renamed only when the run succeeded, so a failed
            // run leaves no partial VCD behind.
            let partial = vcd.map(|p| p.with_extension("vcd.partial"));
            if let Some(tmp) = &partial {
                h.trace_to(tmp)
                    .with_context(|| format!("creating VCD file {}", tmp.display()))?;
            }
            let result = run_pipeline(&mut h, &s, &compact, Pacing::FULL_RATE).and_then(|run| {
                if run.status.parity_error
                    || run.status.framing_error
                    || run.status.tuple_count_error
                {
                    bail!("engine reported {:?}", run.status);
                }
                Ok(run)
            });
            h.finish_trace();
            let run = match (result, &partial, vcd) {
                (Ok(run), Some(tmp), Some(path)) => {
                    std::fs::rename(tmp, path)
                        .with_context(|| format!("writing {}", path.display()))?;
                    run
                }
                (Ok(run), _, _) => run,
                (Err(e), tmp, _) => {
                    if let Some(tmp) = tmp {
                        let _ = std::fs::remove_file(tmp);
                    }
                    return Err(e);
                }
            };
            (run.output, run.cycles, run.status)
        }
        Backend::Verilator => bail!(
            "sorting relation '{}' on the sort pipeline alone runs on the rtl or the model \
             backend; the verilator backend runs the whole RDBE top, through the control \
             program (`rdbe run --backend verilator`)",
            relation.name
        ),
    };
    let (relation, dup) = decode_output(relation, &s, &output)?;
    Ok(SortResult {
        relation,
        dup,
        cycles,
        status,
    })
}

/// Sort a relation that fits the sorter, on the chosen configuration and backend; with a
/// VCD path (RTL only) every signal of the pipeline is traced.
pub fn sort_relation(
    config: EngineConfig,
    backend: Backend,
    relation: &Relation,
    spec: &SortSpec,
    vcd: Option<&Path>,
) -> Result<SortResult> {
    match config {
        EngineConfig::Delta => run_on::<DeltaSortPipeline>(relation, spec, backend, vcd),
        EngineConfig::Small => run_on::<SmallSortPipeline>(relation, spec, backend, vcd),
    }
}

/// Count groups of equal keys from the DP line, as the RDBE's CPU does for aggregates
/// (§5.2): a group ends at each tuple whose DP is off.
pub fn group_sizes(dup: &[bool]) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut start = 0;
    for (i, &d) in dup.iter().enumerate() {
        if !d {
            groups.push((start, i + 1 - start));
            start = i + 1;
        }
    }
    groups
}
