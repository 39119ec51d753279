//! Histograms inside interval reports from workers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cnibench_proto::hist::decode(data);
});
