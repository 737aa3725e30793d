//! Fuzz target `frame`: `Frame::parse` never panics, and every frame that parses re-emits to
//! exactly its input (`totem_proto::fuzzing::fuzz_frame`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| totem_proto::fuzzing::fuzz_frame(data));
