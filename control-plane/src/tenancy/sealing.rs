//! Sealing of access-key secrets at rest with ChaCha20-Poly1305. SigV4
//! verification needs the clear secret, so secrets are encrypted, not hashed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// Length of the master key in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the master key must be {KEY_LEN} bytes, base64-encoded")]
    BadKey,
    #[error("a sealed secret could not be opened (wrong master key or corrupt data)")]
    Open,
}

#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// Builds a sealer from a base64-encoded 32-byte key.
    pub fn from_base64(key: &str) -> Result<Self, SealError> {
        let bytes = STANDARD.decode(key.trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != KEY_LEN {
            return Err(SealError::BadKey);
        }
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    /// A fresh random key, base64-encoded.
    pub fn generate_key() -> String {
        STANDARD.encode(ChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// `base64(nonce || ciphertext)`.
    pub fn seal(&self, secret: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            self.cipher
                .encrypt(&nonce, secret.as_bytes())
                .expect("ChaCha20-Poly1305 encryption of an in-memory buffer cannot fail"),
        );
        STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::Open)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let clear = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SealError::Open)?;
        String::from_utf8(clear).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_hides_the_secret() {
        let sealer = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let sealed = sealer.seal("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        assert!(!sealed.contains("wJalr"));
        assert_eq!(
            sealer.open(&sealed).unwrap(),
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
        );
        // Two seals of one secret differ (fresh nonce each time).
        assert_ne!(
            sealed,
            sealer.seal("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        );
    }

    #[test]
    fn another_key_or_tampering_fails_to_open() {
        let a = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let b = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let sealed = a.seal("secret");
        assert!(b.open(&sealed).is_err());
        let mut raw = STANDARD.decode(&sealed).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        assert!(a.open(&STANDARD.encode(raw)).is_err());
        assert!(a.open("not base64!").is_err());
        assert!(a.open("").is_err());
    }

    #[test]
    fn rejects_keys_of_the_wrong_size() {
        assert!(Sealer::from_base64("c2hvcnQ=").is_err());
        assert!(Sealer::from_base64("###").is_err());
    }
}
