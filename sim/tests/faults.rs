//! The fault campaign (`rdbe faults`, issue 7) on the rust-hdl simulation: short runs of
//! the same code the 10,000-experiment campaign in docs/RELIABILITY.md runs on Verilator.
use rdbe_rtl::fault_injector::{Fault, FaultKind, FaultSite, StreamFault};
use rdbe_rtl::memory_fault::MemoryFault;
use rdbe_sim::command::parse_script;
use rdbe_sim::control_program::{ControlProgram, InjectedFault};
use rdbe_sim::engine::{new_engine, Profile, StepFault};
use rdbe_sim::faults::{run_campaign, FaultOptions};
use rdbe_sim::relation::{FieldType, Relation, Schema, Value};
use rdbe_sim::sort_job::{Backend, EngineConfig};

fn rtl_program() -> ControlProgram {
    ControlProgram::new(
        new_engine(EngineConfig::Small, Backend::Rtl, Profile::Modern),
        Profile::Modern,
    )
    .unwrap()
}

#[test]
fn a_short_campaign_on_the_rtl_has_no_silent_wrong_result() {
    let opts = FaultOptions {
        count: 30,
        seed: 11,
        backend: Backend::Rtl,
        config: EngineConfig::Small,
        memory_count: 0,
        no_permanent: true,
        paper_checks_only: false,
    };
    let result = run_campaign(&opts, |_| {}).unwrap();
    assert_eq!(result.experiments.len(), 30);
    let [masked, recovered, reported, silent] = result.totals();
    assert_eq!(silent, 0, "{}", result.table());
    assert_eq!(reported, 0, "{}", result.table());
    assert!(recovered > 0, "{}", result.table());
    assert_eq!(masked + recovered, 30);
    // Every site was hit, and the table and JSON say what the experiments say.
    for site in FaultSite::ALL {
        assert!(result.experiments.iter().any(|e| e.fault.site == site));
    }
    assert_eq!(result.to_json()["recovered"], recovered);
    assert!(result.table().contains("| all | all | 30 |"));
}

/// `k` null in the second tuple only; RESTRICT … IS NULL keeps that one.
fn nullable() -> Relation {
    let schema = Schema::new(&[("k", FieldType::I16), ("v", FieldType::U16)]).unwrap();
    let rows = [(Some(1), 10), (None, 20), (Some(2), 30)];
    Relation::new(
        "a",
        schema,
        rows.iter()
            .map(|&(k, v)| {
                vec![
                    k.map(Value::Signed).unwrap_or(Value::Null),
                    Value::Unsigned(v),
                ]
            })
            .collect(),
    )
    .unwrap()
}

/// A flipped NL line between the sorting checker and the merger: no parity covers NL and
/// the checker has already seen the stream, so the paper's checks let the wrong tuple
/// through; the link check catches it and the retry gives the right result.
#[test]
fn a_flipped_null_line_after_the_checker_is_silent_without_the_link_check() {
    let script = parse_script("t", "x = RESTRICT a WHERE k IS NULL").unwrap();
    // The first tuple's first word (k = 1): the merger reads NL with it.
    let fault = InjectedFault::stream(0, FaultSite::Sorted, FaultKind::FlipNull, 0, 0);
    let mut results = vec![];
    for added_checks in [false, true] {
        let mut cp = rtl_program();
        cp.added_checks = added_checks;
        cp.hm.store(&nullable()).unwrap();
        cp.inject(&[fault]);
        let hits = cp.faults_hit;
        let report = cp.execute(&script[0]).unwrap();
        assert_eq!(cp.faults_hit, hits + 1, "the fault hit its beat");
        results.push((cp.hm.relation("x").unwrap().tuples.len(), report.retries));
    }
    assert_eq!(
        results,
        vec![(2, 0), (1, 1)],
        "(tuples, retries): paper checks only, then with the link check"
    );
}

/// An L-memory word whose end-of-stream line is flipped while REST-NE streams its tuple
/// out (the merger in EmitL): it would end the selected stream there, unchecked, and the
/// command lose the tuples behind it (the 100,000-experiment campaign's last silent class,
/// docs/RELIABILITY.md). The operation part checks the stored parity of every word it
/// emits: a parity error, a retry, the right result.
#[test]
fn an_end_of_stream_line_flipped_in_l_memory_while_emitted_is_caught() {
    let csv = |name: &str, text: &str| rdbe_sim::csv_io::parse_csv(name, name, text).unwrap();
    let a = csv(
        "a",
        "k:i16,v:u16,s:char(3)\n1,1,b\n-4,3,c\n-2,2,b\n1,3,\n-1,3,b\n-1,5,\n",
    );
    let b = csv(
        "b",
        "k:i16,v:u16,s:char(3)\n-4,3,b\n-4,4,acc\n-2,2,b\n-2,2,ccb\n4,1,acc\n-1,0,cc\n\
         -3,1,ba\n-4,3,\n,0,cc\n2,5,\n3,1,ab\n",
    );
    let script = parse_script("t", "x = DIFFERENCE a, b").unwrap();
    let mut results = vec![];
    for fault in [
        None,
        Some(StepFault::Memory(MemoryFault {
            memory: 53611,
            word: 1427001389,
            line: 21,
            cycle: 83,
        })),
    ] {
        let mut cp = rtl_program();
        cp.hm.store(&a).unwrap();
        cp.hm.store(&b).unwrap();
        if let Some(fault) = fault {
            // Step 1 is REST-NE of a against b in U.
            cp.inject(&[InjectedFault { step: 1, fault }]);
        }
        let report = cp.execute(&script[0]).unwrap();
        let hits = cp.engine().take_memory_hits();
        if fault.is_some() {
            assert_eq!(hits.len(), 1);
            assert_eq!(
                (hits[0].memory.as_str(), hits[0].address, hits[0].line),
                ("L-memory", 14, 21),
                "the fault strikes the last word of an L tuple being emitted"
            );
            assert_eq!(report.retries, 1);
        }
        results.push(cp.hm.relation("x").unwrap().tuples);
    }
    assert_eq!(results[0].len(), 5);
    assert_eq!(results[1], results[0]);
}

/// A permanent fault: a data line stuck at 1 on the core's input fails the power-up self
/// check, which says which test failed.
#[test]
fn a_stuck_data_line_fails_the_self_check_and_says_which_test() {
    let mut cp = rtl_program();
    cp.set_permanent_fault(Some(StepFault::Stream(StreamFault {
        site: FaultSite::Input,
        fault: Fault {
            kind: FaultKind::StuckAt1,
            target: 0,
            line: 9,
        },
    })));
    let e = format!("{:#}", cp.self_check().unwrap_err());
    assert!(
        e.starts_with("test 1 (sort of signed keys with nulls)"),
        "{e}"
    );
    assert!(e.contains("still failing after 3 retries"), "{e}");
    // Without the fault the same engine passes.
    cp.set_permanent_fault(None);
    cp.reset();
    cp.self_check().unwrap();
}

#[test]
fn the_model_backend_refuses_a_campaign() {
    let opts = FaultOptions {
        count: 1,
        seed: 1,
        backend: Backend::Model,
        config: EngineConfig::Small,
        memory_count: 0,
        no_permanent: true,
        paper_checks_only: false,
    };
    let e = run_campaign(&opts, |_| {}).unwrap_err().to_string();
    assert!(e.contains("no fault injectors"), "{e}");
}

/// Memory-word experiments: every one strikes a live word of a named memory and is
/// classified (none silent: docs/RELIABILITY.md has 10,000 of them).
#[test]
fn a_short_memory_campaign_on_the_rtl_classifies_every_experiment() {
    let opts = FaultOptions {
        count: 0,
        seed: 5,
        backend: Backend::Rtl,
        config: EngineConfig::Small,
        memory_count: 12,
        no_permanent: true,
        paper_checks_only: false,
    };
    let result = run_campaign(&opts, |_| {}).unwrap();
    assert_eq!(result.memory_experiments.len(), 12);
    let table = result.table();
    assert!(table.contains("12 memory-word experiments"), "{table}");
    let silent = result
        .memory_experiments
        .iter()
        .filter(|e| e.outcome == rdbe_sim::faults::Outcome::Silent)
        .count();
    assert_eq!(silent, 0, "{table}");
    assert!(
        result
            .memory_experiments
            .iter()
            .any(|e| e.outcome == rdbe_sim::faults::Outcome::Recovered),
        "{table}"
    );
    for e in &result.memory_experiments {
        let m = &e.hit.memory;
        assert!(
            m.starts_with("cell_") || m.ends_with("-memory") || m.starts_with("output tuple"),
            "{m}"
        );
    }
    assert_eq!(result.to_json()["memory_experiments"], 12);
}

/// A RESTRICT's condition values sit in U-memory, compared and never output: a flipped
/// key bit of one changes which tuples match. The operation part checks the stored parity
/// of the words it compares, so the unit is retried and the result is right.
#[test]
fn a_corrupted_condition_value_in_u_memory_is_caught_and_retried() {
    let script = parse_script("t", "x = RESTRICT a WHERE k BETWEEN 1 AND 2").unwrap();
    let mut cp = rtl_program();
    cp.hm.store(&nullable()).unwrap();
    cp.step_log = Some(vec![]);
    cp.execute(&script[0]).unwrap();
    let steps = cp.step_log.take().unwrap();
    let clean = cp.hm.relation("x").unwrap().tuples.clone();
    assert_eq!(clean.len(), 2);
    // The last step streams the relation against the bounds LOADed before it; at its
    // first cycle only U-memory holds live words.
    cp.reset();
    cp.hm.store(&nullable()).unwrap();
    cp.inject(&[InjectedFault {
        step: steps.len() as u64 - 1,
        fault: StepFault::Memory(MemoryFault {
            memory: 0,
            word: 0,
            line: 14, // the lower bound's data bit 14
            cycle: 0,
        }),
    }]);
    let report = cp.execute(&script[0]).unwrap();
    let hits = cp.engine().take_memory_hits();
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].memory.as_str(), hits[0].address), ("U-memory", 0));
    assert_eq!(report.retries, 1);
    assert_eq!(cp.hm.relation("x").unwrap().tuples, clean);
}

/// A traced run retries exactly as an untraced one: after a fault the control program
/// restarts the engine (§5.3's retry point, a power-up), and with a VCD open the restart
/// used to be only a clear, so beats left inside the core met the retry (session 10 saw a
/// DIFFERENCE that recovers untraced fail its retries traced). The trace goes on through
/// the restart.
#[test]
fn a_traced_run_retries_exactly_as_an_untraced_one() {
    let r = rdbe_sim::csv_io::parse_csv(
        "r",
        "r",
        "k:u16,v:u16\n5,1\n3,2\n9,3\n1,4\n7,5\n2,6\n8,7\n4,8\n6,9\n0,10\n",
    )
    .unwrap();
    let statement = &parse_script("t", "x = SORT r BY k").unwrap()[0];
    let mut cp = rtl_program();
    cp.hm.store(&r).unwrap();
    cp.step_log = Some(vec![]);
    cp.execute(statement).unwrap();
    let eos = cp.step_log.take().unwrap()[0].input_beats as u32 - 1;
    // The input's end of stream sent twice: the step fails, and the second one waits in
    // the core unless the retry runs on a restarted engine (cleared only, the traced run
    // took 3 retries where the untraced one took 1).
    let fault = InjectedFault::stream(0, FaultSite::Input, FaultKind::Duplicate, eos, 0);
    let vcd = std::env::temp_dir().join(format!("rdbe_retry_trace_{}.vcd", std::process::id()));
    let mut outcomes = vec![];
    for traced in [false, true] {
        let mut cp = rtl_program();
        cp.hm.store(&r).unwrap();
        if traced {
            cp.engine().trace_to(&vcd).unwrap();
        }
        cp.inject(&[fault]);
        let report = cp.execute(statement).unwrap();
        if traced {
            cp.engine().finish_trace(true).unwrap();
        }
        assert_eq!(report.retries, 1, "traced: {traced}");
        outcomes.push((report, cp.hm.relation("x").unwrap()));
    }
    assert_eq!(outcomes[0], outcomes[1]);
    let text = std::fs::read_to_string(&vcd).unwrap();
    assert!(text.contains("$enddefinitions"));
    let _ = std::fs::remove_file(&vcd);
}
