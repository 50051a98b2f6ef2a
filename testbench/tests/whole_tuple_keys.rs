//! Whole-tuple keys in the merger: the set operations (UNION, INTERSECTION, DIFFERENCE,
//! EQUAL, CONTAIN, UNIQUE) compare whole tuples, tag word included, so the key is as long
//! as the tuple (`MergerConfig::validate` allows `key_words == tuple_words`). The RTL merger
//! must equal the model for such keys under random handshakes.
use rand::Rng;
use rdbe_rtl::harness::{Harness, Pacing};
use rdbe_rtl::in_module::KeyType;
use rdbe_rtl::merger::{MergerCommand, MergerConfig, MergerSettings, MergerSmall};
use rdbe_rtl::output_control_part::{OutputSettings, SideFormat};
use rdbe_rtl::sorting_cell::model::sort_order;
use rdbe_rtl::sorting_checker::{sorting_checker_model, CheckerConfig};
use rdbe_rtl::tuple_stream::{split_tuples, to_beats, StreamTuple};
use rdbe_testbench::seeded;

fn rel(rng: &mut impl Rng, n: usize) -> Vec<StreamTuple> {
    let mut t: Vec<StreamTuple> = (0..n)
        .map(|_| {
            StreamTuple::new(
                vec![
                    rng.gen_range(0..3),
                    rng.gen_range(0..3),
                    rng.gen_range(0..2),
                ],
                false,
            )
        })
        .collect();
    t.sort_by(|a, b| sort_order(a, b, 3, false));
    sorting_checker_model(
        &CheckerConfig {
            tuple_words: 3,
            key_words: 3,
            descending: false,
        },
        &t,
    )
    .tuples
}

#[test]
fn whole_tuple_keys_in_the_rtl_merger_equal_the_model() {
    let mut rng = seeded(5);
    let mut h = Harness::new(MergerSmall::default());
    for round in 0..40 {
        for command in [
            MergerCommand::UnqEx,
            MergerCommand::RestEq,
            MergerCommand::RestNe,
            MergerCommand::SortEx,
            MergerCommand::Pass2,
            MergerCommand::JoinEq,
        ] {
            let nu = rng.gen_range(0..12);
            let u = rel(&mut rng, nu);
            let nl = rng.gen_range(0..12);
            let l = rel(&mut rng, nl);
            let mut cfg = MergerConfig {
                command: MergerCommand::Load,
                delete: false,
                settings: MergerSettings {
                    key_words: 3,
                    descending: false,
                    second_offset: 0,
                    second_null_bit: None,
                    second_type: KeyType::Unsigned,
                    u_partial: false,
                },
                tuple_words: 3,
                output: OutputSettings {
                    u: SideFormat::unrotated(3),
                    l: SideFormat::unrotated(3),
                    new_tid: false,
                    tid_base: 0,
                },
            };
            let set = |h: &mut Harness<MergerSmall>, cfg: &MergerConfig| {
                h.uut.settings.next = cfg.command_settings();
                h.uut.u_format.next = cfg.output.u.to_bits();
                h.uut.l_format.next = cfg.output.l.to_bits();
                h.uut.new_tid.next = false;
                h.uut.clear.next = false;
            };
            set(&mut h, &cfg);
            h.run_stream(&to_beats(&u), Pacing::FULL_RATE, 20_000);
            cfg.command = command;
            set(&mut h, &cfg);
            let pacing = Pacing {
                source_duty: 0.7,
                sink_duty: 0.7,
                seed: round,
            };
            let got = split_tuples(&h.run_stream(&to_beats(&l), pacing, 40_000).output);
            let want = cfg.model(&u, &l).unwrap();
            assert!(!h.uut.command_error.val() && !h.uut.l_overflow.val());
            assert_eq!(got, want, "{} round {round}", command.name());
        }
    }
}
