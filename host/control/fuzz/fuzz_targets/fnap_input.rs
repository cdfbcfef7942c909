//! Feeds arbitrary client input to the FNAP protocol layer: the line
//! reader (split at arbitrary points), the command parser, the lines of a
//! relay and the SASL message parsers. Checks that splitting never changes
//! the lines, that no line exceeds the limit, that relay lines parse back
//! to what they encode, and that nothing panics.
#![no_main]

use fnaa_control::fnap::relay::{ClientLine, ServerLine};
use fnaa_control::fnap::{Command, Line, LineReader, Reply};
use fnaa_control::sasl::{self, plain, scram};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 256;

fn lines(input: &[u8], chunk: usize) -> Vec<Line> {
    let mut reader = LineReader::new(MAX);
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        reader.push(piece);
        while let Some(line) = reader.next_line() {
            out.push(line);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let whole = lines(input, input.len().max(1));
    let split = lines(input, usize::from(chunk % 17) + 1);
    assert_eq!(whole, split, "splitting the input changed the lines");
    for line in whole {
        let Line::Text(text) = line else { continue };
        assert!(text.len() <= MAX);
        match Command::parse(&text) {
            Ok(command) => {
                let _ = command.verb();
            }
            Err(error) => {
                // Every error has a reply, and a reply is one line.
                let encoded = Reply::from(&error).encode();
                assert_eq!(encoded.iter().filter(|&&b| b == b'\n').count(), 1);
            }
        }
        for parsed in [
            ClientLine::parse(&text).map(|l| l.encode()),
            ServerLine::parse(&text).map(|l| l.encode()),
        ]
        .into_iter()
        .flatten()
        {
            let again = parsed.trim_end_matches("\r\n");
            let round_trip = ClientLine::parse(again)
                .map(|l| l.encode())
                .or_else(|_| ServerLine::parse(again).map(|l| l.encode()));
            assert_eq!(round_trip.as_ref(), Ok(&parsed), "{text:?}");
        }
        if let Ok(message) = sasl::decode(&text) {
            let _ = plain::parse(&message);
            if let Ok(first) = scram::ClientFirst::parse(&message) {
                let keys = scram::derive_keys("pencil", b"salt", scram::MIN_ITERATIONS);
                let (exchange, _) = scram::ServerExchange::start(first, keys);
                let _ = exchange.finish(&message);
            }
        }
    }
});
