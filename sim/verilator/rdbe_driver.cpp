// Driver for the Verilated RDBE top (`SmallRdbe` or `DeltaRdbe`, exported by rust-hdl,
// its flip-flops clocked on both edges: `on_both_edges` in sim/src/verilator_backend.rs).
// The Rust side starts this program once and speaks a binary protocol with it over
// stdin/stdout; every clock cycle is driven here as rust-hdl's `Harness` drives the same
// top (rtl/src/harness.rs, `cycle` and `run_with`; rtl/src/rdbe_top.rs, `write_register`
// and `read_register`), so cycle counts and outputs are identical to the `rtl` backend's.
//
// A cycle is one toggle of the clock and one evaluation. No output of the top depends on
// its inputs within a cycle (the handshakes out, hm_stop and the register read data come
// from flip-flops and from logic on flip-flops and internal signals only), so the outputs
// the harness samples after settling a cycle's inputs are already there after the
// previous edge: the driver samples them, then sets the inputs, then toggles the clock.
//
// Protocol (all integers little-endian):
//   start-up       -> 'H' u32 PROTOCOL_VERSION
//   'W' u32 n, n x (u8 addr, u16 data)
//                  one register write per cycle -> 'K' u64 cycles
//   'R' u32 n, n x u8 addr
//                  one registered read per cycle -> 'K' u64 cycles, n x u16
//   'I' u32 n      n idle clock cycles (inputs unchanged) -> 'K' u64 cycles
//   'S' u32 n, u64 max_cycles, u64 pause_at, n x u32 packed beat (22 bits: data 15:0,
//                  parity 17:16, null 18, dup 19, last 20, eos 21)
//                  stream the beats (source always offers, sink always ready, the source
//                  stops when the top raises hm_stop) until the end-of-stream beat leaves,
//                  at most max_cycles cycles
//                  -> 'K' (done) or 'T' (max_cycles reached), u64 cycles, u64 stream
//                     cycles, u32 beats taken, u32 n_out, n_out x u32 packed beat
//                  If the stream is still running after the clock edge of its cycle
//                  pause_at (counted from 0, as `Harness::run_stream_with` counts), it
//                  pauses there first -> 'P' u64 cycles, and serves these requests until
//                  'c' (test equipment acting between cycles: a memory-word fault):
//                    'g' u16 len, name        -> 'K' u64 value of that signal (<= 64 bits)
//                    'f' u16 len, name, u32 index, u32 bit
//                                             -> 'K': bit `bit` of word `index` of that
//                                                array inverted
//                    'c'                      the stream goes on (no reply of its own)
//                  A failed 'g' or 'f' answers 'E' u16 len, message. Names are
//                  hierarchical Verilog names ("top.engine_core.merger.memory_u.mem0");
//                  only a model built with RDBE_VPI defined (Verilator's --vpi, the
//                  signals public) can answer them.
//   'X'            a fresh model (power-up state) -> 'K' u64 cycles (0)
//   'Q'            exit
// "cycles" is the number of clock cycles (edges of the toggled clock) since the model was
// created.
// Anything else, or a short read, ends the program with a message on stderr and exit
// status 2.
#include "Vtop.h"
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#ifdef RDBE_VPI
#include "verilated_vpi.h"
#endif

static const uint32_t PROTOCOL_VERSION = 2;

// Port names as Verilator mangles rust-hdl's `$` separators.
#define IN_WORD data_in__024word
#define IN_VALID data_in__024valid
#define IN_READY data_in__024ready
#define OUT_WORD data_out__024word
#define OUT_VALID data_out__024valid
#define OUT_READY data_out__024ready

static const uint32_t EOS_BIT = 1u << 21;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "rdbe_driver: %s\n", what);
    std::exit(2);
}

void read_exact(void* buffer, size_t n) {
    if (n != 0 && std::fread(buffer, 1, n, stdin) != n) fail("short read on stdin");
}

uint8_t read_u8() {
    uint8_t v;
    read_exact(&v, 1);
    return v;
}

uint16_t read_u16() {
    uint8_t b[2];
    read_exact(b, 2);
    return uint16_t(b[0] | b[1] << 8);
}

uint32_t read_u32() {
    uint8_t b[4];
    read_exact(b, 4);
    return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}

uint64_t read_u64() {
    uint64_t lo = read_u32();
    uint64_t hi = read_u32();
    return lo | hi << 32;
}

std::vector<uint8_t> out_buffer;

void put_u8(uint8_t v) { out_buffer.push_back(v); }
void put_u16(uint16_t v) {
    out_buffer.push_back(uint8_t(v));
    out_buffer.push_back(uint8_t(v >> 8));
}
void put_u32(uint32_t v) {
    for (int i = 0; i < 4; i++) out_buffer.push_back(uint8_t(v >> (8 * i)));
}
void put_u64(uint64_t v) {
    for (int i = 0; i < 8; i++) out_buffer.push_back(uint8_t(v >> (8 * i)));
}
void flush_reply() {
    if (!out_buffer.empty() &&
        std::fwrite(out_buffer.data(), 1, out_buffer.size(), stdout) != out_buffer.size())
        fail("write to stdout failed");
    if (std::fflush(stdout) != 0) fail("flush of stdout failed");
    out_buffer.clear();
}

std::string read_name() {
    const uint16_t length = read_u16();
    std::string name(length, '\0');
    read_exact(&name[0], length);
    return name;
}

#ifdef RDBE_VPI
// The signal or array named `name`, or null with `error` set.
vpiHandle find(const std::string& name, std::string& error) {
    vpiHandle h = vpi_handle_by_name(const_cast<PLI_BYTE8*>(name.c_str()), nullptr);
    if (!h) error = "the model has no public signal " + name;
    return h;
}

bool peek_signal(const std::string& name, uint64_t& value, std::string& error) {
    vpiHandle h = find(name, error);
    if (!h) return false;
    const int size = vpi_get(vpiSize, h);
    if (size < 1 || size > 64) {
        error = name + " is " + std::to_string(size) + " bits wide, not 1 to 64";
        vpi_release_handle(h);
        return false;
    }
    s_vpi_value v;
    v.format = vpiVectorVal;
    vpi_get_value(h, &v);
    value = uint32_t(v.value.vector[0].aval);
    if (size > 32) value |= uint64_t(uint32_t(v.value.vector[1].aval)) << 32;
    vpi_release_handle(h);
    return true;
}

bool flip_bit(const std::string& name, uint32_t index, uint32_t bit, std::string& error) {
    vpiHandle array = find(name, error);
    if (!array) return false;
    vpiHandle word = vpi_handle_by_index(array, PLI_INT32(index));
    vpi_release_handle(array);
    if (!word) {
        error = name + " has no word " + std::to_string(index);
        return false;
    }
    const int size = vpi_get(vpiSize, word);
    if (bit >= uint32_t(size)) {
        error = name + " has " + std::to_string(size) + "-bit words: no bit " +
                std::to_string(bit);
        vpi_release_handle(word);
        return false;
    }
    s_vpi_value v;
    v.format = vpiVectorVal;
    vpi_get_value(word, &v);
    // The value's storage belongs to the library until the next call: copy it first.
    std::vector<s_vpi_vecval> vector(v.value.vector, v.value.vector + (size + 31) / 32);
    vector[bit / 32].aval ^= PLI_INT32(1u << (bit % 32));
    v.value.vector = vector.data();
    vpi_put_value(word, &v, nullptr, vpiNoDelay);
    s_vpi_error_info info;
    const bool failed = vpi_chk_error(&info) != 0;
    if (failed) error = std::string("writing ") + name + ": " + info.message;
    vpi_release_handle(word);
    return !failed;
}
#else
const char* const NO_VPI =
    "this model was built without access to its signals (build it with RDBE_VPI)";
bool peek_signal(const std::string&, uint64_t&, std::string& error) {
    error = NO_VPI;
    return false;
}
bool flip_bit(const std::string&, uint32_t, uint32_t, std::string& error) {
    error = NO_VPI;
    return false;
}
#endif

void put_error(const std::string& message) {
    put_u8('E');
    const uint16_t length = uint16_t(std::min<size_t>(message.size(), 0xffff));
    put_u16(length);
    out_buffer.insert(out_buffer.end(), message.begin(), message.begin() + length);
}

// A stream paused after a clock edge: serve 'g' and 'f' until 'c'.
void serve_pause(uint64_t cycles) {
    put_u8('P');
    put_u64(cycles);
    flush_reply();
    for (;;) {
        const uint8_t op = read_u8();
        if (op == 'c') return;
        std::string error;
        if (op == 'g') {
            const std::string name = read_name();
            uint64_t value = 0;
            if (peek_signal(name, value, error)) {
                put_u8('K');
                put_u64(value);
            } else {
                put_error(error);
            }
        } else if (op == 'f') {
            const std::string name = read_name();
            const uint32_t index = read_u32();
            const uint32_t bit = read_u32();
            if (flip_bit(name, index, bit, error)) {
                put_u8('K');
            } else {
                put_error(error);
            }
        } else {
            char message[64];
            std::snprintf(message, sizeof message, "unknown request byte 0x%02x in a pause", op);
            fail(message);
        }
        flush_reply();
    }
}

struct Sim {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vtop> top;
    uint64_t cycles = 0;

    // `Harness::new`: every input low (rust-hdl's defaults), settled.
    void power_up() {
        top.reset();
        context.reset(new VerilatedContext);
        top.reset(new Vtop{context.get()});
        cycles = 0;
        top->clock = 0;
        top->IN_WORD = 0;
        top->IN_VALID = 0;
        top->OUT_READY = 0;
        top->reg_address = 0;
        top->reg_write_data = 0;
        top->reg_write = 0;
        top->eval();
    }

    // `Harness::cycle`: the inputs as set, one clock edge (the clock toggles: the model acts
    // on both edges), evaluated once.
    void cycle() {
        top->clock = !top->clock;
        top->eval();
        cycles++;
    }

    // `rdbe_top::write_register`: one cycle with the write strobe, then the strobe and the
    // data low again (the address stays, as `set_register_write(addr, 0, false)` leaves it).
    void write_register(uint8_t address, uint16_t data) {
        top->reg_address = address;
        top->reg_write_data = data;
        top->reg_write = 1;
        cycle();
        top->reg_write_data = 0;
        top->reg_write = 0;
    }

    // `rdbe_top::read_register`: address the register for one cycle, sample after it.
    uint16_t read_register(uint8_t address) {
        top->reg_address = address;
        top->reg_write_data = 0;
        top->reg_write = 0;
        cycle();
        return uint16_t(top->reg_read_data);
    }
};

// `Harness::run_with` at full rate: per cycle drive the source's beat and the sink's ready,
// sample both handshakes and hm_stop (the harness samples them after settling the inputs;
// here they are sampled first, since none depends on the inputs), clock edge. The input
// word keeps its last value while the source offers nothing (the harness sets it only when
// it offers).
void stream(Sim& sim) {
    const uint32_t n = read_u32();
    const uint64_t max_cycles = read_u64();
    const uint64_t pause_at = read_u64();
    // One read for the whole stream (a read per beat was 2 % of a run's time).
    std::vector<uint8_t> raw(size_t(n) * 4);
    read_exact(raw.data(), raw.size());
    std::vector<uint32_t> beats(n);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t* b = &raw[size_t(i) * 4];
        beats[i] = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 |
                   uint32_t(b[3]) << 24;
    }
    std::vector<uint32_t> output;
    output.reserve(n);
    Vtop* top = sim.top.get();
    uint32_t next_in = 0;
    bool stopped = false;
    bool done = false;
    uint64_t cycle = 0;
    for (; cycle < max_cycles; cycle++) {
        const bool offer = !stopped && next_in < n;
        // The handshakes and hm_stop as the last edge left them: what settling this
        // cycle's inputs would show (see the top of this file).
        const bool in_fire = offer && top->IN_READY;
        if (top->hm_stop) stopped = true;
        const bool out_fire = top->OUT_VALID;
        const uint32_t out_word = top->OUT_WORD;
        top->IN_VALID = offer;
        if (offer) top->IN_WORD = beats[next_in];
        top->OUT_READY = 1;
        sim.cycle();
        if (cycle == pause_at) {
            serve_pause(sim.cycles);
            // A flipped memory bit reaches nothing before the next edge (the memories
            // read through a register), but settle anyway: one evaluation, no edge.
            top->eval();
        }
        if (in_fire) next_in++;
        if (out_fire) {
            output.push_back(out_word);
            if (out_word & EOS_BIT) {
                top->IN_VALID = 0;
                top->OUT_READY = 0;
                top->eval();
                done = true;
                cycle++;
                break;
            }
        }
    }
    put_u8(done ? 'K' : 'T');
    put_u64(sim.cycles);
    put_u64(cycle);
    put_u32(next_in);
    put_u32(uint32_t(output.size()));
    for (uint32_t w : output) put_u32(w);
}

}  // namespace

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    static char in_buffer[1 << 16];
    std::setvbuf(stdin, in_buffer, _IOFBF, sizeof in_buffer);
    Sim sim;
    sim.power_up();
    put_u8('H');
    put_u32(PROTOCOL_VERSION);
    flush_reply();
    for (;;) {
        int op = std::fgetc(stdin);
        if (op == EOF || op == 'Q') break;
        switch (op) {
            case 'W': {
                const uint32_t n = read_u32();
                for (uint32_t i = 0; i < n; i++) {
                    const uint8_t address = read_u8();
                    const uint16_t data = read_u16();
                    sim.write_register(address, data);
                }
                put_u8('K');
                put_u64(sim.cycles);
                break;
            }
            case 'R': {
                const uint32_t n = read_u32();
                std::vector<uint16_t> values(n);
                for (uint32_t i = 0; i < n; i++) values[i] = sim.read_register(read_u8());
                put_u8('K');
                put_u64(sim.cycles);
                for (uint16_t v : values) put_u16(v);
                break;
            }
            case 'I': {
                const uint32_t n = read_u32();
                for (uint32_t i = 0; i < n; i++) sim.cycle();
                put_u8('K');
                put_u64(sim.cycles);
                break;
            }
            case 'S':
                stream(sim);
                break;
            case 'X':
                sim.power_up();
                put_u8('K');
                put_u64(sim.cycles);
                break;
            default: {
                char message[64];
                std::snprintf(message, sizeof message, "unknown request byte 0x%02x", op);
                fail(message);
            }
        }
        flush_reply();
    }
    sim.top->final();
    return 0;
}
