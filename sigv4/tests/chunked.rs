//! aws-chunked bodies (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`), checked against
//! the published "Example: PUT Object" of the Amazon S3 SigV4 streaming
//! documentation, then with tampered, truncated and random bodies.

use apigw_sigv4::{SigV4Error, chunk_string_to_sign, decode_chunked, parse, signing_key, verify};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http::request::Parts;

// The S3 documentation example's credentials and request.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const CHUNK_SIGNATURES: [&str; 3] = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];

fn timestamp() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap()
}

fn key() -> Vec<u8> {
    signing_key(SECRET, &timestamp(), "us-east-1", "s3")
}

fn example_head() -> Parts {
    let request = http::Request::builder()
        .method("PUT")
        .uri("/examplebucket/chunkObject.txt")
        .header("host", "s3.amazonaws.com")
        .header("x-amz-date", "20130524T000000Z")
        .header("x-amz-storage-class", "REDUCED_REDUNDANCY")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
             x-amz-decoded-content-length;x-amz-storage-class,\
             Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        )
        .header("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", "66560")
        .header("content-length", "66824")
        .body(())
        .unwrap();
    request.into_parts().0
}

/// Our test-side encoder: splits `data` into `chunk_size` chunks plus the final
/// empty one, signing each from the previous signature, starting at `seed`.
fn encode(data: &[u8], chunk_size: usize, seed: &str) -> (Vec<u8>, Vec<String>) {
    let key = key();
    let mut body = Vec::new();
    let mut signatures = Vec::new();
    let mut previous = seed.to_owned();
    for chunk in data.chunks(chunk_size).chain(std::iter::once(&[][..])) {
        let sts = chunk_string_to_sign(&timestamp(), SCOPE, &previous, chunk);
        let signature = aws_sigv4::sign::v4::calculate_signature(&key, sts.as_bytes());
        body.extend_from_slice(
            format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes(),
        );
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
        previous = signature.clone();
        signatures.push(signature);
    }
    (body, signatures)
}

fn example_body() -> Vec<u8> {
    encode(&[b'a'; 66560], 65536, SEED).0
}

fn check(parts: &Parts, body: &[u8]) -> Result<bytes::Bytes, SigV4Error> {
    let signed = parse(parts)?;
    verify(
        &signed,
        parts,
        body,
        SECRET,
        timestamp(),
        Duration::minutes(15),
    )
}

fn decode(body: &[u8]) -> Result<Vec<u8>, SigV4Error> {
    decode_chunked(body, &key(), &timestamp(), SCOPE, SEED)
}

#[test]
fn aws_documentation_example() {
    let (body, signatures) = encode(&[b'a'; 66560], 65536, SEED);
    assert_eq!(signatures, CHUNK_SIGNATURES);
    assert_eq!(body.len(), 66824, "the example's Content-Length");

    let parts = example_head();
    let signed = parse(&parts).unwrap();
    assert_eq!(signed.signature, SEED);
    assert_eq!(signed.scope(), SCOPE);
    let payload = check(&parts, &body).unwrap();
    assert_eq!(payload.len(), 66560);
    assert!(payload.iter().all(|&b| b == b'a'));
}

#[test]
fn tampered_chunks_fail() {
    let body = example_body();
    let first_data = body.iter().position(|&b| b == b'\n').unwrap() + 1;

    // A changed data byte.
    let mut changed = body.clone();
    changed[first_data + 100] = b'b';
    assert!(matches!(
        check(&example_head(), &changed),
        Err(SigV4Error::SignatureMismatch { .. })
    ));

    // A changed chunk signature (still well-formed).
    let mut changed = body.clone();
    let at = body
        .windows(CHUNK_SIGNATURES[1].len())
        .position(|w| w == CHUNK_SIGNATURES[1].as_bytes())
        .unwrap();
    changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
    assert!(matches!(
        check(&example_head(), &changed),
        Err(SigV4Error::SignatureMismatch { .. })
    ));

    // Chunks signed from another seed (a replay onto another request).
    let other_seed = "0".repeat(64);
    let (replayed, _) = encode(&[b'a'; 66560], 65536, &other_seed);
    assert!(matches!(
        check(&example_head(), &replayed),
        Err(SigV4Error::SignatureMismatch { .. })
    ));

    // Re-chunked (same data, different chunk boundaries) verifies on its own,
    // but the original final chunk cannot be spliced onto it: signatures chain.
    let (rechunked, _) = encode(&[b'a'; 66560], 8192, SEED);
    assert_eq!(decode(&rechunked).unwrap(), vec![b'a'; 66560]);
    let final_chunk = format!("0;chunk-signature={}\r\n\r\n", CHUNK_SIGNATURES[2]);
    assert!(body.ends_with(final_chunk.as_bytes()));
    let mut spliced = rechunked[..rechunked.len() - final_chunk.len()].to_vec();
    spliced.extend_from_slice(final_chunk.as_bytes());
    assert!(matches!(
        decode(&spliced),
        Err(SigV4Error::SignatureMismatch { .. })
    ));
}

#[test]
fn truncated_and_extended_bodies_fail() {
    let body = example_body();
    // Every cut in the chunk headers, and a spread of cuts inside the data.
    let cuts = (0..body.len()).filter(|i| *i < 200 || (body.len() - *i) < 300 || i % 997 == 0);
    for cut in cuts {
        let result = decode(&body[..cut]);
        assert!(
            matches!(result, Err(SigV4Error::MalformedChunk(_))),
            "cut at {cut}: {result:?}"
        );
    }
    let mut longer = body.clone();
    longer.extend_from_slice(b"0;chunk-signature=");
    assert!(matches!(
        decode(&longer),
        Err(SigV4Error::MalformedChunk(_))
    ));

    // The announced decoded length is checked too.
    let (short, _) = encode(&[b'a'; 66559], 65536, SEED);
    assert!(matches!(
        check(&example_head(), &short),
        Err(SigV4Error::MalformedChunk(_))
    ));
}

#[test]
fn malformed_chunk_headers() {
    let signature = CHUNK_SIGNATURES[0];
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\r\n".to_vec(),
        b"0\r\n\r\n".to_vec(),
        format!("0;chunk-signature={signature}").into_bytes(),
        format!("0;chunk-signature={signature}\r\n").into_bytes(),
        format!("0;chunk-signature={}\r\n\r\n", signature.to_uppercase()).into_bytes(),
        format!("0;chunk-signature={}\r\n\r\n", &signature[1..]).into_bytes(),
        format!("0;chunk-signature={signature}0\r\n\r\n").into_bytes(),
        format!("0;chunk-signaturE={signature}\r\n\r\n").into_bytes(),
        format!("0 ;chunk-signature={signature}\r\n\r\n").into_bytes(),
        format!("-1;chunk-signature={signature}\r\n\r\n").into_bytes(),
        format!("0x1;chunk-signature={signature}\r\nA\r\n").into_bytes(),
        format!(";chunk-signature={signature}\r\n\r\n").into_bytes(),
        format!("ffffffffffffffff;chunk-signature={signature}\r\nabc\r\n").into_bytes(),
        format!("10000000000000000;chunk-signature={signature}\r\nabc\r\n").into_bytes(),
        format!("1;chunk-signature={signature}\r\nab\r\n").into_bytes(),
        format!("2;chunk-signature={signature}\r\na\r\n").into_bytes(),
        format!("1;chunk-signature={signature}\nab\r\n").into_bytes(),
        [b"1;chunk-signature=".as_slice(), &[b'f'; 100_000]].concat(),
        vec![b'1'; 100_000],
    ];
    for (i, body) in cases.iter().enumerate() {
        let result = decode(body);
        assert!(
            matches!(result, Err(SigV4Error::MalformedChunk(_))),
            "case {i}: {result:?}"
        );
    }
}

/// splitmix64: a tiny deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_garbage_never_panics_or_verifies() {
    let mut rng = Rng(0x5EED);
    // Pieces that look like aws-chunked syntax, to get past the first checks.
    let pieces: [&[u8]; 12] = [
        b"0",
        b"1",
        b"a",
        b"F",
        b"10000",
        b";",
        b"chunk-signature=",
        b"\r\n",
        b"\r",
        b"\n",
        CHUNK_SIGNATURES[0].as_bytes(),
        b"\xff\x00",
    ];
    for _ in 0..5000 {
        let mut body = Vec::new();
        for _ in 0..rng.below(12) {
            if rng.below(4) == 0 {
                body.push(rng.next() as u8);
            } else {
                body.extend_from_slice(pieces[rng.below(pieces.len())]);
            }
        }
        assert!(decode(&body).is_err(), "{body:?}");
    }
}

#[test]
fn random_mutations_of_a_valid_body_fail() {
    let data: Vec<u8> = (0..40u8).collect();
    let (valid, _) = encode(&data, 9, SEED);
    assert_eq!(decode(&valid).unwrap(), data);
    let mut rng = Rng(42);
    for round in 0..3000 {
        let mut body = valid.clone();
        for _ in 0..=rng.below(3) {
            let at = rng.below(body.len());
            match rng.below(3) {
                0 => body[at] ^= 1 << rng.below(8),
                1 => {
                    body.remove(at);
                }
                _ => body.insert(at, rng.next() as u8),
            }
        }
        if body == valid {
            continue;
        }
        let result = decode(&body);
        assert!(
            matches!(
                result,
                Err(SigV4Error::MalformedChunk(_) | SigV4Error::SignatureMismatch { .. })
            ),
            "round {round}: {result:?}"
        );
    }
}

#[test]
fn garbage_through_verify() {
    // The seed signature is valid, so verify gets as far as the chunks.
    let mut rng = Rng(7);
    for _ in 0..200 {
        let body: Vec<u8> = (0..rng.below(500)).map(|_| rng.next() as u8).collect();
        let result = check(&example_head(), &body);
        assert!(
            matches!(result, Err(SigV4Error::MalformedChunk(_))),
            "{result:?}"
        );
    }
}
