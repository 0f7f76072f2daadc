//! Codec round-trips and golden byte vectors taken from the protocol reference.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use oxkeeper_proto::frame::{four_letter_word, take_frame, FrameError};
use oxkeeper_proto::response::{write_notification, write_reply};
use oxkeeper_proto::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn connect_request_golden() {
    let frame = hex(
        "00 00 00 2d 00 00 00 00 00 00 00 00 00 00 00 00 00 00 75 30 00 00 00 00 00 00 00 00
         00 00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    );
    let mut buf = BytesMut::from(&frame[..]);
    let payload = take_frame(&mut buf, 0xFFFFF).unwrap().unwrap();
    let req = ConnectRequest::decode(payload).unwrap();
    assert_eq!(req.timeout_ms, 30000);
    assert_eq!(req.session_id, 0);
    assert_eq!(req.passwd.len(), 16);
    assert_eq!(req.read_only, Some(false));
    assert_eq!(&req.to_bytes()[..], &frame[4..]);
}

#[test]
fn get_data_request_golden() {
    let frame = hex("00 00 00 0f 00 00 00 01 00 00 00 04 00 00 00 02 2f 61 01");
    let mut buf = BytesMut::from(&frame[..]);
    let payload = take_frame(&mut buf, 0xFFFFF).unwrap().unwrap();
    let mut r = Reader::new(payload);
    let h = RequestHeader::read(&mut r).unwrap();
    assert_eq!((h.xid, h.op), (1, 4));
    let req = decode_request(h.op, r.take_rest()).unwrap();
    assert_eq!(
        req,
        Request::GetData(PathWatchRequest {
            path: "/a".into(),
            watch: true
        })
    );
}

#[test]
fn error_reply_and_notification_golden() {
    let mut out = BytesMut::new();
    write_reply(
        &mut out,
        3,
        0x1d,
        ErrorCode::NoNode.code(),
        &Response::Stat(Stat::default()),
    );
    assert_eq!(
        &out[..],
        &hex("00 00 00 10 00 00 00 03 00 00 00 00 00 00 00 1d ff ff ff 9b")[..]
    );
    let mut out = BytesMut::new();
    write_notification(&mut out, 0x1c, 3, "/a");
    assert_eq!(
        &out[..],
        &hex("00 00 00 1e ff ff ff ff 00 00 00 00 00 00 00 1c 00 00 00 00
             00 00 00 03 00 00 00 03 00 00 00 02 2f 61")[..]
    );
}

#[test]
fn failed_multi_reply_golden() {
    let mut out = BytesMut::new();
    let results = vec![MultiResult::Error(0), MultiResult::Error(-101)];
    write_reply(&mut out, 4, 0, 0, &Response::Multi(results));
    let expected = hex("00 00 00 33 00 00 00 04 00 00 00 00 00 00 00 00 00 00 00 00
         ff ff ff ff 00 00 00 00 00 00 00 00 00
         ff ff ff ff 00 ff ff ff 9b ff ff ff 9b
         ff ff ff ff 01 ff ff ff ff");
    assert_eq!(&out[..], &expected[..]);
}

#[test]
fn multi_request_golden() {
    // [create "/m" persistent, check "/x" -1]
    let mut body = BytesMut::new();
    MultiHeader {
        op: 1,
        done: false,
        err: -1,
    }
    .write(&mut body);
    CreateRequest {
        path: "/m".into(),
        data: Some(Bytes::new()),
        acl: Acl::open(),
        flags: 0,
    }
    .write(&mut body);
    MultiHeader {
        op: 13,
        done: false,
        err: -1,
    }
    .write(&mut body);
    CheckVersionRequest {
        path: "/x".into(),
        version: -1,
    }
    .write(&mut body);
    MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .write(&mut body);
    match decode_request(14, body.freeze()).unwrap() {
        Request::Multi(ops) => {
            assert_eq!(ops.len(), 2);
            assert!(matches!(&ops[1], MultiOp::Check(c) if c.path == "/x"));
        }
        other => panic!("not a multi: {other:?}"),
    }
}

#[test]
fn mixed_multi_is_marshalling_error() {
    let mut body = BytesMut::new();
    MultiHeader {
        op: 4,
        done: false,
        err: -1,
    }
    .write(&mut body);
    PathWatchRequest {
        path: "/x".into(),
        watch: false,
    }
    .write(&mut body);
    MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .write(&mut body);
    assert!(matches!(
        decode_request(14, body.freeze()),
        Err(RequestError::BadMulti(_))
    ));
}

#[test]
fn unknown_and_forbidden_opcodes_are_unimplemented() {
    for op in [0, 10, 13, 20, 23, 99, -1, -10, 1000] {
        assert_eq!(
            decode_request(op, Bytes::new()),
            Err(RequestError::Unimplemented(op))
        );
    }
}

#[test]
fn truncated_record_is_marshalling_error() {
    let r = decode_request(4, Bytes::from_static(&[0, 0, 0, 9, b'/']));
    assert!(matches!(r, Err(RequestError::Marshalling(_))));
}

#[test]
fn frames_split_and_oversized() {
    let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 1][..]);
    assert_eq!(take_frame(&mut buf, 100).unwrap(), None);
    buf.extend_from_slice(&[2, 3, 0, 0, 0, 0]);
    assert_eq!(&take_frame(&mut buf, 100).unwrap().unwrap()[..], &[1, 2, 3]);
    assert_eq!(
        &take_frame(&mut buf, 100).unwrap().unwrap()[..],
        &[] as &[u8]
    );
    let mut big = BytesMut::from(&0x100000i32.to_be_bytes()[..]);
    assert!(matches!(
        take_frame(&mut big, 0xFFFFF),
        Err(FrameError::BadLength { .. })
    ));
    let mut neg = BytesMut::from(&(-5i32).to_be_bytes()[..]);
    assert!(take_frame(&mut neg, 0xFFFFF).is_err());
}

#[test]
fn four_letter_words_are_recognised() {
    assert_eq!(four_letter_word(*b"ruok"), Some("ruok"));
    assert_eq!(four_letter_word(*b"mntr"), Some("mntr"));
    assert_eq!(four_letter_word([0, 0, 0, 45]), None);
}

#[test]
fn txn_roundtrip_multi() {
    let t = Txn::Multi(vec![
        Txn::Create(txn::CreateTxn {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"hello")),
            acl: Acl::open(),
            ephemeral: false,
            parent_cversion: 1,
        }),
        Txn::Error(txn::ErrorTxn { err: -101 }),
    ]);
    let mut w = BytesMut::new();
    t.write_body(&mut w);
    let back = Txn::read_body(t.txn_type(), &mut Reader::new(w.freeze())).unwrap();
    assert_eq!(back, t);
}

#[test]
fn create_txn_golden_from_persistence_reference() {
    let t = txn::CreateTxn {
        path: "/a".into(),
        data: Some(Bytes::from_static(b"hello")),
        acl: Acl::open(),
        ephemeral: false,
        parent_cversion: 1,
    };
    let expected = hex(
        "00000002 2f61 00000005 68656c6c6f 00000001 0000001f 00000005 776f726c64
         00000006 616e796f6e65 00 00000001",
    );
    assert_eq!(&t.to_bytes()[..], &expected[..]);
}

fn arb_acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), "[a-z]{0,8}", "[ -~]{0,16}").prop_map(|(perms, scheme, id)| Acl {
        perms,
        id: Id { scheme, id },
    })
}

proptest! {
    #[test]
    fn create_request_roundtrip(path in "/[ -~]{0,40}", data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
                                acl in proptest::collection::vec(arb_acl(), 0..4), flags in any::<i32>()) {
        let req = CreateRequest { path, data: data.map(Bytes::from), acl, flags };
        prop_assert_eq!(CreateRequest::decode(req.to_bytes()).unwrap(), req);
    }

    #[test]
    fn stat_roundtrip(v in proptest::collection::vec(any::<i64>(), 11)) {
        let s = Stat { czxid: v[0], mzxid: v[1], ctime: v[2], mtime: v[3], version: v[4] as i32,
            cversion: v[5] as i32, aversion: v[6] as i32, ephemeral_owner: v[7],
            data_length: v[8] as i32, num_children: v[9] as i32, pzxid: v[10] };
        let b = s.to_bytes();
        prop_assert_eq!(b.len(), 68);
        prop_assert_eq!(Stat::decode(b).unwrap(), s);
    }

    #[test]
    fn decoding_garbage_never_panics(op in -20i32..120, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_request(op, Bytes::from(body.clone()));
        let _ = ConnectRequest::decode(Bytes::from(body.clone()));
        for t in [-11, -10, -1, 1, 2, 5, 7, 13, 14, 19, 21] {
            let _ = Txn::read_body(t, &mut Reader::new(Bytes::from(body.clone())));
        }
    }

    #[test]
    fn setwatches2_roundtrip(paths in proptest::collection::vec("/[a-z]{1,8}", 0..6), z in any::<i64>()) {
        let w = SetWatches2 { relative_zxid: z, data_watches: paths.clone(), exist_watches: paths.clone(),
            child_watches: vec![], persistent_watches: paths.clone(), persistent_recursive_watches: paths };
        prop_assert_eq!(SetWatches2::decode(w.to_bytes()).unwrap(), w);
    }
}
