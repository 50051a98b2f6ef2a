//! The RDBE's control program (paper §5), modelled in Rust: it takes Delta commands
//! ([crate::command]), analyses each request into (1) the pattern of driving the engine core
//! and the HM adapters, (2) HM transfer requests, (3) engine parameters and (4) compiled code
//! for the CPU's auxiliary processing ([crate::expr]), and runs them on an [Engine] (the
//! RTL simulation or the reference model).
//!
//! Relations live in the hierarchical memory ([Hm]) as pages of compact tuples
//! ([StoredRelation]): each command reads its operands from their pages and stores its
//! result as pages; its [Report] counts the pages read and written.
//!
//! Every engine step goes through `ControlProgram::step`: it streams tuples through the
//! core, checks the status lines and, on a parity or sort-check error, clears the core and
//! restarts the operation's current unit from its retry point (§5.3), at most
//! [MAX_RETRIES] times. [ControlProgram::new] runs the power-up self check (§5.4) first and
//! refuses to start if the core fails it.
//!
//! Relations larger than the sorter's capacity C are sorted externally (§3.2, §6): case 2
//! sorts two blocks and merges them through U-memory in one SORT-EX; case 3 sorts blocks of
//! 2C the same way into HM work buffers, then merges runs two by two (see
//! `ControlProgram::merge_runs`) until one run is left.
use crate::command::{
    tokens_text, AggregateFunction, ColumnRef, Operation, RelationRef, SetOperation, Statement,
    Token, TokenKind,
};
use crate::csv_io::parse_value;
use crate::engine::{Engine, EngineFault, Limits, Profile, StepFault};
use crate::expr;
use crate::relation::{decode_tuple, encode_tuple, Field, FieldType, Relation, Schema, Value};
use anyhow::{anyhow, bail, ensure, Context, Result};
use rdbe_rtl::in_module::{InConfig, KeyType};
use rdbe_rtl::merger::{MergerCommand, MergerConfig, MergerSettings, Relop};
use rdbe_rtl::output_control_part::{OutputSettings, SideFormat};
use rdbe_rtl::sort_pipeline::PipelineSettings;
use rdbe_rtl::tuple_stream::compact_beats;
use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Restarts of one unit of work after a detected error before the operation fails.
pub const MAX_RETRIES: usize = 3;
/// Bytes per HM page (the unit of HM transfers and of DELETE).
pub const PAGE_BYTES: usize = 4096;
/// 16-bit words per HM page.
pub const PAGE_WORDS: usize = PAGE_BYTES / 2;

/// Whole tuples of `tuple_words` words that fit one HM page (a tuple is never split across
/// pages; [crate::relation::MAX_TUPLE_BYTES] keeps it under a page).
pub fn tuples_per_page(tuple_words: usize) -> usize {
    (PAGE_WORDS / tuple_words.max(1)).max(1)
}

/// Names of HM work buffers begin with this; a user relation's name cannot (no file stem
/// and no script name holds a `/`).
const WORK_BUFFER_PREFIX: &str = "/work/";

/// A relation as the HM stores it: its schema and its pages. Each page is a `Vec<u16>` of
/// at most [PAGE_WORDS] words holding whole tuples in HM compact format (the tag word with
/// the null bits, then the fields: exactly what [Relation::encode] gives per tuple), one
/// after another; every page but the last holds [tuples_per_page] tuples, the last the
/// rest. An empty relation has no pages.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRelation {
    schema: Schema,
    pages: Vec<Vec<u16>>,
    tuples: usize,
}

impl StoredRelation {
    /// Lay out compact `tuples` of `schema` in pages. Refuses a schema the HM cannot hold
    /// (a tuple of 4 KB or more, among [Schema::validate]'s checks) and a tuple whose length
    /// is not the schema's, naming relation `name`.
    pub fn paginate(name: &str, schema: &Schema, tuples: &[Vec<u16>]) -> Result<StoredRelation> {
        schema
            .validate()
            .map_err(|e| anyhow!("relation '{name}' cannot be stored in the HM: {e}"))?;
        let tw = schema.tuple_words();
        let per_page = tuples_per_page(tw);
        let mut pages = Vec::with_capacity(tuples.len().div_ceil(per_page));
        for (p, chunk) in tuples.chunks(per_page).enumerate() {
            let mut page = Vec::with_capacity(chunk.len() * tw);
            for (i, t) in chunk.iter().enumerate() {
                ensure!(
                    t.len() == tw,
                    "relation '{name}', tuple {}: {} words, the schema's tuples have {tw}",
                    p * per_page + i + 1,
                    t.len()
                );
                page.extend_from_slice(t);
            }
            pages.push(page);
        }
        Ok(StoredRelation {
            schema: schema.clone(),
            pages,
            tuples: tuples.len(),
        })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Tuples stored.
    pub fn len(&self) -> usize {
        self.tuples
    }

    pub fn is_empty(&self) -> bool {
        self.tuples == 0
    }

    /// Pages the relation occupies.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Words per tuple (tag word included).
    pub fn tuple_words(&self) -> usize {
        self.schema.tuple_words()
    }

    /// Tuples per full page.
    pub fn tuples_per_page(&self) -> usize {
        tuples_per_page(self.tuple_words())
    }
}

/// The HM pages of one relation, read one at a time: each page the iterator yields is
/// counted as read from the HM ([Hm::pages_read]).
pub struct Pages<'a> {
    pages: std::slice::Iter<'a, Vec<u16>>,
    tuple_words: usize,
    read: &'a Cell<u64>,
}

impl<'a> Pages<'a> {
    /// Words per tuple: a page splits into tuples with `page.chunks_exact(tuple_words)`.
    pub fn tuple_words(&self) -> usize {
        self.tuple_words
    }
}

impl<'a> Iterator for Pages<'a> {
    type Item = &'a [u16];
    fn next(&mut self) -> Option<&'a [u16]> {
        let page = self.pages.next()?;
        self.read.set(self.read.get() + 1);
        Some(page)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pages.size_hint()
    }
}

/// The hierarchical memory: relations by name, each stored as pages of compact tuples
/// ([StoredRelation]), with counters of the pages transferred (cumulative; each command's
/// [Report] gives its share). The control program reads its operands from the pages and
/// stores its results as pages; external sort case 3 keeps its runs in work buffers here.
#[derive(Default)]
pub struct Hm {
    relations: BTreeMap<String, StoredRelation>,
    next_work_buffer: usize,
    pages_read: Cell<u64>,
    pages_written: u64,
}

impl Hm {
    /// Store a typed relation under its name (encoded and laid out in pages), replacing a
    /// relation of that name.
    pub fn store(&mut self, r: &Relation) -> Result<()> {
        let tuples = r
            .encode()
            .with_context(|| format!("relation '{}'", r.name))?;
        self.store_tuples(&r.name, &r.schema, &tuples)
    }

    /// Store compact tuples of `schema` under `name`, replacing a relation of that name.
    pub fn store_tuples(&mut self, name: &str, schema: &Schema, tuples: &[Vec<u16>]) -> Result<()> {
        ensure!(
            !name.starts_with(WORK_BUFFER_PREFIX),
            "relation name '{name}': '{WORK_BUFFER_PREFIX}…' names the HM's work buffers"
        );
        self.put(name, StoredRelation::paginate(name, schema, tuples)?);
        Ok(())
    }

    fn put(&mut self, name: &str, stored: StoredRelation) {
        self.pages_written += stored.page_count() as u64;
        self.relations.insert(name.to_string(), stored);
    }

    /// Read relation `name` back typed (every page is read and decoded).
    pub fn relation(&self, name: &str) -> Result<Relation> {
        let schema = self.schema(name)?.clone();
        let tuples = self
            .read_tuples(name)?
            .iter()
            .enumerate()
            .map(|(i, t)| {
                decode_tuple(&schema, t)
                    .with_context(|| format!("relation '{name}', tuple {}", i + 1))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Relation {
            name: name.to_string(),
            schema,
            tuples,
        })
    }

    /// The names of the relations stored (not the work buffers), in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.relations
            .keys()
            .map(String::as_str)
            .filter(|n| !n.starts_with(WORK_BUFFER_PREFIX))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.relations.contains_key(name)
    }

    pub fn schema(&self, name: &str) -> Result<&Schema> {
        Ok(self.stored(name)?.schema())
    }

    /// The stored relation `name` (its schema and page layout; reading no page).
    pub fn stored(&self, name: &str) -> Result<&StoredRelation> {
        self.relations
            .get(name)
            .ok_or_else(|| anyhow!("unknown relation '{name}' (known: {})", self.known()))
    }

    /// The relation a command names; the error gives the place in the script and the
    /// relations there are.
    pub fn get(&self, r: &RelationRef) -> Result<&StoredRelation> {
        self.relations.get(&r.name).ok_or_else(|| {
            anyhow!(
                "{}: unknown relation '{}' (known: {})",
                r.at(),
                r.name,
                self.known()
            )
        })
    }

    fn known(&self) -> String {
        let known: Vec<_> = self.names().collect();
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    }

    /// Read relation `name` page by page.
    pub fn pages(&self, name: &str) -> Result<Pages<'_>> {
        let stored = self.stored(name)?;
        Ok(Pages {
            pages: stored.pages.iter(),
            tuple_words: stored.tuple_words(),
            read: &self.pages_read,
        })
    }

    /// Every compact tuple of relation `name`, read page by page.
    pub fn read_tuples(&self, name: &str) -> Result<Vec<Vec<u16>>> {
        let pages = self.pages(name)?;
        let tw = pages.tuple_words();
        let mut tuples = Vec::with_capacity(self.stored(name)?.len());
        for page in pages {
            tuples.extend(page.chunks_exact(tw).map(<[u16]>::to_vec));
        }
        Ok(tuples)
    }

    /// Remove relation `name` (no page is transferred).
    pub fn remove(&mut self, name: &str) -> Option<StoredRelation> {
        self.relations.remove(name)
    }

    /// Pages read from the HM so far.
    pub fn pages_read(&self) -> u64 {
        self.pages_read.get()
    }

    /// Pages written to the HM so far.
    pub fn pages_written(&self) -> u64 {
        self.pages_written
    }

    /// Write compact tuples to a new work buffer; returns its name (which no user relation
    /// can have).
    fn store_work_buffer(&mut self, schema: &Schema, tuples: &[Vec<u16>]) -> Result<String> {
        let name = format!("{WORK_BUFFER_PREFIX}{}", self.next_work_buffer);
        self.next_work_buffer += 1;
        self.put(&name, StoredRelation::paginate(&name, schema, tuples)?);
        Ok(name)
    }

    /// Read a work buffer back and free it.
    fn take_work_buffer(&mut self, name: &str) -> Result<Vec<Vec<u16>>> {
        let tuples = self.read_tuples(name)?;
        self.relations.remove(name);
        Ok(tuples)
    }

    /// Free every work buffer (after an external sort, whether it succeeded or not).
    fn free_work_buffers(&mut self) {
        self.relations
            .retain(|n, _| !n.starts_with(WORK_BUFFER_PREFIX));
    }
}

/// What the control program did for one command.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub line: usize,
    pub target: String,
    pub operation: String,
    pub tuples: usize,
    /// Engine-core steps (set-ups of the core), retries after errors among them.
    pub steps: usize,
    pub retries: usize,
    pub cycles: u64,
    /// HM pages read: the command's operands and, in external sort case 3, the runs read
    /// back from the HM work buffers.
    pub pages_read: u64,
    /// HM pages written: the command's result and the case-3 runs kept in work buffers.
    pub pages_written: u64,
    /// Operations of compiled CPU code executed (auxiliary processing).
    pub cpu_ops: u64,
    /// External sort case (1, 2, 3) when the command sorted a relation beyond C.
    pub sort_case: Option<(u8, usize)>,
    /// How the request was analysed (engine commands, CPU code).
    pub plan: Vec<String>,
}

impl Report {
    /// Modelled time in milliseconds: engine-core cycles at the profile's clock plus the
    /// CPU overhead the paper states (§6: 12 ms for one pass through the core, 20 ms for
    /// case 2, 10 ms + 10 ms per block per merge pass for case 3).
    pub fn modelled_ms(&self, profile: Profile) -> f64 {
        let core = self.cycles as f64 * profile.cycle_ns() * 1e-6;
        let overhead = match (profile, self.sort_case) {
            (Profile::Modern, _) => 0.0,
            (Profile::Delta1984, Some((2, _))) => 20.0,
            (Profile::Delta1984, Some((3, blocks))) => 10.0 + 10.0 * blocks as f64,
            (Profile::Delta1984, _) => 12.0,
        };
        core + overhead
    }
}

/// A faults plan for tests and fault campaigns: `fault` hits the `step`-th engine step
/// (counted from 0 from [ControlProgram::inject]'s call), that step only (a transient
/// fault: the retry runs clean).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InjectedFault {
    pub step: u64,
    pub fault: StepFault,
}

impl InjectedFault {
    /// A stream fault of `kind` at `site` on beat `target` (line `line`) of step `step`.
    pub fn stream(
        step: u64,
        site: rdbe_rtl::fault_injector::FaultSite,
        kind: rdbe_rtl::fault_injector::FaultKind,
        target: u32,
        line: u8,
    ) -> InjectedFault {
        use rdbe_rtl::fault_injector::{Fault, StreamFault};
        InjectedFault {
            step,
            fault: StepFault::Stream(StreamFault {
                site,
                fault: Fault { kind, target, line },
            }),
        }
    }

    /// HM adapter IN's diagnostic fault on data word `word` of step `step`.
    pub fn hm_parity(step: u64, word: u16) -> InjectedFault {
        InjectedFault {
            step,
            fault: StepFault::HmParity(word),
        }
    }
}

/// The streams of one engine step, in beats (end-of-stream included), as a fault campaign
/// needs them to aim a fault ([ControlProgram::step_log]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepShape {
    /// Into the engine core (compact tuples).
    pub input_beats: usize,
    /// From the sort pipeline to the merger (internal tuples), if the merger takes all.
    pub sorted_beats: usize,
    /// Out of the engine core.
    pub output_beats: usize,
    /// Clock cycles of the step (register bus included; 0 on the model backend).
    pub cycles: u64,
}

/// A key as the engine sees it: one field, or the whole tuple (every field, then the tags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Field(usize),
    Whole,
}

/// A relation in the control program's memory as compact tuples: an operand read from the
/// HM pages, or a result on its way to them.
struct CompactRelation {
    name: String,
    schema: Schema,
    tuples: Vec<Vec<u16>>,
}

/// A relation's compact tuples ready to stream: already in key order (`sorted`) or to be
/// sorted in the stream (at most C tuples).
struct Feed {
    tuples: Vec<Vec<u16>>,
    sorted: bool,
}

/// One engine step's description.
struct StepSpec<'a> {
    sort: PipelineSettings,
    merge: MergerConfig,
    input: &'a [Vec<u16>],
    /// The stream reaches the checker sorted: a violation is an error.
    expect_sorted: bool,
}

struct StepResult {
    tuples: Vec<Vec<u16>>,
    dup: Vec<bool>,
    /// The merger's L_TAKEN: input tuples its command advanced past.
    l_taken: usize,
}

/// The control program: an engine, the HM and the counters of the current command.
pub struct ControlProgram {
    engine: Box<dyn Engine>,
    pub hm: Hm,
    pub profile: Profile,
    limits: Limits,
    report: Report,
    steps_total: u64,
    faults: Vec<InjectedFault>,
    /// A fault on every step (a permanent fault, e.g. a line stuck at 0), until removed.
    permanent_fault: Option<StepFault>,
    /// Steps on which an armed fault injector hit its beat (the STATUS register's
    /// FAULT_INJECTED bit) or a memory-word fault struck a live word
    /// ([crate::engine::StepOutput::memory_fault_hit]), over the program's life.
    pub faults_hit: u64,
    /// When set, every step's stream lengths are appended here (fault campaigns).
    pub step_log: Option<Vec<StepShape>>,
    /// Steps since the engine's last reset: each stage's stream count must match it.
    steps_since_clear: u64,
    /// Act on the checks this project added to the paper's (stream counts, link checks);
    /// off only to measure what the paper's own mechanisms catch (`rdbe faults
    /// --paper-checks-only`).
    pub added_checks: bool,
    /// Called after every engine step with the cycles so far (progress bars).
    pub on_step: Option<Box<dyn FnMut(u64)>>,
}

impl ControlProgram {
    /// Start the control program on an engine: run the self check first (§5.4).
    pub fn new(engine: Box<dyn Engine>, profile: Profile) -> Result<ControlProgram> {
        let limits = engine.limits();
        let mut cp = ControlProgram {
            engine,
            hm: Hm::default(),
            profile,
            limits,
            report: Report::default(),
            steps_total: 0,
            faults: vec![],
            permanent_fault: None,
            faults_hit: 0,
            step_log: None,
            steps_since_clear: 0,
            added_checks: true,
            on_step: None,
        };
        cp.self_check()
            .context("power-up self check failed: the engine core refuses work")?;
        cp.report = Report::default();
        Ok(cp)
    }

    /// Inject faults into later steps; `step` counts from the next step (0 = the next).
    pub fn inject(&mut self, faults: &[InjectedFault]) {
        let base = self.steps_total;
        self.faults.extend(faults.iter().map(|f| InjectedFault {
            step: base + f.step,
            ..*f
        }));
    }

    /// Put `fault` on every later step (a permanent fault) or remove it (`None`).
    pub fn set_permanent_fault(&mut self, fault: Option<StepFault>) {
        self.permanent_fault = fault;
    }

    /// Forget the HM's relations and the pending faults, clear the engine: a fresh start
    /// without a new self check (fault campaigns run many experiments on one engine).
    pub fn reset(&mut self) {
        self.hm = Hm::default();
        self.faults.clear();
        self.permanent_fault = None;
        self.report = Report::default();
        self.reset_engine();
    }

    /// Back to the engine's power-up state (§5.3's retry point): a clear of the flags and
    /// U-memory is not enough after a fault, since beats of a mis-framed stream (a
    /// duplicated end of stream) can wait inside the core and end a later step early.
    fn reset_engine(&mut self) {
        self.engine.reset();
        self.steps_since_clear = 0;
    }

    pub fn engine(&mut self) -> &mut dyn Engine {
        self.engine.as_mut()
    }

    /// §5.4: drive the core with test data and verify the results against values known
    /// here (worked out by hand): a signed sort with nulls and duplicates, a JOIN-EQ, a
    /// duplicate elimination and a range restriction.
    pub fn self_check(&mut self) -> Result<()> {
        let schema = Schema::new(&[("k", FieldType::I16), ("v", FieldType::U16)])?;
        let row = |k: Option<i64>, v: u64| {
            vec![
                k.map(Value::Signed).unwrap_or(Value::Null),
                Value::Unsigned(v),
            ]
        };
        let test = Relation::new(
            "selfcheck",
            schema,
            vec![
                row(Some(3), 1),
                row(Some(-5), 2),
                row(None, 3),
                row(Some(3), 4),
                row(Some(0), 5),
                row(Some(-32768), 6),
                row(Some(32767), 7),
                row(Some(-5), 8),
            ],
        )?;
        let compact = test.encode()?;
        let sorted = self
            .sort_relation(&test.schema, compact.clone(), &[(0, false)])
            .context("test 1 (sort of signed keys with nulls)")?;
        let order: Vec<u64> = decode_all(&test.schema, &sorted)?
            .iter()
            .map(|t| match t[1] {
                Value::Unsigned(v) => v,
                _ => 0,
            })
            .collect();
        ensure!(
            order == [6, 2, 8, 5, 1, 4, 7, 3],
            "test 1 (sort of signed keys with nulls): got order {order:?}"
        );
        let joined = self
            .join_eq_count(&test.schema, &compact)
            .context("test 2 (JOIN-EQ of the test relation with itself)")?;
        ensure!(
            joined == 11,
            "test 2 (JOIN-EQ of the test relation with itself): {joined} pairs, expected 11"
        );
        let unique = self
            .unique(&test.schema, compact.clone(), Key::Whole)
            .context("test 3 (duplicate elimination)")?;
        ensure!(
            unique.len() == 8,
            "test 3 (duplicate elimination): {} tuples, expected 8",
            unique.len()
        );
        let feed = Feed {
            tuples: compact,
            sorted: false,
        };
        let range = self
            .restrict_range(&test.schema, 0, &feed, Value::Signed(-5), Value::Signed(3))
            .context("test 4 (REST-RANGE -5..3)")?;
        ensure!(
            range.len() == 5,
            "test 4 (REST-RANGE -5..3): {} tuples, expected 5",
            range.len()
        );
        Ok(())
    }

    fn join_eq_count(&mut self, schema: &Schema, compact: &[Vec<u16>]) -> Result<usize> {
        let cfg = in_config(schema, Key::Field(0));
        let sort = pipeline(&cfg, false, true, compact.len());
        let whole = SideFormat::whole(&cfg, schema.fields.len());
        let join = MergerConfig {
            command: MergerCommand::JoinEq,
            delete: false,
            settings: MergerSettings::ascending(cfg.key_words),
            tuple_words: cfg.tuple_words,
            output: OutputSettings {
                u: whole,
                l: whole,
                new_tid: false,
                tid_base: 0,
            },
        };
        let out = self.load_stream_unit(
            "self check join",
            (&sort, compact, true),
            join,
            (&sort, compact, true),
        )?;
        Ok(out.tuples.len())
    }

    // ------------------------------------------------------------------------------
    // Steps, retries, faults.
    // ------------------------------------------------------------------------------

    /// One engine step: stream, check status, count.
    fn step(&mut self, spec: StepSpec) -> Result<StepResult> {
        let beats = compact_beats(spec.input);
        let index = self.steps_total;
        self.steps_total += 1;
        let fault = self
            .faults
            .iter()
            .find(|f| f.step == index)
            .map(|f| f.fault)
            .or(self.permanent_fault);
        self.faults.retain(|f| f.step != index);
        let out = match self.engine.step(&spec.sort, &spec.merge, &beats, fault) {
            Ok(out) => out,
            Err(e) => {
                let hit = e.downcast_ref::<EngineFault>().is_some_and(|f| f.fault_hit);
                self.faults_hit += hit as u64;
                return Err(e);
            }
        };
        self.steps_since_clear += 1;
        self.faults_hit += (out.status.fault_injected || out.memory_fault_hit) as u64;
        if let Some(log) = self.step_log.as_mut() {
            log.push(StepShape {
                input_beats: beats.len(),
                sorted_beats: spec.input.len() * spec.merge.tuple_words + 1,
                output_beats: out.tuples.iter().map(Vec::len).sum::<usize>() + 1,
                cycles: out.cycles,
            });
        }
        self.report.steps += 1;
        self.report.cycles += out.cycles;
        if let Some(cb) = self.on_step.as_mut() {
            cb(self.report.cycles);
        }
        let s = out.status;
        let counts = match self.added_checks {
            true if s.link_error => Some("a link check failed".to_string()),
            true => s.stream_count_error(self.steps_since_clear),
            false => None,
        };
        if let Some(problem) = counts {
            return Err(
                EngineFault::new(format!("{}: {problem}", spec.merge.command.name())).into(),
            );
        }
        if s.parity_error || s.framing_error {
            return Err(EngineFault::new(format!(
                "{} reported a {} error",
                spec.merge.command.name(),
                if s.parity_error { "parity" } else { "framing" }
            ))
            .into());
        }
        if spec.expect_sorted && s.sort_error {
            return Err(EngineFault::new(format!(
                "the sorting checker found {} tuples out of order in {}",
                s.violations,
                spec.merge.command.name()
            ))
            .into());
        }
        ensure!(
            !s.command_error,
            "the merger refused command {}",
            spec.merge.command.name()
        );
        ensure!(
            !s.u_overflow,
            "the relation loaded does not fit U-memory ({} words)",
            self.limits.memory_words
        );
        ensure!(
            !s.l_overflow,
            "a group of equal keys (or a DELETE page) is larger than L-memory ({} words)",
            self.limits.memory_words
        );
        Ok(StepResult {
            tuples: out.tuples,
            dup: out.dup,
            l_taken: out.status.l_taken as usize,
        })
    }

    /// LOAD `input` into U-memory (sorted as `sort` says); the checker must see it sorted
    /// unless `expect_sorted` is off (an unordered operand, e.g. a Cartesian product's).
    fn load_checked(
        &mut self,
        sort: &PipelineSettings,
        like: &MergerConfig,
        input: &[Vec<u16>],
        expect_sorted: bool,
    ) -> Result<()> {
        let load = MergerConfig {
            command: MergerCommand::Load,
            delete: false,
            tuple_words: sort.input.tuple_words,
            settings: MergerSettings {
                u_partial: false,
                ..like.settings
            },
            ..*like
        };
        self.step(StepSpec {
            sort: sort.clone(),
            merge: load,
            input,
            expect_sorted,
        })?;
        Ok(())
    }

    /// A retry unit of one stream through the core.
    fn stream_unit(
        &mut self,
        what: &str,
        sort: &PipelineSettings,
        merge: MergerConfig,
        input: &[Vec<u16>],
        expect_sorted: bool,
    ) -> Result<StepResult> {
        self.unit(what, |cp| {
            cp.step(StepSpec {
                sort: sort.clone(),
                merge,
                input,
                expect_sorted,
            })
        })
    }

    /// A retry unit of the usual two-step pattern: LOAD an operand into U-memory, then
    /// stream the other through `merge`. Each operand: its layout, its tuples, and whether
    /// the checker must see it sorted.
    fn load_stream_unit(
        &mut self,
        what: &str,
        load: (&PipelineSettings, &[Vec<u16>], bool),
        merge: MergerConfig,
        stream: (&PipelineSettings, &[Vec<u16>], bool),
    ) -> Result<StepResult> {
        self.unit(what, |cp| {
            cp.load_checked(load.0, &merge, load.1, load.2)?;
            cp.step(StepSpec {
                sort: stream.0.clone(),
                merge,
                input: stream.1,
                expect_sorted: stream.2,
            })
        })
    }

    /// Run one unit of work (a retry point, §5.3): on a detected engine fault reset the
    /// engine and run the unit again, at most [MAX_RETRIES] times.
    fn unit<T>(&mut self, what: &str, mut f: impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f(self) {
                Ok(v) => return Ok(v),
                Err(e) if e.downcast_ref::<EngineFault>().is_some() => {
                    self.reset_engine();
                    if attempt == MAX_RETRIES {
                        bail!("{what}: {e}; still failing after {MAX_RETRIES} retries");
                    }
                    attempt += 1;
                    self.report.retries += 1;
                }
                Err(e) => {
                    self.reset_engine();
                    return Err(e.context(what.to_string()));
                }
            }
        }
    }

    // ------------------------------------------------------------------------------
    // Sorting: in the stream (case 1) or external (cases 2 and 3).
    // ------------------------------------------------------------------------------

    fn check_tuple_length(&self, schema: &Schema, what: &str) -> Result<()> {
        ensure!(
            schema.tuple_words() <= self.limits.max_tuple_words,
            "{what}: tuples of {} bytes; the {:?} engine takes at most {} bytes",
            schema.tuple_bytes(),
            self.limits.config,
            self.limits.max_tuple_words * 2
        );
        ensure!(
            schema.tuple_words() * 2 <= self.limits.tuple_memory_words,
            "{what}: tuples of {} bytes do not fit the output control part's tuple memory",
            schema.tuple_bytes()
        );
        Ok(())
    }

    /// The tuples of `compact` in key order, for streaming: sorted in the stream when they
    /// fit the sorter, else sorted externally first.
    fn feed(
        &mut self,
        schema: &Schema,
        compact: Vec<Vec<u16>>,
        key: Key,
        descending: bool,
    ) -> Result<Feed> {
        let capacity = self.limits.sort_capacity(schema.tuple_words());
        if compact.len() <= capacity {
            Ok(Feed {
                tuples: compact,
                sorted: false,
            })
        } else {
            let tuples = self.external_sort(schema, compact, key, descending)?;
            Ok(Feed {
                tuples,
                sorted: true,
            })
        }
    }

    /// Sort `compact` by `key` whatever its size (paper §3.2, §6 cases 1–3); stable.
    fn external_sort(
        &mut self,
        schema: &Schema,
        compact: Vec<Vec<u16>>,
        key: Key,
        descending: bool,
    ) -> Result<Vec<Vec<u16>>> {
        let cfg = in_config(schema, key);
        let tw = cfg.tuple_words;
        let capacity = self.limits.sort_capacity(tw);
        let block = self.limits.block_capacity(tw);
        ensure!(
            block >= 1,
            "a {tw}-word tuple does not fit the engine's memories"
        );
        let pass = single_config(MergerCommand::Pass1, &cfg, schema.fields.len());
        let n = compact.len();
        if n <= capacity {
            self.note_case(1, 1);
            let sort = pipeline(&cfg, descending, true, n);
            return Ok(self
                .stream_unit("sort (case 1)", &sort, pass, &compact, true)?
                .tuples);
        }
        let blocks = n.div_ceil(block);
        if n <= 2 * block {
            let run = self.sort_run(&cfg, &pass, descending, &compact)?;
            self.note_case(2, blocks);
            return Ok(run);
        }
        let result = self.sort_case_3(&cfg, &pass, schema, descending, &compact);
        self.hm.free_work_buffers();
        let (sorted, merges) = result?;
        self.note_case(3, blocks * (merges + 1));
        Ok(sorted)
    }

    /// One run of up to two blocks: the first block sorted into U-memory (LOAD), the second
    /// sorted in the stream and merged with it (SORT-EX).
    fn sort_run(
        &mut self,
        cfg: &InConfig,
        pass: &MergerConfig,
        descending: bool,
        tuples: &[Vec<u16>],
    ) -> Result<Vec<Vec<u16>>> {
        let block = self.limits.block_capacity(cfg.tuple_words);
        let (first, second) = tuples.split_at(tuples.len().min(block));
        let run = self.load_stream_unit(
            "sort of one run (LOAD + SORT-EX)",
            (&pipeline(cfg, descending, true, first.len()), first, true),
            MergerConfig {
                command: MergerCommand::SortEx,
                settings: MergerSettings {
                    descending,
                    ..pass.settings
                },
                ..*pass
            },
            (&pipeline(cfg, descending, true, second.len()), second, true),
        )?;
        Ok(run.tuples)
    }

    /// Case 3: runs of two blocks, each written to an HM work buffer; then merge passes,
    /// two runs at a time, each run read back from its buffer (and the buffer freed) and
    /// the merged run written to a new one, until the last pass, whose run is the result.
    /// Returns the sorted tuples and the number of merge passes. The caller frees the
    /// buffers left by an error.
    fn sort_case_3(
        &mut self,
        cfg: &InConfig,
        pass: &MergerConfig,
        schema: &Schema,
        descending: bool,
        tuples: &[Vec<u16>],
    ) -> Result<(Vec<Vec<u16>>, usize)> {
        let block = self.limits.block_capacity(cfg.tuple_words);
        let mut runs = vec![];
        for chunk in tuples.chunks(2 * block) {
            let run = self.sort_run(cfg, pass, descending, chunk)?;
            runs.push(self.hm.store_work_buffer(schema, &run)?);
        }
        let mut merges = 0;
        loop {
            merges += 1;
            let last = runs.len() <= 2;
            let mut next = vec![];
            let mut it = runs.into_iter();
            while let Some(a) = it.next() {
                let Some(b) = it.next() else {
                    // An odd run stays in its buffer for the next pass.
                    next.push(a);
                    continue;
                };
                let a = self.hm.take_work_buffer(&a)?;
                let b = self.hm.take_work_buffer(&b)?;
                let merged = self.merge_runs(cfg, schema.fields.len(), descending, a, b)?;
                if last {
                    return Ok((merged, merges));
                }
                next.push(self.hm.store_work_buffer(schema, &merged)?);
            }
            runs = next;
        }
    }

    fn note_case(&mut self, case: u8, blocks: usize) {
        if self.report.sort_case.is_none_or(|(c, _)| c < case) {
            self.report.sort_case = Some((case, blocks));
        }
    }

    /// Two-way merge of two sorted runs of any length (case 3), demand-driven (§5.1: "the
    /// relation to be supplied to the engine core is determined dynamically according to
    /// the state of the engine core"). U-memory holds a chunk of run `a` at a time; the
    /// rest of `b` streams through SORT-EX in partial-U mode. When the chunk runs out the
    /// core ends the command, HM adapter IN cuts `b`'s transfer, and L_TAKEN tells the CPU
    /// where `b` resumes with the next chunk. The last chunk merges with all of `b` that is
    /// left. Equal keys keep `a` first: the merge is stable. The CPU compares no keys.
    fn merge_runs(
        &mut self,
        cfg: &InConfig,
        fields: usize,
        descending: bool,
        a: Vec<Vec<u16>>,
        b: Vec<Vec<u16>>,
    ) -> Result<Vec<Vec<u16>>> {
        let ucap = self.limits.u_capacity(cfg.tuple_words);
        let merge = MergerConfig {
            command: MergerCommand::SortEx,
            settings: MergerSettings {
                descending,
                ..MergerSettings::ascending(cfg.key_words)
            },
            ..single_config(MergerCommand::SortEx, cfg, fields)
        };
        let sort = pipeline(cfg, descending, false, 0);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let mut resume = 0;
        let chunks: Vec<&[Vec<u16>]> = a.chunks(ucap).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let partial = i + 1 < chunks.len();
            let merge = MergerConfig {
                settings: MergerSettings {
                    u_partial: partial,
                    ..merge.settings
                },
                ..merge
            };
            let r = self.load_stream_unit(
                "two-way merge of runs (LOAD + SORT-EX, partial U)",
                (&sort, chunk, true),
                merge,
                (&sort, &b[resume..], true),
            )?;
            out.extend(r.tuples);
            resume = if partial { resume + r.l_taken } else { b.len() };
            ensure!(
                resume <= b.len(),
                "the engine reports {} tuples taken of the {} left in the run",
                r.l_taken,
                b.len()
            );
        }
        Ok(out)
    }

    /// Sort compact tuples of `schema` by several keys (most significant first): one stable
    /// sort per key, least significant first.
    fn sort_relation(
        &mut self,
        schema: &Schema,
        mut compact: Vec<Vec<u16>>,
        keys: &[(usize, bool)],
    ) -> Result<Vec<Vec<u16>>> {
        for &(field, descending) in keys.iter().rev() {
            compact = self.external_sort(schema, compact, Key::Field(field), descending)?;
        }
        Ok(compact)
    }

    /// The relation sorted by `key` with the DP line of each tuple (a PASS-1 over the
    /// sorted stream: the sorting checker drives DP).
    fn sorted_with_dp(
        &mut self,
        schema: &Schema,
        compact: Vec<Vec<u16>>,
        key: Key,
    ) -> Result<StepResult> {
        let cfg = in_config(schema, key);
        let feed = self.feed(schema, compact, key, false)?;
        let sort = pipeline(&cfg, false, !feed.sorted, feed.tuples.len());
        let pass = single_config(MergerCommand::Pass1, &cfg, schema.fields.len());
        self.stream_unit(
            "sort with duplicate detection (SORT-IN)",
            &sort,
            pass,
            &feed.tuples,
            true,
        )
    }

    /// PASS-2 (UNQ-IN): the first tuple of each group of equal keys.
    fn unique(
        &mut self,
        schema: &Schema,
        compact: Vec<Vec<u16>>,
        key: Key,
    ) -> Result<Vec<Vec<u16>>> {
        let cfg = in_config(schema, key);
        let feed = self.feed(schema, compact, key, false)?;
        let sort = pipeline(&cfg, false, !feed.sorted, feed.tuples.len());
        let pass2 = single_config(MergerCommand::Pass2, &cfg, schema.fields.len());
        Ok(self
            .stream_unit(
                "duplicate elimination (PASS-2)",
                &sort,
                pass2,
                &feed.tuples,
                true,
            )?
            .tuples)
    }

    // ------------------------------------------------------------------------------
    // Restriction by the engine: condition values in U-memory.
    // ------------------------------------------------------------------------------

    /// REST-EQ / REST-NE / REST-RANGE of `feed` (tuples of `schema`) by field `field`
    /// against `values` (for RANGE: low, high), in blocks the sorter takes.
    fn restrict_by_values(
        &mut self,
        schema: &Schema,
        field: usize,
        feed: &Feed,
        command: MergerCommand,
        values: &[Value],
    ) -> Result<Vec<Vec<u16>>> {
        let ty = schema.fields[field].ty;
        let vschema = Schema {
            fields: vec![Field {
                name: schema.fields[field].name.clone(),
                ty,
            }],
        };
        let vtuples = values
            .iter()
            .map(|v| encode_tuple(&vschema, std::slice::from_ref(v)))
            .collect::<Result<Vec<_>>>()?;
        let vcfg = in_config(&vschema, Key::Field(0));
        // RANGE keeps its bounds in the order given (low, high); the others sort.
        let vsort = pipeline(
            &vcfg,
            false,
            command != MergerCommand::RestRange,
            vtuples.len(),
        );
        let cfg = in_config(schema, Key::Field(field));
        let merge = single_config(command, &cfg, schema.fields.len());
        let block = if feed.sorted {
            feed.tuples.len().max(1)
        } else {
            self.limits.sort_capacity(cfg.tuple_words)
        };
        let mut out = vec![];
        for part in feed.tuples.chunks(block) {
            let sort = pipeline(&cfg, false, !feed.sorted, part.len());
            let r = self.load_stream_unit(
                &format!("{} (LOAD values + stream)", command.name()),
                (&vsort, &vtuples, command != MergerCommand::RestRange),
                merge,
                (&sort, part, true),
            )?;
            out.extend(r.tuples);
        }
        Ok(out)
    }

    fn restrict_range(
        &mut self,
        schema: &Schema,
        field: usize,
        feed: &Feed,
        low: Value,
        high: Value,
    ) -> Result<Vec<Vec<u16>>> {
        self.restrict_by_values(schema, field, feed, MergerCommand::RestRange, &[low, high])
    }

    /// A command that needs no U: REST-NULL, REST-NONULL, COMP-*, PASS-1 (input order).
    fn single_pass(
        &mut self,
        compact: &[Vec<u16>],
        cfg: &InConfig,
        merge: MergerConfig,
    ) -> Result<Vec<Vec<u16>>> {
        let sort = pipeline(cfg, false, false, compact.len());
        let what = format!("{} (one pass)", merge.command.name());
        Ok(self
            .stream_unit(&what, &sort, merge, compact, false)?
            .tuples)
    }

    /// REST-NULL, REST-NONULL or COMP-* (with the second attribute `second`) in one pass,
    /// keyed by `field`.
    fn one_pass_condition(
        &mut self,
        schema: &Schema,
        compact: &[Vec<u16>],
        field: usize,
        command: MergerCommand,
        second: Option<usize>,
    ) -> Result<Vec<Vec<u16>>> {
        let cfg = in_config(schema, Key::Field(field));
        let mut merge = single_config(command, &cfg, schema.fields.len());
        if let Some(s) = second {
            // Internal word offset: the key field is rotated to the head (it is the first
            // field, so every other field moves up by the tag word).
            merge.settings.second_offset = schema.word_offset(s) - 1;
            merge.settings.second_null_bit = Some(s as u8);
            merge.settings.second_type = schema.fields[s].ty.key_type();
        }
        self.single_pass(compact, &cfg, merge)
    }

    // ------------------------------------------------------------------------------
    // Commands.
    // ------------------------------------------------------------------------------

    /// Run one statement; its result is stored in the HM under the statement's name.
    pub fn execute(&mut self, s: &Statement) -> Result<Report> {
        self.report = Report {
            line: s.line,
            target: s.target.clone(),
            operation: s.operation.name().to_string(),
            ..Default::default()
        };
        let (read, written) = (self.hm.pages_read(), self.hm.pages_written());
        let result = self.run(s);
        self.hm.free_work_buffers();
        let result = result.map_err(|e| at_statement(e, s))?;
        self.report.tuples = result.tuples.len();
        self.hm
            .store_tuples(&s.target, &result.schema, &result.tuples)
            .with_context(|| format!("line {}: {}", s.line, s.operation.name()))?;
        self.report.pages_read = self.hm.pages_read() - read;
        self.report.pages_written = self.hm.pages_written() - written;
        Ok(std::mem::take(&mut self.report))
    }

    /// Read an operand of a command from its HM pages.
    fn read(&self, r: &RelationRef) -> Result<CompactRelation> {
        let schema = self.hm.get(r)?.schema().clone();
        Ok(CompactRelation {
            name: r.name.clone(),
            tuples: self.hm.read_tuples(&r.name)?,
            schema,
        })
    }

    fn plan(&mut self, text: impl Into<String>) {
        self.report.plan.push(text.into());
    }

    fn run(&mut self, s: &Statement) -> Result<CompactRelation> {
        match &s.operation {
            Operation::Pass { relation, project } => {
                let r = self.read(relation)?;
                self.check_tuple_length(&r.schema, &r.name)?;
                let cfg = in_config(&r.schema, Key::Field(0));
                self.plan("PASS-1 (no sort)");
                let tuples = self.single_pass(
                    &r.tuples,
                    &cfg,
                    single_config(MergerCommand::Pass1, &cfg, r.schema.fields.len()),
                )?;
                project_relation(CompactRelation { tuples, ..r }, project.as_deref())
            }
            Operation::Join {
                left,
                right,
                on,
                project,
            } => self.join(left, right, on.as_ref(), project.as_deref()),
            Operation::Restrict {
                relation,
                condition,
                project,
            } => {
                let r = self.read(relation)?;
                let out = self.restrict(&r, condition)?;
                project_relation(out, project.as_deref())
            }
            Operation::Sort { relation, keys } => {
                let r = self.read(relation)?;
                self.check_tuple_length(&r.schema, &r.name)?;
                let mut k = vec![];
                for (c, desc) in keys {
                    k.push((field_of(&r, c)?, *desc));
                }
                self.plan(format!(
                    "{} stable sort pass(es), least significant key first",
                    k.len()
                ));
                let tuples = self.sort_relation(&r.schema, r.tuples, &k)?;
                Ok(CompactRelation { tuples, ..r })
            }
            Operation::Aggregate {
                relation,
                by,
                items,
            } => self.aggregate(relation, by.as_ref(), items),
            Operation::Unique { relation, by } => {
                let r = self.read(relation)?;
                self.check_tuple_length(&r.schema, &r.name)?;
                let key = match by {
                    Some(c) => Key::Field(field_of(&r, c)?),
                    None => Key::Whole,
                };
                self.plan("PASS-2 (UNQ-IN) on the sorted stream");
                let tuples = self.unique(&r.schema, r.tuples, key)?;
                Ok(CompactRelation { tuples, ..r })
            }
            Operation::Set {
                operation,
                left,
                right,
            } => self.set_operation(*operation, left, right),
            Operation::Equal { left, right } => {
                let (a, b) = self.set_operands(left, right)?;
                let ab = self.difference(&a, &b)?.is_empty();
                let ba = ab && self.difference(&b, &a)?.is_empty();
                boolean_relation("equal", ab && ba)
            }
            Operation::Contain { left, right } => {
                let (a, b) = self.set_operands(left, right)?;
                let contains = self.difference(&b, &a)?.is_empty();
                boolean_relation("contains", contains)
            }
            Operation::Compare { relation, a, op, b } => {
                let r = self.read(relation)?;
                self.compare(&r, a, *op, b)
            }
            Operation::ZoneSort { relation, by, zone } => {
                let r = self.read(relation)?;
                self.check_tuple_length(&r.schema, &r.name)?;
                let f = field_of(&r, by)?;
                let zone = zone.unwrap_or_else(|| tuples_per_page(r.schema.tuple_words()));
                self.plan(format!(
                    "sort by {} with DP; zones of ≥ {zone} tuples cut at group ends",
                    by.name
                ));
                let sorted = self.sorted_with_dp(&r.schema, r.tuples, Key::Field(f))?;
                let mut fields = r.schema.fields.clone();
                fields.push(Field {
                    name: "zone".into(),
                    ty: FieldType::U32,
                });
                let schema = Schema { fields };
                schema.validate()?;
                let mut tuples = vec![];
                let (mut z, mut in_zone) = (0u64, 0usize);
                for (t, dup) in sorted.tuples.iter().zip(&sorted.dup) {
                    let mut v = decode_tuple(&r.schema, t)?;
                    v.push(Value::Unsigned(z));
                    tuples.push(encode_tuple(&schema, &v)?);
                    in_zone += 1;
                    if in_zone >= zone && !dup {
                        z += 1;
                        in_zone = 0;
                    }
                }
                Ok(CompactRelation {
                    name: r.name,
                    schema,
                    tuples,
                })
            }
            Operation::Delete {
                relation,
                field,
                values,
            } => self.delete(relation, field, values),
        }
    }

    fn join(
        &mut self,
        left: &RelationRef,
        right: &RelationRef,
        on: Option<&(ColumnRef, Relop, ColumnRef)>,
        project: Option<&[ColumnRef]>,
    ) -> Result<CompactRelation> {
        let a = self.read(left)?;
        let b = self.read(right)?;
        ensure!(
            a.name != b.name,
            "{}: a join of '{}' with itself needs a copy under another name (`c = PASS {}`)",
            right.at(),
            a.name,
            a.name
        );
        self.check_tuple_length(&a.schema, &a.name)?;
        self.check_tuple_length(&b.schema, &b.name)?;
        let (ka, kb, command) = match on {
            None => (0, 0, MergerCommand::JoinAll),
            Some((x, op, y)) => {
                // Either side may be named first.
                let in_rel = |c: &ColumnRef, r: &CompactRelation| {
                    c.field_of(&r.name)
                        .is_some_and(|f| r.schema.field_index(f).is_ok())
                };
                let (x, op, y) = if in_rel(x, &a) && in_rel(y, &b) {
                    (x, *op, y)
                } else if in_rel(x, &b) && in_rel(y, &a) {
                    (y, flip(*op), x)
                } else {
                    (x, *op, y)
                };
                let ka = field_of(&a, x)?;
                let kb = field_of(&b, y)?;
                let (ta, tb) = (a.schema.fields[ka].ty, b.schema.fields[kb].ty);
                ensure!(
                    ta == tb,
                    "{}: join keys differ in type: {}.{} is {ta}, {}.{} is {tb}",
                    x.at(),
                    a.name,
                    a.schema.fields[ka].name,
                    b.name,
                    b.schema.fields[kb].name
                );
                (ka, kb, join_command(op))
            }
        };
        // Which fields of each side the result needs; the engine projects the covering run
        // of fields of each side (P1..P2, Fig. 7b), the CPU the rest.
        let needed = |r: &CompactRelation, side: usize| -> Result<Vec<usize>> {
            match project {
                None => Ok((0..r.schema.fields.len()).collect()),
                Some(cols) => {
                    let mut v = vec![];
                    for c in cols {
                        let (s, i) = resolve_in_join(c, &a, &b)?;
                        if s == side {
                            v.push(i);
                        }
                    }
                    Ok(v)
                }
            }
        };
        let (na, nb) = (needed(&a, 0)?, needed(&b, 1)?);
        let range = |v: &[usize]| -> (usize, usize) {
            match (v.iter().min(), v.iter().max()) {
                (Some(&lo), Some(&hi)) => (lo, hi + 1 - lo),
                _ => (0, 0),
            }
        };
        let (ra, rb) = (range(&na), range(&nb));
        let cfg_a = in_config(&a.schema, Key::Field(ka));
        let cfg_b = in_config(&b.schema, Key::Field(kb));
        let fmt =
            |r: &CompactRelation, cfg: &InConfig, (first, count): (usize, usize)| -> SideFormat {
                let first_word = r.schema.word_offset(first);
                let end_word = if count == 0 {
                    first_word
                } else {
                    r.schema.word_offset(first + count - 1)
                        + r.schema.fields[first + count - 1].ty.words()
                };
                SideFormat {
                    tuple_words: cfg.tuple_words,
                    key_offset: cfg.key_offset,
                    key_words: cfg.key_words,
                    key_type: cfg.key_type,
                    first_word,
                    end_word,
                    first_field: first,
                    fields: count,
                }
            };
        // Result fields keep their names; a name both sides have is qualified `rel.field`.
        let mut fields = vec![];
        let mut origin = vec![];
        for (side, (r, other, (first, count))) in
            [(&a, &b, ra), (&b, &a, rb)].into_iter().enumerate()
        {
            for (i, f) in r.schema.fields.iter().enumerate().skip(first).take(count) {
                let clash = other.schema.fields.iter().any(|g| g.name == f.name);
                let name = if clash {
                    format!("{}.{}", r.name, f.name)
                } else {
                    f.name.clone()
                };
                fields.push(Field { name, ty: f.ty });
                origin.push((side, i));
            }
        }
        let engine_schema = Schema { fields };
        engine_schema.validate().context(
            "the join's output (the engine projects a contiguous run of fields per side)",
        )?;
        let join = MergerConfig {
            command,
            delete: false,
            settings: MergerSettings::ascending(cfg_a.key_words),
            tuple_words: cfg_b.tuple_words,
            output: OutputSettings {
                u: fmt(&a, &cfg_a, ra),
                l: fmt(&b, &cfg_b, rb),
                new_tid: false,
                tid_base: 0,
            },
        };
        let cartesian = command == MergerCommand::JoinAll;
        let a_compact = a.tuples.clone();
        let b_compact = b.tuples.clone();
        let feed_b = if cartesian {
            Feed {
                tuples: b_compact,
                sorted: true,
            }
        } else {
            self.feed(&b.schema, b_compact, Key::Field(kb), false)?
        };
        let chunk = self.limits.block_capacity(cfg_a.tuple_words);
        self.plan(format!(
            "LOAD {} into U ({} chunk(s) of ≤ {chunk}), stream {} through {}; engine projects fields {}..{} and {}..{}",
            a.name,
            a_compact.len().div_ceil(chunk).max(1),
            b.name,
            command.name(),
            ra.0,
            ra.0 + ra.1,
            rb.0,
            rb.0 + rb.1
        ));
        let sort_b = pipeline(&cfg_b, false, !feed_b.sorted, feed_b.tuples.len());
        let sort_b = if cartesian {
            PipelineSettings {
                sort_enable: false,
                ..sort_b
            }
        } else {
            sort_b
        };
        let mut out = vec![];
        let a_chunks: Vec<&[Vec<u16>]> = if a_compact.is_empty() {
            vec![&a_compact[..]]
        } else {
            a_compact.chunks(chunk).collect()
        };
        for part in a_chunks {
            let sort_a = pipeline(&cfg_a, false, !cartesian, part.len());
            let r = self.load_stream_unit(
                &format!("{} (LOAD + stream)", command.name()),
                (&sort_a, part, !cartesian),
                join,
                (&sort_b, &feed_b.tuples, !cartesian),
            )?;
            out.extend(r.tuples);
        }
        let rel = CompactRelation {
            name: String::new(),
            schema: engine_schema,
            tuples: out,
        };
        match project {
            None => Ok(rel),
            Some(cols) => {
                let mut idx = vec![];
                for c in cols {
                    let at = resolve_in_join(c, &a, &b)?;
                    idx.push(
                        origin
                            .iter()
                            .position(|&o| o == at)
                            .expect("the engine projects every needed field"),
                    );
                }
                Ok(select_fields(&rel, &idx))
            }
        }
    }

    fn restrict(&mut self, r: &CompactRelation, condition: &[Token]) -> Result<CompactRelation> {
        self.check_tuple_length(&r.schema, &r.name)?;
        let conjuncts = split_conjuncts(condition);
        // Request analysis: the first conjunct the engine can evaluate goes to the engine,
        // the rest is compiled for the CPU.
        let mut engine_part = None;
        let mut rest: Vec<&[Token]> = vec![];
        for c in &conjuncts {
            if engine_part.is_none() {
                if let Some(p) = analyse_conjunct(r, c)? {
                    engine_part = Some(p);
                    continue;
                }
            }
            rest.push(c);
        }
        let compact = r.tuples.clone();
        let out = match engine_part {
            Some(EngineCondition::Values {
                field,
                command,
                values,
            }) => {
                self.plan(format!(
                    "{} on {} against {} condition value(s) in U",
                    command.name(),
                    r.schema.fields[field].name,
                    values.len()
                ));
                if command == MergerCommand::RestRange
                    && compare_values(&values[0], &values[1]) == Ordering::Greater
                {
                    vec![]
                } else {
                    let feed = self.feed(&r.schema, compact, Key::Field(field), false)?;
                    self.restrict_by_values(&r.schema, field, &feed, command, &values)?
                }
            }
            Some(EngineCondition::Single {
                field,
                command,
                second,
            }) => {
                self.plan(format!(
                    "{} on {}",
                    command.name(),
                    r.schema.fields[field].name
                ));
                self.one_pass_condition(&r.schema, &compact, field, command, second)?
            }
            None => {
                let cfg = in_config(&r.schema, Key::Field(0));
                self.plan("PASS-1; the whole condition runs on the CPU");
                self.single_pass(
                    &compact,
                    &cfg,
                    single_config(MergerCommand::Pass1, &cfg, r.schema.fields.len()),
                )?
            }
        };
        let mut out = out;
        if !rest.is_empty() {
            let text = rest
                .iter()
                .map(|c| format!("({})", tokens_text(c)))
                .collect::<Vec<_>>()
                .join(" AND ");
            let columns = columns_of(&r.schema, &r.name);
            let program = expr::Program::compile_condition(&text, &columns)
                .with_context(|| format!("{}: condition", condition[0].at()))?;
            self.plan(format!("CPU: {text} compiled to {} ops", program.len()));
            let mut kept = vec![];
            for t in out {
                self.report.cpu_ops += program.len() as u64;
                if program.eval_condition(&decode_tuple(&r.schema, &t)?)? {
                    kept.push(t);
                }
            }
            out = kept;
        }
        Ok(CompactRelation {
            name: r.name.clone(),
            schema: r.schema.clone(),
            tuples: out,
        })
    }

    fn compare(
        &mut self,
        r: &CompactRelation,
        a: &ColumnRef,
        op: Relop,
        b: &ColumnRef,
    ) -> Result<CompactRelation> {
        self.check_tuple_length(&r.schema, &r.name)?;
        let (fa, fb) = (field_of(r, a)?, field_of(r, b)?);
        let (ta, tb) = (r.schema.fields[fa].ty, r.schema.fields[fb].ty);
        ensure!(
            ta == tb,
            "{}: COMPARE needs attributes of one type: {} is {ta}, {} is {tb}",
            a.at(),
            a.name,
            b.name
        );
        let compact = &r.tuples;
        // COMPARE ATTRIBUTES reads the tag as the internal tuple's last word: the key must
        // be the first field. Otherwise the CPU compares.
        let hw = if fa == 0 {
            Some((fa, op, fb))
        } else if fb == 0 {
            Some((fb, flip(op), fa))
        } else {
            None
        };
        let out = match hw {
            Some((k, op, s)) if k != s => {
                let command = compare_command(op);
                self.plan(format!("{} (COMPARE ATTRIBUTES)", command.name()));
                self.one_pass_condition(&r.schema, compact, k, command, Some(s))?
            }
            _ => {
                self.plan("PASS-1; the CPU compares the attributes (neither is the first field)");
                let cfg = in_config(&r.schema, Key::Field(0));
                let out = self.single_pass(
                    compact,
                    &cfg,
                    single_config(MergerCommand::Pass1, &cfg, r.schema.fields.len()),
                )?;
                let mut kept = vec![];
                for t in out {
                    let v = decode_tuple(&r.schema, &t)?;
                    self.report.cpu_ops += 3;
                    if !matches!(v[fa], Value::Null)
                        && !matches!(v[fb], Value::Null)
                        && op.holds(compare_values(&v[fa], &v[fb]))
                    {
                        kept.push(t);
                    }
                }
                kept
            }
        };
        Ok(CompactRelation {
            name: r.name.clone(),
            schema: r.schema.clone(),
            tuples: out,
        })
    }

    fn aggregate(
        &mut self,
        relation: &RelationRef,
        by: Option<&ColumnRef>,
        items: &[crate::command::AggregateItem],
    ) -> Result<CompactRelation> {
        let r = self.read(relation)?;
        self.check_tuple_length(&r.schema, &r.name)?;
        let columns = columns_of(&r.schema, &r.name);
        let mut programs = vec![];
        for item in items {
            programs.push(match &item.argument {
                None => None,
                Some(tokens) => Some(
                    expr::Program::compile(&tokens_text(tokens), &columns).with_context(|| {
                        format!("{}: argument of {}", tokens[0].at(), item.name)
                    })?,
                ),
            });
        }
        let group = by.map(|c| field_of(&r, c)).transpose()?;
        let (tuples, dup) = match group {
            Some(g) => {
                self.plan(format!(
                    "sort by {} (SORT-IN); the CPU ends a group where DP is off",
                    r.schema.fields[g].name
                ));
                let s = self.sorted_with_dp(&r.schema, r.tuples.clone(), Key::Field(g))?;
                (s.tuples, s.dup)
            }
            None => {
                self.plan("PASS-1; one group");
                let cfg = in_config(&r.schema, Key::Field(0));
                let t = self.single_pass(
                    &r.tuples,
                    &cfg,
                    single_config(MergerCommand::Pass1, &cfg, r.schema.fields.len()),
                )?;
                let n = t.len();
                (t, (0..n).map(|i| i + 1 < n).collect())
            }
        };
        let ops: usize = programs.iter().flatten().map(|p| p.len()).sum();
        self.plan(format!(
            "CPU: {} aggregate(s), {ops} compiled ops per tuple",
            items.len()
        ));
        // Result schema: the group field, then one column per aggregate.
        let mut fields = vec![];
        if let Some(g) = group {
            fields.push(r.schema.fields[g].clone());
        }
        for (item, p) in items.iter().zip(&programs) {
            let ty = match (item.function, p) {
                (AggregateFunction::Count, _) => FieldType::U64,
                (AggregateFunction::Avg, _) => FieldType::F32,
                (_, Some(p)) => match single_column(p, &r.schema) {
                    Some(ty) if item.function != AggregateFunction::Sum => ty,
                    _ => p.field_type(),
                },
                (_, None) => FieldType::U64,
            };
            fields.push(Field {
                name: item.name.clone(),
                ty,
            });
        }
        let schema = Schema { fields };
        schema.validate().context("the aggregate's result")?;
        let mut out = vec![];
        let mut acc: Vec<Accumulator> = items.iter().map(|_| Accumulator::default()).collect();
        for (t, d) in tuples.iter().zip(&dup) {
            let row = decode_tuple(&r.schema, t)?;
            for (a, p) in acc.iter_mut().zip(&programs) {
                let v = match p {
                    Some(p) => {
                        self.report.cpu_ops += p.len() as u64;
                        Some(p.eval(&row)?)
                    }
                    None => None,
                };
                a.add(v);
            }
            if !d {
                let mut t = vec![];
                if let Some(g) = group {
                    t.push(row[g].clone());
                }
                for ((a, item), f) in acc
                    .iter()
                    .zip(items)
                    .zip(&schema.fields[group.is_some() as usize..])
                {
                    t.push(a.result(item.function, f.ty)?);
                }
                out.push(encode_tuple(&schema, &t)?);
                acc = items.iter().map(|_| Accumulator::default()).collect();
            }
        }
        if group.is_none() && tuples.is_empty() {
            let t = items
                .iter()
                .zip(&schema.fields)
                .map(|(item, f)| Accumulator::default().result(item.function, f.ty))
                .collect::<Result<Vec<_>>>()?;
            out.push(encode_tuple(&schema, &t)?);
        }
        Ok(CompactRelation {
            name: r.name,
            schema,
            tuples: out,
        })
    }

    fn set_operands(
        &self,
        left: &RelationRef,
        right: &RelationRef,
    ) -> Result<(CompactRelation, CompactRelation)> {
        let a = self.read(left)?;
        let b = self.read(right)?;
        let types = |r: &CompactRelation| r.schema.fields.iter().map(|f| f.ty).collect::<Vec<_>>();
        ensure!(
            types(&a) == types(&b),
            "{}: '{}' and '{}' are not union-compatible: field types ({}) and ({})",
            right.at(),
            a.name,
            b.name,
            a.schema
                .fields
                .iter()
                .map(|f| f.ty.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            b.schema
                .fields
                .iter()
                .map(|f| f.ty.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.check_tuple_length(&a.schema, &a.name)?;
        Ok((a, b))
    }

    /// Tuples of `a` that are not in `b` (whole-tuple keys): `b` in U-memory chunk by
    /// chunk, `a` streamed through REST-NE against each chunk.
    fn difference(&mut self, a: &CompactRelation, b: &CompactRelation) -> Result<Vec<Vec<u16>>> {
        let cfg = in_config(&a.schema, Key::Whole);
        let chunk = self.limits.block_capacity(cfg.tuple_words);
        let b_compact = &b.tuples;
        let merge = single_config(MergerCommand::RestNe, &cfg, a.schema.fields.len());
        let mut feed = self.feed(&a.schema, a.tuples.clone(), Key::Whole, false)?;
        self.plan(format!(
            "REST-NE of {} against {} in U ({} chunk(s))",
            a.name,
            b.name,
            b_compact.len().div_ceil(chunk)
        ));
        for part in b_compact.chunks(chunk) {
            let sort_b = pipeline(&cfg, false, true, part.len());
            let sort_a = pipeline(&cfg, false, !feed.sorted, feed.tuples.len());
            let r = self.load_stream_unit(
                "REST-NE (LOAD + stream)",
                (&sort_b, part, true),
                merge,
                (&sort_a, &feed.tuples, true),
            )?;
            feed = Feed {
                tuples: r.tuples,
                sorted: true,
            };
        }
        Ok(feed.tuples)
    }

    fn set_operation(
        &mut self,
        operation: SetOperation,
        left: &RelationRef,
        right: &RelationRef,
    ) -> Result<CompactRelation> {
        let (a, b) = self.set_operands(left, right)?;
        let cfg = in_config(&a.schema, Key::Whole);
        let out = match operation {
            SetOperation::Union => {
                let (ac, bc) = (a.tuples.clone(), b.tuples.clone());
                if ac.len() <= self.limits.block_capacity(cfg.tuple_words)
                    && bc.len() <= self.limits.sort_capacity(cfg.tuple_words)
                {
                    self.plan(format!("LOAD {} into U, UNQ-EX with {}", a.name, b.name));
                    let merge = single_config(MergerCommand::UnqEx, &cfg, a.schema.fields.len());
                    let (sa, sb) = (
                        pipeline(&cfg, false, true, ac.len()),
                        pipeline(&cfg, false, true, bc.len()),
                    );
                    self.load_stream_unit(
                        "UNQ-EX (LOAD + stream)",
                        (&sa, &ac, true),
                        merge,
                        (&sb, &bc, true),
                    )?
                    .tuples
                } else {
                    self.plan("both relations in one stream, then PASS-2 (UNQ-IN)");
                    let mut all = ac;
                    all.extend(bc);
                    self.unique(&a.schema, all, Key::Whole)?
                }
            }
            SetOperation::Intersection => {
                let chunk = self.limits.block_capacity(cfg.tuple_words);
                let ac = &a.tuples;
                let feed = self.feed(&b.schema, b.tuples.clone(), Key::Whole, false)?;
                self.plan(format!(
                    "REST-EQ of {} against {} in U, then PASS-2",
                    b.name, a.name
                ));
                let merge = single_config(MergerCommand::RestEq, &cfg, a.schema.fields.len());
                let mut found = vec![];
                for part in ac.chunks(chunk) {
                    let sa = pipeline(&cfg, false, true, part.len());
                    let sb = pipeline(&cfg, false, !feed.sorted, feed.tuples.len());
                    let r = self.load_stream_unit(
                        "REST-EQ (LOAD + stream)",
                        (&sa, part, true),
                        merge,
                        (&sb, &feed.tuples, true),
                    )?;
                    found.extend(r.tuples);
                }
                self.unique(&a.schema, found, Key::Whole)?
            }
            SetOperation::Difference => {
                let d = self.difference(&a, &b)?;
                self.plan("then PASS-2 (UNQ-IN)");
                self.unique(&a.schema, d, Key::Whole)?
            }
        };
        Ok(CompactRelation { tuples: out, ..a })
    }

    fn delete(
        &mut self,
        relation: &RelationRef,
        field: &ColumnRef,
        values: &[Token],
    ) -> Result<CompactRelation> {
        let stored = self.hm.get(relation)?;
        let r = CompactRelation {
            name: relation.name.clone(),
            schema: stored.schema().clone(),
            tuples: vec![],
        };
        self.check_tuple_length(&r.schema, &r.name)?;
        let f = field_of(&r, field)?;
        let ty = r.schema.fields[f].ty;
        let mut vals = vec![];
        for t in values {
            vals.push(literal_value(t, ty)?);
        }
        let vschema = Schema {
            fields: vec![Field {
                name: "v".into(),
                ty,
            }],
        };
        let vtuples = vals
            .iter()
            .map(|v| encode_tuple(&vschema, std::slice::from_ref(v)))
            .collect::<Result<Vec<_>>>()?;
        let vcfg = in_config(&vschema, Key::Field(0));
        let vsort = pipeline(&vcfg, false, true, vtuples.len());
        let cfg = in_config(&r.schema, Key::Field(f));
        let tw = cfg.tuple_words;
        // Each HM page goes through delete mode; a page larger than the sorter or L-memory
        // (the whole part is held there) goes in parts.
        let part = tuples_per_page(tw)
            .min(self.limits.sort_capacity(tw))
            .min((self.limits.memory_words - 1) / tw);
        let merge = MergerConfig {
            delete: true,
            ..single_config(MergerCommand::RestEq, &cfg, r.schema.fields.len())
        };
        self.plan(format!("LOAD {} condition value(s); each page (in parts of ≤ {part} tuples) through delete mode (DELETE-KEEP, then REST-EQ replay)", vals.len()));
        let pages: Vec<Vec<Vec<u16>>> = self
            .hm
            .pages(&r.name)?
            .map(|page| page.chunks_exact(tw).map(<[u16]>::to_vec).collect())
            .collect();
        let mut kept = vec![];
        let mut deleted = 0;
        for part in pages.iter().flat_map(|page| page.chunks(part)) {
            let sort = pipeline(&cfg, false, true, part.len());
            let out = self.load_stream_unit(
                "DELETE page (LOAD + delete mode)",
                (&vsort, &vtuples, true),
                merge,
                (&sort, part, true),
            )?;
            // The page comes back whole: kept tuples first, deleted ones gathered below
            // (Fig. 9). The CPU, which loaded the values, counts the kept ones.
            for t in out.tuples {
                let v = decode_tuple(&r.schema, &t)?;
                self.report.cpu_ops += vals.len() as u64;
                if vals.iter().any(|c| {
                    !matches!(v[f], Value::Null) && compare_values(c, &v[f]) == Ordering::Equal
                }) {
                    deleted += 1;
                } else {
                    kept.push(t);
                }
            }
        }
        self.plan(format!("{deleted} tuple(s) deleted"));
        Ok(CompactRelation { tuples: kept, ..r })
    }
}

// ----------------------------------------------------------------------------------
// Request analysis helpers.
// ----------------------------------------------------------------------------------

/// The IN module's layout for `key` of `schema`.
/// An error of statement `s`, said once where: `line 2, column 13: JOIN: unknown relation
/// …` when the error names its column on the statement's line, else `line 2: JOIN: …`.
fn at_statement(e: anyhow::Error, s: &Statement) -> anyhow::Error {
    let text = format!("{e:#}");
    if text.starts_with(&format!("line {}, column ", s.line)) {
        if let Some((position, rest)) = text.split_once(": ") {
            return anyhow!("{position}: {}: {rest}", s.operation.name());
        }
    }
    e.context(format!("line {}: {}", s.line, s.operation.name()))
}

fn in_config(schema: &Schema, key: Key) -> InConfig {
    let n = schema.tuple_words();
    match key {
        Key::Whole => InConfig {
            tuple_words: n,
            key_offset: 1,
            key_words: n,
            key_type: KeyType::Unsigned,
            key_null_bit: None,
        },
        Key::Field(i) => InConfig {
            tuple_words: n,
            key_offset: schema.word_offset(i),
            key_words: schema.fields[i].ty.words(),
            key_type: schema.fields[i].ty.key_type(),
            key_null_bit: Some(i as u8),
        },
    }
}

fn pipeline(
    cfg: &InConfig,
    descending: bool,
    sort_enable: bool,
    tuples: usize,
) -> PipelineSettings {
    PipelineSettings {
        input: cfg.clone(),
        descending,
        sort_enable,
        tuples_hint: if sort_enable { tuples } else { 0 },
    }
}

/// A command on one relation, output as whole tuples.
fn single_config(command: MergerCommand, cfg: &InConfig, fields: usize) -> MergerConfig {
    let mut whole = SideFormat::whole(cfg, fields);
    // A whole-tuple key (unsigned, nothing to undo) covers the tag word too; the output
    // format only needs the key's words among the fields.
    whole.key_words = whole.key_words.min(cfg.tuple_words - 1);
    MergerConfig {
        command,
        delete: false,
        settings: MergerSettings::ascending(cfg.key_words),
        tuple_words: cfg.tuple_words,
        output: OutputSettings {
            u: whole,
            l: whole,
            new_tid: false,
            tid_base: 0,
        },
    }
}

fn join_command(op: Relop) -> MergerCommand {
    match op {
        Relop::Eq => MergerCommand::JoinEq,
        Relop::Ne => MergerCommand::JoinNe,
        Relop::Lt => MergerCommand::JoinLt,
        Relop::Le => MergerCommand::JoinLe,
        Relop::Gt => MergerCommand::JoinGt,
        Relop::Ge => MergerCommand::JoinGe,
    }
}

fn compare_command(op: Relop) -> MergerCommand {
    match op {
        Relop::Eq => MergerCommand::CompEq,
        Relop::Ne => MergerCommand::CompNe,
        Relop::Lt => MergerCommand::CompLt,
        Relop::Le => MergerCommand::CompLe,
        Relop::Gt => MergerCommand::CompGt,
        Relop::Ge => MergerCommand::CompGe,
    }
}

fn flip(op: Relop) -> Relop {
    match op {
        Relop::Lt => Relop::Gt,
        Relop::Gt => Relop::Lt,
        Relop::Le => Relop::Ge,
        Relop::Ge => Relop::Le,
        o => o,
    }
}

fn decode_all(schema: &Schema, compact: &[Vec<u16>]) -> Result<Vec<Vec<Value>>> {
    compact
        .iter()
        .enumerate()
        .map(|(i, t)| {
            decode_tuple(schema, t).with_context(|| format!("engine output tuple {}", i + 1))
        })
        .collect()
}

fn boolean_relation(name: &str, value: bool) -> Result<CompactRelation> {
    let schema = Schema::new(&[(name, FieldType::U16)])?;
    let tuple = encode_tuple(&schema, &[Value::Unsigned(value as u64)])?;
    Ok(CompactRelation {
        name: String::new(),
        schema,
        tuples: vec![tuple],
    })
}

/// The field a column names in `r` (bare, or qualified by `r`'s name).
fn field_of(r: &CompactRelation, c: &ColumnRef) -> Result<usize> {
    // A field whose own name holds a dot (a join result's `users.user_id`) first.
    if let Ok(i) = r.schema.field_index(&c.name) {
        return Ok(i);
    }
    let f = c.field_of(&r.name).ok_or_else(|| {
        anyhow!(
            "{}: column '{}' is not of relation '{}'",
            c.at(),
            c.name,
            r.name
        )
    })?;
    r.schema
        .field_index(f)
        .with_context(|| format!("{}: relation '{}'", c.at(), r.name))
}

/// A join's column: (side, field index); it must name a field of exactly one side.
fn resolve_in_join(
    c: &ColumnRef,
    a: &CompactRelation,
    b: &CompactRelation,
) -> Result<(usize, usize)> {
    let hits: Vec<(usize, usize)> = [a, b]
        .iter()
        .enumerate()
        .filter_map(|(side, r)| field_of(r, c).ok().map(|i| (side, i)))
        .collect();
    match hits.len() {
        1 => Ok(hits[0]),
        0 => bail!(
            "{}: no column '{}' in '{}' or '{}'",
            c.at(),
            c.name,
            a.name,
            b.name
        ),
        _ => bail!(
            "{}: column '{}' is in both '{}' and '{}'; qualify it",
            c.at(),
            c.name,
            a.name,
            b.name
        ),
    }
}

/// The CPU's projection of compact tuples: fields `idx` in that order, each with its null
/// bit moved to its new place in the tag word.
fn select_fields(r: &CompactRelation, idx: &[usize]) -> CompactRelation {
    let spans: Vec<(usize, usize)> = idx
        .iter()
        .map(|&i| {
            let at = r.schema.word_offset(i);
            (at, at + r.schema.fields[i].ty.words())
        })
        .collect();
    let tuples = r
        .tuples
        .iter()
        .map(|t| {
            let mut tag = 0u16;
            let mut out = vec![0];
            for (j, (&i, &(from, to))) in idx.iter().zip(&spans).enumerate() {
                if t[0] & (1 << i) != 0 {
                    tag |= 1 << j;
                }
                out.extend_from_slice(&t[from..to]);
            }
            out[0] = tag;
            out
        })
        .collect();
    CompactRelation {
        name: r.name.clone(),
        schema: Schema {
            fields: idx.iter().map(|&i| r.schema.fields[i].clone()).collect(),
        },
        tuples,
    }
}

/// PROJECT for single-relation commands (CPU: select and order fields); columns resolve
/// against `r`'s name.
fn project_relation(r: CompactRelation, project: Option<&[ColumnRef]>) -> Result<CompactRelation> {
    let Some(cols) = project else { return Ok(r) };
    let idx = cols
        .iter()
        .map(|c| field_of(&r, c))
        .collect::<Result<Vec<_>>>()?;
    let p = select_fields(&r, &idx);
    p.schema.validate()?;
    Ok(p)
}

/// The relation's fields named `relation.field` (the compiler resolves bare names too).
fn columns_of(schema: &Schema, relation: &str) -> Schema {
    Schema {
        fields: schema
            .fields
            .iter()
            .map(|f| Field {
                name: format!("{relation}.{}", f.name),
                ty: f.ty,
            })
            .collect(),
    }
}

/// The column type when a program just reads one column.
fn single_column(p: &expr::Program, schema: &Schema) -> Option<FieldType> {
    match p.columns_used().as_slice() {
        [i] if p.len() == 1 => Some(schema.fields[*i].ty),
        _ => None,
    }
}

/// Split a condition at its top-level ANDs (not the AND of BETWEEN).
fn split_conjuncts(tokens: &[Token]) -> Vec<&[Token]> {
    let mut parts = vec![];
    let (mut depth, mut start, mut between) = (0, 0, false);
    for (i, t) in tokens.iter().enumerate() {
        if t.is_symbol("(") {
            depth += 1;
        } else if t.is_symbol(")") {
            depth -= 1;
        } else if depth == 0 && t.is_keyword("between") {
            between = true;
        } else if depth == 0 && t.is_keyword("or") {
            // A top-level OR: the whole condition is one conjunct.
            return vec![tokens];
        } else if depth == 0 && t.is_keyword("and") {
            if between {
                between = false;
            } else {
                parts.push(&tokens[start..i]);
                start = i + 1;
            }
        }
    }
    parts.push(&tokens[start..]);
    parts
}

enum EngineCondition {
    /// REST-EQ / REST-NE / REST-RANGE with condition values in U.
    Values {
        field: usize,
        command: MergerCommand,
        values: Vec<Value>,
    },
    /// REST-NULL / REST-NONULL / COMP-*: one pass.
    Single {
        field: usize,
        command: MergerCommand,
        second: Option<usize>,
    },
}

fn literal_value(t: &Token, ty: FieldType) -> Result<Value> {
    let text = match t.kind {
        TokenKind::Str => t.text[1..t.text.len() - 1].replace("''", "'"),
        _ => t.text.clone(),
    };
    if t.kind == TokenKind::Str && matches!(ty, FieldType::Char(_)).then_some(()).is_none() {
        bail!("{}: {t} is a string; the field is {ty}", t.at());
    }
    if t.kind != TokenKind::Str && matches!(ty, FieldType::Char(_)) {
        bail!(
            "{}: {t} is a number; the field is {ty} (quote strings: 'text')",
            t.at()
        );
    }
    parse_value(&text, ty).with_context(|| format!("{}: value {t}", t.at()))
}

/// Literal tokens: a number (maybe negative) or a string.
fn literal_at(c: &[Token], i: usize) -> Option<(Token, usize)> {
    match (c.get(i), c.get(i + 1)) {
        (Some(m), Some(n)) if m.is_symbol("-") && n.kind == TokenKind::Number => Some((
            Token {
                text: format!("-{}", n.text),
                ..m.clone()
            },
            2,
        )),
        (Some(t), _) if matches!(t.kind, TokenKind::Number | TokenKind::Str) => {
            Some((t.clone(), 1))
        }
        _ => None,
    }
}

/// Bounds of a type for one-sided ranges (None: not available, the CPU does it).
fn type_bounds(ty: FieldType) -> Option<(Value, Value)> {
    Some(match ty {
        FieldType::U16 => (Value::Unsigned(0), Value::Unsigned(u16::MAX as u64)),
        FieldType::U32 => (Value::Unsigned(0), Value::Unsigned(u32::MAX as u64)),
        FieldType::U64 => (Value::Unsigned(0), Value::Unsigned(u64::MAX)),
        FieldType::I16 => (
            Value::Signed(i16::MIN as i64),
            Value::Signed(i16::MAX as i64),
        ),
        FieldType::I32 => (
            Value::Signed(i32::MIN as i64),
            Value::Signed(i32::MAX as i64),
        ),
        FieldType::I64 => (Value::Signed(i64::MIN), Value::Signed(i64::MAX)),
        FieldType::F32 => (Value::Float(f32::NEG_INFINITY), Value::Float(f32::INFINITY)),
        FieldType::Char(_) => return None,
    })
}

/// The next integer above/below (strict bounds on integer fields).
fn step_value(v: &Value, up: bool) -> Option<Value> {
    match v {
        Value::Unsigned(x) => if up {
            x.checked_add(1)
        } else {
            x.checked_sub(1)
        }
        .map(Value::Unsigned),
        Value::Signed(x) => if up {
            x.checked_add(1)
        } else {
            x.checked_sub(1)
        }
        .map(Value::Signed),
        _ => None,
    }
}

/// Can the engine evaluate this conjunct? (field op literal, IN, BETWEEN, IS [NOT] NULL,
/// field op field.)
fn analyse_conjunct(r: &CompactRelation, c: &[Token]) -> Result<Option<EngineCondition>> {
    let field = |t: &Token| -> Option<usize> {
        if t.kind != TokenKind::Name {
            return None;
        }
        let cref = ColumnRef {
            name: t.text.clone(),
            line: t.line,
            column: t.column,
        };
        field_of(r, &cref).ok()
    };
    let Some(f) = c.first().and_then(field) else {
        return Ok(None);
    };
    let ty = r.schema.fields[f].ty;
    let values = |command, values| {
        Ok(Some(EngineCondition::Values {
            field: f,
            command,
            values,
        }))
    };
    // IS [NOT] NULL
    if c.len() == 3 && c[1].is_keyword("is") && c[2].is_keyword("null") {
        return Ok(Some(EngineCondition::Single {
            field: f,
            command: MergerCommand::RestNull,
            second: None,
        }));
    }
    if c.len() == 4 && c[1].is_keyword("is") && c[2].is_keyword("not") && c[3].is_keyword("null") {
        return Ok(Some(EngineCondition::Single {
            field: f,
            command: MergerCommand::RestNonull,
            second: None,
        }));
    }
    // [NOT] IN (literals)
    let (not, at) = if c.get(1).is_some_and(|t| t.is_keyword("not")) {
        (true, 2)
    } else {
        (false, 1)
    };
    if c.get(at).is_some_and(|t| t.is_keyword("in"))
        && c.get(at + 1).is_some_and(|t| t.is_symbol("("))
        && c.last().is_some_and(|t| t.is_symbol(")"))
    {
        let mut vals = vec![];
        let mut i = at + 2;
        while i < c.len() - 1 {
            let Some((lit, n)) = literal_at(c, i) else {
                return Ok(None);
            };
            vals.push(literal_value(&lit, ty)?);
            i += n;
            if i < c.len() - 1 {
                if !c[i].is_symbol(",") {
                    return Ok(None);
                }
                i += 1;
            }
        }
        if vals.iter().any(|v| matches!(v, Value::Null)) {
            return Ok(None);
        }
        return values(
            if not {
                MergerCommand::RestNe
            } else {
                MergerCommand::RestEq
            },
            vals,
        );
    }
    // BETWEEN lit AND lit
    if c.get(1).is_some_and(|t| t.is_keyword("between")) {
        if let Some((lo, n)) = literal_at(c, 2) {
            if c.get(2 + n).is_some_and(|t| t.is_keyword("and")) {
                if let Some((hi, m)) = literal_at(c, 3 + n) {
                    if 3 + n + m == c.len() {
                        return values(
                            MergerCommand::RestRange,
                            vec![literal_value(&lo, ty)?, literal_value(&hi, ty)?],
                        );
                    }
                }
            }
        }
        return Ok(None);
    }
    // field op literal | field op field
    let op = match c.get(1).map(|t| t.text.as_str()) {
        Some("=") => Relop::Eq,
        Some("<>") | Some("!=") => Relop::Ne,
        Some("<") => Relop::Lt,
        Some("<=") => Relop::Le,
        Some(">") => Relop::Gt,
        Some(">=") => Relop::Ge,
        _ => return Ok(None),
    };
    if c.len() == 3 {
        if let Some(g) = field(&c[2]) {
            if f == 0 && g != 0 && r.schema.fields[g].ty == ty {
                let command = compare_command(op);
                return Ok(Some(EngineCondition::Single {
                    field: f,
                    command,
                    second: Some(g),
                }));
            }
            return Ok(None);
        }
    }
    let Some((lit, n)) = literal_at(c, 2) else {
        return Ok(None);
    };
    if 2 + n != c.len() {
        return Ok(None);
    }
    let v = literal_value(&lit, ty)?;
    let bounds = type_bounds(ty);
    Ok(match (op, bounds) {
        (Relop::Eq, _) => return values(MergerCommand::RestEq, vec![v]),
        (Relop::Ne, _) => return values(MergerCommand::RestNe, vec![v]),
        (Relop::Ge, Some((_, hi))) => return values(MergerCommand::RestRange, vec![v, hi]),
        (Relop::Le, Some((lo, _))) => return values(MergerCommand::RestRange, vec![lo, v]),
        (Relop::Gt, Some((_, hi))) => match step_value(&v, true) {
            Some(v) => return values(MergerCommand::RestRange, vec![v, hi]),
            None => None,
        },
        (Relop::Lt, Some((lo, _))) => match step_value(&v, false) {
            Some(v) => return values(MergerCommand::RestRange, vec![lo, v]),
            None => None,
        },
        _ => None,
    })
}

/// Order of two non-null values of one type (CPU comparisons).
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Unsigned(x), Value::Unsigned(y)) => x.cmp(y),
        (Value::Signed(x), Value::Signed(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.total_cmp(y),
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        _ => format!("{a:?}").cmp(&format!("{b:?}")),
    }
}

/// An aggregate's running state (SQL: nulls are ignored; no values gives null).
#[derive(Default)]
struct Accumulator {
    count: u64,
    sum_int: i128,
    sum_float: f64,
    float: bool,
    best_max: Option<Value>,
    best_min: Option<Value>,
}

impl Accumulator {
    fn add(&mut self, v: Option<Value>) {
        let Some(v) = v else {
            self.count += 1;
            return;
        };
        match &v {
            Value::Null => return,
            Value::Unsigned(x) => self.sum_int += *x as i128,
            Value::Signed(x) => self.sum_int += *x as i128,
            Value::Float(x) => {
                self.float = true;
                self.sum_float += *x as f64;
            }
            Value::Text(_) => {}
        }
        self.count += 1;
        if self
            .best_max
            .as_ref()
            .is_none_or(|m| compare_values(&v, m) == Ordering::Greater)
        {
            self.best_max = Some(v.clone());
        }
        if self
            .best_min
            .as_ref()
            .is_none_or(|m| compare_values(&v, m) == Ordering::Less)
        {
            self.best_min = Some(v);
        }
    }

    fn result(&self, f: AggregateFunction, ty: FieldType) -> Result<Value> {
        let total = self.sum_float + self.sum_int as f64;
        Ok(match f {
            AggregateFunction::Count => Value::Unsigned(self.count),
            _ if self.count == 0 => Value::Null,
            AggregateFunction::Avg => Value::Float((total / self.count as f64) as f32),
            AggregateFunction::Sum if self.float || ty == FieldType::F32 => {
                Value::Float(total as f32)
            }
            AggregateFunction::Sum => Value::Signed(
                i64::try_from(self.sum_int)
                    .map_err(|_| anyhow!("sum {} does not fit i64", self.sum_int))?,
            ),
            AggregateFunction::Max => convert(self.best_max.clone().unwrap(), ty)?,
            AggregateFunction::Min => convert(self.best_min.clone().unwrap(), ty)?,
        })
    }
}

/// A value as the field type stores it.
fn convert(v: Value, ty: FieldType) -> Result<Value> {
    Ok(match (v, ty) {
        (Value::Unsigned(x), FieldType::I16 | FieldType::I32 | FieldType::I64) => {
            Value::Signed(i64::try_from(x)?)
        }
        (Value::Signed(x), FieldType::U16 | FieldType::U32 | FieldType::U64) => {
            Value::Unsigned(u64::try_from(x)?)
        }
        (Value::Unsigned(x), FieldType::F32) => Value::Float(x as f32),
        (Value::Signed(x), FieldType::F32) => Value::Float(x as f32),
        (v, _) => v,
    })
}
