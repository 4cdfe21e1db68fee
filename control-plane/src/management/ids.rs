//! AWS-style identifiers: short strings of lowercase letters and digits.

use rand::Rng;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn id(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// REST API ids are 10 characters (`fugvjdxtri`).
pub fn rest_api() -> String {
    id(10)
}

/// Resource ids; AWS uses 6 to 10 characters.
pub fn resource() -> String {
    id(10)
}

/// Deployment, model and validator ids (`n371pt`).
pub fn short() -> String {
    id(6)
}
