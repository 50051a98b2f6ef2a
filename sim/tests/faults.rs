//! The fault campaign (`rdbe faults`, issue 7) on the rust-hdl simulation: short runs of
//! the same code the 10,000-experiment campaign in docs/RELIABILITY.md runs on Verilator.
use rdbe_rtl::fault_injector::{Fault, FaultKind, FaultSite, StreamFault};
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
    let fault = InjectedFault {
        step: 0,
        fault: StepFault::Stream(StreamFault {
            site: FaultSite::Sorted,
            fault: Fault {
                kind: FaultKind::FlipNull,
                // The first tuple's first word (k = 1): the merger reads NL with it.
                target: 0,
                line: 0,
            },
        }),
    };
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
        no_permanent: true,
        paper_checks_only: false,
    };
    let e = run_campaign(&opts, |_| {}).unwrap_err().to_string();
    assert!(e.contains("no fault injectors"), "{e}");
}
