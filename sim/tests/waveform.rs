//! SVG waveform pictures of VCD traces (`rdbe_sim::waveform`): a hand-written VCD, a real
//! rust-hdl trace of a stream slice, and the errors.
use rdbe_rtl::harness::{Harness, Pacing};
use rdbe_rtl::stream_slice::StreamSlice;
use rdbe_rtl::tuple_stream::{to_beats, StreamTuple};
use rdbe_sim::waveform::{self, hex, render_stream_ports, render_svg, Waves};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rdbe_wave_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A VCD as the harness writes it (10 units per cycle): a clock, a stream input's valid and
/// 16-bit data at the top, and a nested block with another `data_in.valid`.
fn small_vcd(path: &Path) {
    use vcd::{TimescaleUnit, Value, Writer};
    let mut w = Writer::new(std::fs::File::create(path).unwrap());
    w.timescale(1, TimescaleUnit::PS).unwrap();
    w.add_module("uut").unwrap();
    let clock = w.add_wire(1, "clock").unwrap();
    w.add_module("data_in").unwrap();
    let valid = w.add_wire(1, "valid").unwrap();
    let data = w.add_wire(16, "word$data").unwrap();
    w.upscope().unwrap();
    w.add_module("core").unwrap();
    w.add_module("data_in").unwrap();
    let inner = w.add_wire(1, "valid").unwrap();
    w.upscope().unwrap();
    w.upscope().unwrap();
    w.upscope().unwrap();
    w.enddefinitions().unwrap();
    let word = |v: u16| -> Vec<Value> { (0..16).rev().map(|i| (v >> i & 1 == 1).into()).collect() };
    w.timestamp(0).unwrap();
    w.change_scalar(clock, false).unwrap();
    w.change_scalar(valid, false).unwrap();
    w.change_scalar(inner, false).unwrap();
    w.change_vector(data, &word(0)).unwrap();
    // Data 0x1234 offered for cycles 2..6, 0xbeef for 6..9, then idle; a short vector
    // (left-extended with zeros) for 0x0005 from cycle 9, unknown (one `x`, extended with
    // x) from cycle 11.
    for cycle in 0..12u64 {
        let t = cycle * 10;
        w.timestamp(t).unwrap();
        match cycle {
            2 => {
                w.change_scalar(valid, true).unwrap();
                w.change_vector(data, &word(0x1234)).unwrap();
            }
            6 => w.change_vector(data, &word(0xbeef)).unwrap(),
            9 => {
                w.change_scalar(valid, false).unwrap();
                w.change_vector(data, &[Value::V1, Value::V0, Value::V1])
                    .unwrap();
            }
            11 => w.change_vector(data, &[Value::X]).unwrap(),
            _ => {}
        }
        w.change_scalar(clock, false).unwrap();
        w.timestamp(t + 5).unwrap();
        w.change_scalar(clock, true).unwrap();
        if cycle == 3 {
            w.change_scalar(inner, true).unwrap();
        }
    }
    w.timestamp(120).unwrap();
}

/// The contents of the picture's `<text>` elements.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

#[test]
fn draws_bits_and_bus_values_of_a_small_vcd() {
    let dir = scratch("small");
    let vcd = dir.join("small.vcd");
    small_vcd(&vcd);
    let svg = dir.join("small.svg");
    let signals = ["clock", "uut.data_in.valid", "uut.data_in.word$data"];
    render_svg(&vcd, &signals, 0..12, &svg).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.trim_start().starts_with("<svg"), "{}", &text[..80]);
    assert!(text.trim_end().ends_with("</svg>"));
    let texts = texts(&text);
    for t in signals
        .iter()
        .chain(&["1234", "beef", "0005", "xxxx", "cycle", "10"])
    {
        assert!(texts.iter().any(|x| x == t), "no {t} in {texts:?}");
    }
    assert!(!dir.join("small.svg.partial").exists());

    // The loaded values: sampled before each rising edge, short vectors left-extended.
    let waves = Waves::load(&vcd, &signals).unwrap();
    let data = waves.get("uut.data_in.word$data").unwrap();
    assert_eq!(data.name, "uut.data_in.word$data");
    assert_eq!(data.width, 16);
    assert_eq!(data.sampled(1), Some(0));
    assert_eq!(data.sampled(2), Some(0x1234));
    assert_eq!(data.sampled(10), Some(5));
    assert_eq!(data.at(110), Some("xxxxxxxxxxxxxxxx"));
    assert_eq!(data.sampled(11), None);
    assert_eq!(waves.end_cycle(), 12);
    assert_eq!(
        waves.first_cycle_where(
            0,
            &[("uut.data_in.valid", 1), ("uut.data_in.word$data", 0xbeef)]
        ),
        Some(6)
    );
    assert_eq!(
        waves.first_cycle_where(9, &[("uut.data_in.valid", 1)]),
        None
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_ambiguous_or_empty_requests_fail_and_write_nothing() {
    let dir = scratch("errors");
    let vcd = dir.join("small.vcd");
    small_vcd(&vcd);
    let svg = dir.join("bad.svg");
    let err = render_svg(&vcd, &["uut.data_in.valid", "no_such_wire"], 0..10, &svg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_wire"), "{err}");
    // An unknown name ending like existing ones lists them as candidates.
    let err = render_svg(&vcd, &["data_out.valid"], 0..10, &svg)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data_out.valid") && err.contains("uut.data_in.valid"),
        "{err}"
    );
    // `data_in.valid` ends two names: top level and the nested block.
    let err = render_svg(&vcd, &["data_in.valid"], 0..10, &svg)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ambiguous")
            && err.contains("uut.data_in.valid")
            && err.contains("uut.core.data_in.valid"),
        "{err}"
    );
    // Windows that are empty or past the end of the trace.
    assert!(render_svg(&vcd, &["clock"], 5..5, &svg).is_err());
    let err = render_svg(&vcd, &["clock"], 50..60, &svg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("after the trace ends"), "{err}");
    // A directory that does not exist: the drawing fails, no partial file stays.
    let missing = dir.join("nowhere").join("x.svg");
    assert!(render_svg(&vcd, &["clock"], 0..10, &missing).is_err());
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("small.vcd")],
        "{left:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hex_digits_mark_unknown_bits() {
    assert_eq!(hex("0001001000110100"), "1234");
    assert_eq!(hex("101"), "5");
    assert_eq!(hex("1x0000001"), "1x1");
    assert_eq!(hex("zzzz"), "z");
}

/// The demo's picture, on a real rust-hdl trace whose top level has the same stream ports
/// as the engine core (a stream slice: one cycle of latency).
#[test]
fn draws_the_stream_ports_of_a_rust_hdl_trace() {
    let dir = scratch("slice");
    let vcd = dir.join("slice.vcd");
    let mut h = Harness::new(StreamSlice::default());
    h.trace_to(&vcd).unwrap();
    // Idle cycles first, so the picture's window starts inside the trace.
    for _ in 0..20 {
        h.cycle();
    }
    let tuples: Vec<_> = (0..12u16)
        .map(|i| StreamTuple::new(vec![0xa000 + i, 0x0b00 + i, 0xc0de], false))
        .collect();
    let run = h.run_stream(&to_beats(&tuples), Pacing::FULL_RATE, 500);
    h.finish_trace();
    assert_eq!(run.output.len(), to_beats(&tuples).len());

    let svg = dir.join("slice.svg");
    let panels = render_stream_ports(&vcd, &svg).unwrap();
    // The slice's output follows its input within a panel: one panel, from a few cycles
    // before the first input word.
    assert_eq!(panels.len(), 1, "{panels:?}");
    let waves = Waves::load(&vcd, waveform::STREAM_PORTS).unwrap();
    let first_in = waves
        .first_cycle_where(0, &[("uut.data_in.valid", 1), ("uut.data_in.word$eos", 0)])
        .unwrap();
    assert!(first_in >= 20, "{first_in}");
    assert_eq!(panels[0].cycles.start, first_in - 4);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.trim_start().starts_with("<svg"));
    let texts = texts(&text);
    for s in waveform::STREAM_PORTS {
        assert!(texts.iter().any(|x| x == s), "no label {s}");
    }
    // Words go in and come out: each written in its one-cycle segment. (Not the first
    // word in: the harness records the inputs of a run's first cycle at its rising edge,
    // so that segment is half a cycle wide.)
    for word in ["a001", "0b00", "c0de", "a00b"] {
        let n = texts.iter().filter(|x| *x == word).count();
        assert!(n >= 2, "{word} drawn {n} times in {texts:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_demo_on_the_model_backend_draws_no_picture() {
    // The RTL demo (which writes `<vcd stem>.svg`) takes minutes: cli.rs runs it. The model
    // backend has no signals, so it writes neither file.
    let dir = scratch("demo_model");
    let vcd = dir.join("demo.vcd");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rdbe"))
        .args(["demo", "--backend", "model", "--vcd", vcd.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!vcd.exists() && !dir.join("demo.svg").exists());
    assert!(!dir.join("demo-verilog").exists(), "no Verilog: no RTL ran");
    let _ = std::fs::remove_dir_all(&dir);
}
