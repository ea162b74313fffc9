use super::*;

#[derive(Default)]
struct Collect(Mutex<Vec<(Stream, String)>>);
impl InvocationSink for Collect {
    fn line(&self, stream: Stream, line: &str) {
        self.0.lock().unwrap().push((stream, line.to_owned()));
    }
}

#[test]
fn splits_lines_across_writes_and_flushes_the_rest() {
    let sink = Arc::new(Collect::default());
    let state = LogState::new(sink.clone(), Arc::new([]));
    state.write(Stream::Stdout, b"hel");
    state.write(Stream::Stderr, b"oops\r\n");
    state.write(Stream::Stdout, b"lo\nwor");
    state.write(Stream::Stdout, b"ld");
    state.flush();
    let lines = sink.0.lock().unwrap().clone();
    assert_eq!(
        lines,
        vec![
            (Stream::Stderr, "oops".to_owned()),
            (Stream::Stdout, "hello".to_owned()),
            (Stream::Stdout, "world".to_owned()),
        ]
    );
}

#[test]
fn output_past_the_cap_is_dropped_with_one_notice() {
    let sink = Arc::new(Collect::default());
    let state = LogState::new(sink.clone(), Arc::new([]));
    let line = vec![b'x'; 1023];
    for _ in 0..2000 {
        state.write(Stream::Stdout, &line);
        state.write(Stream::Stdout, b"\n");
    }
    let lines = sink.0.lock().unwrap();
    let notices = lines.iter().filter(|(s, _)| *s == Stream::Platform).count();
    assert_eq!(notices, 1);
    assert_eq!(lines.len(), 1024 + 1);
}

#[test]
fn a_flood_of_empty_lines_stops_at_the_line_cap() {
    let sink = Arc::new(Collect::default());
    let state = LogState::new(sink.clone(), Arc::new([]));
    // 1 MiB of newlines would be a million records for the log store.
    state.write(Stream::Stdout, &vec![b'\n'; 1 << 20]);
    state.write(Stream::Stderr, b"later\n");
    let lines = sink.0.lock().unwrap();
    let notices: Vec<_> = lines
        .iter()
        .filter(|(s, _)| *s == Stream::Platform)
        .collect();
    assert_eq!(notices.len(), 1);
    assert!(notices[0].1.contains("10000 lines"), "{:?}", notices[0]);
    assert_eq!(lines.len(), MAX_LOG_LINES + 1);
}

#[test]
fn secret_values_are_masked_in_lines() {
    let sink = Arc::new(Collect::default());
    let redact: Arc<[String]> = Arc::new(["sk_live_123".to_owned(), "pa55".to_owned()]);
    let state = LogState::new(sink.clone(), redact);
    state.write(
        Stream::Stdout,
        b"key=sk_live_123 and sk_live_123, pw pa55\n",
    );
    state.write(Stream::Stderr, b"nothing secret\n");
    let lines = sink.0.lock().unwrap().clone();
    assert_eq!(lines[0].1, "key=*** and ***, pw ***");
    assert_eq!(lines[1].1, "nothing secret");
}
