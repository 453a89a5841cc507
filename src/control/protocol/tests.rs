use super::*;
use proptest::prelude::*;

fn decode(line: &str) -> Result<Request, ErrorResponse> {
    decode_request(line.as_bytes())
}

fn error_of(line: &str) -> (Option<u64>, ErrorKind, String) {
    match decode(line) {
        Ok(request) => panic!("{line} decoded as {request:?}"),
        Err(ErrorResponse { id, error }) => (id, error.kind, error.message),
    }
}

#[test]
fn decodes_every_command() {
    let cases = [
        (
            r#"{"v":1,"id":7,"cmd":"status"}"#,
            Command::Status(StatusArgs::default()),
        ),
        (
            r#"{"v":1,"id":7,"cmd":"status","args":{"names":["api","web.2"]}}"#,
            Command::Status(StatusArgs {
                names: vec!["api".into(), "web.2".into()],
            }),
        ),
        (
            r#"{"v":1,"id":7,"cmd":"stop","args":{"name":"api"}}"#,
            Command::Stop(NameArgs { name: "api".into() }),
        ),
        (
            r#"{"v":1,"id":7,"cmd":"signal","args":{"name":"api","signal":"sighup"}}"#,
            Command::Signal(SignalArgs {
                name: "api".into(),
                signal: SignalArg::Name("sighup".into()),
            }),
        ),
        (
            r#"{"v":1,"id":7,"cmd":"signal","args":{"name":"api","signal":10}}"#,
            Command::Signal(SignalArgs {
                name: "api".into(),
                signal: SignalArg::Number(10),
            }),
        ),
        (
            r#"{"v":1,"id":7,"cmd":"logs","args":{"names":["api"],"lines":5,"follow":true}}"#,
            Command::Logs(LogsArgs {
                names: vec!["api".into()],
                lines: Some(5),
                follow: true,
            }),
        ),
        (
            r#"{"v":1,"id":7,"cmd":"events","args":{"follow":true,"last":50}}"#,
            Command::Events(EventsArgs {
                follow: true,
                last: Some(50),
            }),
        ),
        (
            r#"{"v":1,"id":7,"cmd":"reload","args":{"dry_run":true}}"#,
            Command::Reload(ReloadArgs { dry_run: true }),
        ),
        (
            r#"{"v":1,"id":7,"cmd":"shutdown","args":{}}"#,
            Command::Shutdown,
        ),
    ];
    for (line, command) in cases {
        let request = decode(line).unwrap_or_else(|error| panic!("{line}: {error:?}"));
        assert_eq!(request, Request::new(7, command), "{line}");
    }
}

#[test]
fn a_request_survives_encoding_and_decoding() {
    let request = Request::new(
        u64::MAX,
        Command::Logs(LogsArgs {
            names: vec!["web".into()],
            lines: None,
            follow: true,
        }),
    );
    let line = request.to_line();
    assert!(line.ends_with(b"\n"));
    assert_eq!(decode_request(&line), Ok(request));
    let shutdown = Request::new(1, Command::Shutdown);
    assert_eq!(
        String::from_utf8(shutdown.to_line()).unwrap(),
        "{\"v\":1,\"id\":1,\"cmd\":\"shutdown\"}\n"
    );
    assert_eq!(decode_request(&shutdown.to_line()), Ok(shutdown));
}

#[test]
fn errors_name_what_is_wrong_and_keep_the_id_once_read() {
    let (id, kind, message) = error_of("{not json");
    assert_eq!((id, kind), (None, ErrorKind::BadRequest));
    assert!(message.contains("not valid JSON"), "{message}");

    assert_eq!(error_of("[1,2]").1, ErrorKind::BadRequest);
    assert_eq!(error_of(r#"{"v":1,"cmd":"status"}"#).2, "missing \"id\"");
    assert_eq!(error_of(r#"{"v":1,"id":-1,"cmd":"status"}"#).0, None);

    let (id, kind, message) = error_of(r#"{"v":2,"id":3,"cmd":"status"}"#);
    assert_eq!((id, kind), (Some(3), ErrorKind::UnsupportedVersion));
    assert!(message.contains("version 2"), "{message}");

    let (id, kind, message) = error_of(r#"{"v":1,"id":4,"cmd":"frobnicate"}"#);
    assert_eq!((id, kind), (Some(4), ErrorKind::UnknownCommand));
    assert!(message.contains("\"frobnicate\""), "{message}");

    let (id, kind, message) = error_of(r#"{"v":1,"id":5,"cmd":"stop","args":{"nme":"api"}}"#);
    assert_eq!((id, kind), (Some(5), ErrorKind::BadRequest));
    assert!(
        message.starts_with("args of stop: unknown field `nme`"),
        "{message}"
    );

    let (_, kind, message) =
        error_of(r#"{"v":1,"id":6,"cmd":"signal","args":{"name":"api","signal":"HUPP"}}"#);
    assert_eq!(kind, ErrorKind::BadRequest);
    assert_eq!(message, "args of signal: no signal named \"HUPP\"");
    let (_, _, message) =
        error_of(r#"{"v":1,"id":6,"cmd":"signal","args":{"name":"api","signal":0}}"#);
    assert_eq!(message, "args of signal: no signal numbered 0");

    let (_, _, message) = error_of(r#"{"v":1,"id":8,"cmd":"status","extra":1}"#);
    assert!(message.contains("\"extra\""), "{message}");
    let (_, _, message) = error_of(r#"{"v":1,"id":9,"cmd":"start","args":{"name":""}}"#);
    assert_eq!(message, "args of start: \"name\" is empty");
    // Regression: an empty name in a list was looked up and answered unknown_name.
    for cmd in ["status", "logs"] {
        let (_, kind, message) = error_of(&format!(
            r#"{{"v":1,"id":9,"cmd":"{cmd}","args":{{"names":["api",""]}}}}"#
        ));
        assert_eq!(kind, ErrorKind::BadRequest, "{cmd}");
        assert_eq!(
            message,
            format!("args of {cmd}: \"names\" holds an empty name")
        );
    }
    let (_, _, message) = error_of(r#"{"v":1,"id":9,"cmd":"shutdown","args":{"now":true}}"#);
    assert!(message.contains("unknown field `now`"), "{message}");
}

#[test]
fn an_over_long_line_is_refused_before_parsing() {
    let mut line = br#"{"v":1,"id":1,"cmd":"status","args":{"names":[""#.to_vec();
    line.resize(MAX_LINE + 10, b'a');
    let (id, kind) = match decode_request(&line) {
        Err(ErrorResponse { id, error }) => (id, error.kind),
        Ok(_) => panic!("decoded"),
    };
    assert_eq!((id, kind), (None, ErrorKind::BadRequest));
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let line = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(error_of(&line).1, ErrorKind::BadRequest);
}

#[test]
fn responses_have_one_form_each_and_parse_back() {
    let lines = [
        (
            Response::ok(
                1,
                DoneResult {
                    done: true,
                    affected: vec!["api".into()],
                },
            ),
            r#"{"v":1,"id":1,"ok":true,"result":{"done":true,"affected":["api"]}}"#,
        ),
        (
            Response::error(None, Error::new(ErrorKind::BadRequest, "x")),
            r#"{"v":1,"id":null,"ok":false,"error":{"kind":"bad_request","message":"x"}}"#,
        ),
        (
            Response::item(2, serde_json::json!({"a":1})),
            r#"{"v":1,"id":2,"item":{"a":1}}"#,
        ),
        (
            Response::end(2, "too_slow"),
            r#"{"v":1,"id":2,"end":true,"reason":"too_slow"}"#,
        ),
    ];
    for (response, expected) in lines {
        let line = response.to_line();
        assert_eq!(
            String::from_utf8(line.clone()).unwrap(),
            format!("{expected}\n")
        );
        assert_eq!(Response::from_line(&line), Ok(response));
    }
    assert!(Response::from_line(br#"{"v":1,"id":1,"ok":true,"item":{}}"#).is_err());
    // A kind this client does not know still parses.
    let newer = Response::from_line(
        br#"{"v":1,"id":1,"ok":false,"error":{"kind":"brand_new","message":"m"}}"#,
    )
    .unwrap();
    assert!(matches!(
        newer.body,
        Body::Error(Error {
            kind: ErrorKind::Other,
            ..
        })
    ));
}

#[test]
fn the_default_socket_path_picks_by_variable_then_uid() {
    let some = |text: &str| Some(OsString::from(text));
    let system = PathBuf::from("/run/minder/control.sock");
    assert_eq!(
        socket_path_from(some("/tmp/x.sock"), true, some("/run/user/1")),
        PathBuf::from("/tmp/x.sock")
    );
    assert_eq!(socket_path_from(some(""), true, None), system);
    assert_eq!(socket_path_from(None, true, some("/run/user/1")), system);
    assert_eq!(
        socket_path_from(None, false, some("/run/user/1")),
        PathBuf::from("/run/user/1/minder/control.sock")
    );
    assert_eq!(socket_path_from(None, false, some("")), system);
    assert_eq!(socket_path_from(None, false, None), system);
}

/// A valid request to mangle.
fn request_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"v":1,"id":7,"cmd":"status","args":{"names":["api","web.2"]}}"#.to_string()),
        Just(r#"{"v":1,"id":7,"cmd":"signal","args":{"name":"api","signal":"HUP"}}"#.to_string()),
        Just(
            r#"{"v":1,"id":7,"cmd":"logs","args":{"names":["a"],"lines":3,"follow":true}}"#
                .to_string()
        ),
        Just(r#"{"v":1,"id":7,"cmd":"events","args":{"follow":false,"last":2}}"#.to_string()),
        Just(r#"{"v":1,"id":7,"cmd":"shutdown"}"#.to_string()),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(&bytes);
    }

    #[test]
    fn mangled_requests_never_panic_the_decoder(
        request in request_strategy(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = request.into_bytes();
        for (at, byte, how) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let index = at.index(bytes.len());
            match how {
                0 => bytes[index] = byte,
                1 => { bytes.remove(index); }
                _ => bytes.insert(index, byte),
            }
        }
        match decode_request(&bytes) {
            Ok(request) => {
                // Whatever decodes encodes back to the same request.
                prop_assert_eq!(decode_request(&request.to_line()), Ok(request));
            }
            Err(error) => prop_assert!(!error.error.message.is_empty()),
        }
    }

    #[test]
    fn json_values_of_any_shape_never_panic_the_decoder(
        id in any::<i64>(), v in any::<i64>(), cmd in "[a-z]{0,9}", names in proptest::collection::vec(".{0,4}", 0..3),
        signal in any::<i64>(), lines in any::<i64>(),
    ) {
        let line = serde_json::json!({
            "v": v, "id": id, "cmd": cmd,
            "args": {"names": names, "name": "x", "signal": signal, "lines": lines}
        });
        let _ = decode_request(line.to_string().as_bytes());
    }
}
