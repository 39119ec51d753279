//! HTTP/1.1 responses from servers the client does not control: decode whatever
//! arrives, in whatever pieces, never panic, and give the same answer however
//! the bytes were split.
#![no_main]

use cnibench_worker::engine::h1::{Decoder, Error, Event};
use libfuzzer_sys::fuzz_target;

/// Each response's (status, close, body length), decoding `pieces` as a
/// connection receives them, one after the other, then its end.
fn decode(pieces: &[&[u8]]) -> Result<Vec<(u16, bool, u64)>, Error> {
    let mut dec = Decoder::new();
    let (mut buf, mut at) = (Vec::new(), 0);
    let (mut out, mut head, mut body) = (Vec::new(), None, 0u64);
    let mut next = pieces.iter();
    loop {
        let s = dec.decode(&buf[at..])?;
        assert!(s.consumed <= buf.len() - at, "consumed more than given");
        at += s.consumed;
        match s.event {
            Event::Head(h) => assert!(head.replace(h).is_none(), "two heads"),
            Event::Body(n) => {
                assert!(n > 0 && n <= s.consumed, "{s:?}");
                body += n as u64;
            }
            Event::Done => {
                let h = head.take().expect("a head before the end");
                out.push((h.status.as_u16(), h.close, std::mem::take(&mut body)));
            }
            Event::NeedMore => match next.next() {
                Some(p) => buf.extend_from_slice(p),
                None => {
                    dec.eof()?;
                    let h = head.take().expect("a head before a close-delimited end");
                    out.push((h.status.as_u16(), h.close, body));
                    return Ok(out);
                }
            },
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte picks a split point.
    let (cut, rest) = match data.split_first() {
        Some((c, r)) => (*c as usize % (r.len() + 1), r),
        None => return,
    };
    let whole = decode(&[rest]);
    let (a, b) = rest.split_at(cut);
    assert_eq!(decode(&[a, b]), whole, "split at {cut}");
    if rest.len() <= 4096 {
        let bytes: Vec<&[u8]> = rest.chunks(1).collect();
        assert_eq!(decode(&bytes), whole, "byte by byte");
    }
});
