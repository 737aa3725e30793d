//! Fuzz target `pack`: `Pack::new_checked` never panics, and every pack that parses is what
//! `PackWriter` makes of its records (`totem_proto::fuzzing::fuzz_pack`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| totem_proto::fuzzing::fuzz_pack(data));
