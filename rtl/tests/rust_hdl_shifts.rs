//! The vendored rust-hdl-core (vendor/README.md) shifts words of up to 32 bits in native
//! arithmetic instead of through big integers. Its own unit tests compare against big
//! integers; this checks the same in the workspace's suite, against `u64` arithmetic, for
//! the widths the RTL uses, every shift amount up to past the word, and the part-selects
//! (`get_bits`) built on the shift.
use rust_hdl::prelude::*;

fn check_width<const N: usize>() {
    let mask: u64 = if N == 64 { !0 } else { (1u64 << N) - 1 };
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let value = x & mask;
        let word: Bits<N> = value.into();
        for shift in 0..=(N as u64 + 8) {
            let right = if shift >= 64 { 0 } else { value >> shift };
            let left = if shift >= 64 {
                0
            } else {
                (value << shift) & mask
            };
            assert_eq!(
                (word >> shift).to_u64(),
                right,
                "Bits<{N}> {value:#x} >> {shift}"
            );
            assert_eq!(
                (word << shift).to_u64(),
                left,
                "Bits<{N}> {value:#x} << {shift}"
            );
        }
        for index in 0..N {
            let four = (value >> index) & 0xf;
            assert_eq!(
                word.get_bits::<4>(index).to_u64(),
                four,
                "Bits<{N}> {value:#x}[{index}+:4]"
            );
        }
    }
}

#[test]
fn shifts_and_part_selects_match_integer_arithmetic() {
    check_width::<1>();
    check_width::<5>();
    check_width::<12>();
    check_width::<16>();
    check_width::<18>();
    check_width::<31>();
    check_width::<32>();
    // Over 32 bits rust-hdl keeps a bit array (unchanged by the patch): the same answers.
    check_width::<33>();
    check_width::<61>();
}
