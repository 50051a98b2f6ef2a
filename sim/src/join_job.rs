//! An equi-join of two typed relations on the whole engine core (IN module → sorter →
//! sorting checker → merger), on the rust-hdl simulation of the RTL or on the reference
//! model: the first piece of the control program model on top of the engine core
//! (issue 4).
//!
//! The control program's part (paper §5 (1)–(3)): derive each relation's engine parameters
//! from its schema (key position, length, type, null tag), load the left relation into
//! U-memory (LOAD: sorted by the join key on the way), stream the right relation through
//! JOIN-EQ, and set the output control part's projection (Fig. 7b: one contiguous run of
//! fields per side, the pointers P1 and P2) so that the result arrives as compact tuples of
//! the result schema.
use crate::relation::{decode_tuple, FieldType, Relation, Schema};
use crate::sort_job::{pipeline_settings, Backend, EngineConfig, SortKey, SortSpec};
use anyhow::{bail, ensure, Context, Result};
use rdbe_rtl::engine_core::{
    core_step_model, CoreStatus, DeltaEngineCore, EngineCoreTop, SmallEngineCore,
};
use rdbe_rtl::harness::{Harness, Pacing};
use rdbe_rtl::merger::{MergerCommand, MergerConfig, MergerDelta, MergerSettings, MergerSmall};
use rdbe_rtl::output_control_part::{OutputSettings, SideFormat};
use rdbe_rtl::sort_pipeline::{model::sort_pipeline_model, PipelineSettings};
use rdbe_rtl::tuple_stream::{compact_beats, split_tuples};

/// `left ⋈ right ON left.left_key = right.right_key`, keeping the named fields of each side
/// (each list a contiguous run of fields in schema order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinSpec {
    pub left_key: String,
    pub right_key: String,
    pub left_fields: Vec<String>,
    pub right_fields: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct JoinResult {
    /// Fields `left.f` then `right.f`; pairs in key order, left-major within a key.
    pub relation: Relation,
    /// Simulated cycles of both steps (0 for the model).
    pub cycles: u64,
    pub status: CoreStatus,
}

/// The projection of one side: its output format and its fields in the result schema.
fn side_format(
    relation: &Relation,
    sort: &PipelineSettings,
    fields: &[String],
) -> Result<(SideFormat, Vec<(String, FieldType)>)> {
    let schema = &relation.schema;
    let mut indices = Vec::with_capacity(fields.len());
    for f in fields {
        indices.push(
            schema
                .field_index(f)
                .with_context(|| format!("projection of relation '{}'", relation.name))?,
        );
    }
    if let Some(w) = indices.windows(2).find(|w| w[1] != w[0] + 1) {
        bail!(
            "the projection of '{}' must be a contiguous run of fields in schema order \
             (the output control part selects one range, P1..P2): '{}' does not follow '{}'",
            relation.name,
            schema.fields[w[1]].name,
            schema.fields[w[0]].name
        );
    }
    let (first, count) = match (indices.first(), indices.len()) {
        (Some(&i), n) => (i, n),
        (None, _) => (0, 0),
    };
    let first_word = schema.word_offset(first);
    let end_word = if count == 0 {
        first_word
    } else {
        schema.word_offset(first + count - 1) + schema.fields[first + count - 1].ty.words()
    };
    let input = &sort.input;
    let format = SideFormat {
        tuple_words: input.tuple_words,
        key_offset: input.key_offset,
        key_words: input.key_words,
        key_type: input.key_type,
        first_word,
        end_word,
        first_field: first,
        fields: count,
    };
    let names = indices
        .iter()
        .map(|&i| {
            (
                format!("{}.{}", relation.name, schema.fields[i].name),
                schema.fields[i].ty,
            )
        })
        .collect();
    Ok((format, names))
}

/// LOAD then JOIN-EQ on a simulated engine core.
fn run_rtl<T: EngineCoreTop>(
    left: (&PipelineSettings, &[Vec<u16>]),
    right: (&PipelineSettings, &[Vec<u16>]),
    join: &MergerConfig,
) -> Result<(Vec<Vec<u16>>, u64, CoreStatus)> {
    let mut h = Harness::new(T::default());
    let load = MergerConfig {
        command: MergerCommand::Load,
        tuple_words: left.0.input.tuple_words,
        ..*join
    };
    let budget = |words: usize| 100_000 + 40 * words as u64;
    h.uut.apply(left.0, &load)?;
    let beats = compact_beats(left.1);
    let start = h.cycles;
    h.run_stream(&beats, Pacing::FULL_RATE, budget(beats.len()));
    let status = h.uut.status();
    ensure!(
        !status.error(),
        "engine core reported {status:?} loading the left relation"
    );
    h.uut.apply(right.0, join)?;
    let beats = compact_beats(right.1);
    let run = h.run_stream(
        &beats,
        Pacing::FULL_RATE,
        budget(beats.len() * (left.1.len() + 1)),
    );
    let status = h.uut.status();
    ensure!(!status.error(), "engine core reported {status:?} joining");
    Ok((split_tuples(&run.output), h.cycles - start, status))
}

/// Run the join on the chosen configuration and backend.
pub fn join_relations(
    config: EngineConfig,
    backend: Backend,
    left: &Relation,
    right: &Relation,
    spec: &JoinSpec,
) -> Result<JoinResult> {
    let by = |key: &str| SortSpec {
        key: SortKey::Field(key.to_string()),
        descending: false,
    };
    let left_sort = pipeline_settings(left, &by(&spec.left_key))?;
    let right_sort = pipeline_settings(right, &by(&spec.right_key))?;
    let lk = left.schema.fields[left.schema.field_index(&spec.left_key)?].ty;
    let rk = right.schema.fields[right.schema.field_index(&spec.right_key)?].ty;
    ensure!(
        lk == rk,
        "join keys differ in type: {}.{} is {lk:?}, {}.{} is {rk:?}",
        left.name,
        spec.left_key,
        right.name,
        spec.right_key
    );
    let (u_format, mut fields) = side_format(left, &left_sort, &spec.left_fields)?;
    let (l_format, right_fields) = side_format(right, &right_sort, &spec.right_fields)?;
    fields.extend(right_fields);
    let join = MergerConfig {
        command: MergerCommand::JoinEq,
        delete: false,
        settings: MergerSettings::ascending(left_sort.input.key_words),
        tuple_words: right_sort.input.tuple_words,
        output: OutputSettings {
            u: u_format,
            l: l_format,
            new_tid: false,
            tid_base: 0,
        },
    };
    let names: Vec<(&str, FieldType)> = fields.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let schema = Schema::new(&names).context("the join's result schema")?;
    let (cells, max_words): (&[usize], usize) = match config {
        EngineConfig::Delta => (DeltaEngineCore::cell_address_bits(), 2047),
        EngineConfig::Small => (SmallEngineCore::cell_address_bits(), 128),
    };
    for (r, s) in [(left, &left_sort), (right, &right_sort)] {
        ensure!(
            s.input.tuple_words <= max_words,
            "tuples of relation '{}' are {} words; this configuration takes at most {max_words}",
            r.name,
            s.input.tuple_words
        );
        let capacity = rdbe_rtl::sorter::capacity_tuples(cells, s.input.tuple_words);
        ensure!(
            r.tuples.len() <= capacity,
            "relation '{}' has {} tuples; the sorter holds {capacity} of them (larger \
             relations need the control program's external sort, issue 4)",
            r.name,
            r.tuples.len()
        );
    }
    let u_memory_words = match config {
        EngineConfig::Delta => MergerDelta::MEMORY_WORDS,
        EngineConfig::Small => MergerSmall::MEMORY_WORDS,
    };
    ensure!(
        left.tuples.len() * left_sort.input.tuple_words <= u_memory_words,
        "relation '{}' ({} tuples of {} words) does not fit the merger's U-memory of {} \
         words; put the smaller relation on the left",
        left.name,
        left.tuples.len(),
        left_sort.input.tuple_words,
        u_memory_words
    );
    let left_compact = left.encode()?;
    let right_compact = right.encode()?;
    let (output, cycles, status) = match backend {
        Backend::Model => {
            let u = sort_pipeline_model(cells, &left_sort, &left_compact).tuples;
            let out = core_step_model(cells, &right_sort, &right_compact, &join, &u)?;
            (out, 0, CoreStatus::default())
        }
        Backend::Rtl => {
            let left = (&left_sort, &left_compact[..]);
            let right = (&right_sort, &right_compact[..]);
            match config {
                EngineConfig::Delta => run_rtl::<DeltaEngineCore>(left, right, &join)?,
                EngineConfig::Small => run_rtl::<SmallEngineCore>(left, right, &join)?,
            }
        }
    };
    let tuples = output
        .iter()
        .enumerate()
        .map(|(i, t)| {
            decode_tuple(&schema, t).with_context(|| format!("join output tuple {}", i + 1))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(JoinResult {
        relation: Relation {
            name: format!("{}_{}", left.name, right.name),
            schema,
            tuples,
        },
        cycles,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_data;
    use crate::relation::Value;

    fn spec() -> JoinSpec {
        JoinSpec {
            left_key: "user_id".into(),
            right_key: "user_id".into(),
            left_fields: vec!["user_id".into(), "account_name".into()],
            right_fields: vec!["photo_id".into(), "user_id".into(), "path".into()],
        }
    }

    /// The join computed directly from the typed values (nulls never match).
    fn nested_loops(left: &Relation, right: &Relation) -> Vec<Vec<Value>> {
        let mut out = vec![];
        for l in &left.tuples {
            for r in &right.tuples {
                if l[0] != Value::Null && l[0] == r[1] {
                    out.push(vec![
                        l[0].clone(),
                        l[1].clone(),
                        r[0].clone(),
                        r[1].clone(),
                        r[2].clone(),
                    ]);
                }
            }
        }
        out
    }

    #[test]
    fn users_join_photos_on_the_rtl_equals_the_model_and_a_nested_loop() {
        let users = demo_data::users(3).unwrap();
        let photos = demo_data::photos(30, 4).unwrap();
        let rtl =
            join_relations(EngineConfig::Delta, Backend::Rtl, &users, &photos, &spec()).unwrap();
        let model = join_relations(
            EngineConfig::Delta,
            Backend::Model,
            &users,
            &photos,
            &spec(),
        )
        .unwrap();
        assert_eq!(rtl.relation.tuples, model.relation.tuples);
        assert!(rtl.cycles > 0);
        let mut got = rtl.relation.tuples.clone();
        let mut expected = nested_loops(&users, &photos);
        got.sort_by_key(|t| format!("{t:?}"));
        expected.sort_by_key(|t| format!("{t:?}"));
        assert_eq!(got, expected);
        assert_eq!(
            rtl.relation.schema.fields[4].name, "photos.path",
            "result fields are named relation.field"
        );
    }

    #[test]
    fn a_projection_with_a_gap_is_refused_with_the_fields_named() {
        let users = demo_data::users(3).unwrap();
        let photos = demo_data::photos(5, 4).unwrap();
        let mut s = spec();
        s.right_fields = vec!["photo_id".into(), "path".into()];
        let e = join_relations(EngineConfig::Delta, Backend::Model, &users, &photos, &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'path' does not follow 'photo_id'"), "{e}");
        s.right_fields = vec!["nope".into()];
        let e = format!(
            "{:#}",
            join_relations(EngineConfig::Delta, Backend::Model, &users, &photos, &s).unwrap_err()
        );
        assert!(e.contains("nope"), "{e}");
    }
}
