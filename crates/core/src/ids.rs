//! Resource ids shaped like the providers' own: a prefix and 8 lower-case letters or digits.

use rand::Rng;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A new random id: `prefix` followed by `len` lower-case letters and digits.
pub fn new_id(prefix: &str, len: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    for _ in 0..len {
        s.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    s
}

/// Whether `id` is `prefix` followed by exactly `len` lower-case letters or digits.
pub fn is_well_formed(id: &str, prefix: &str, len: usize) -> bool {
    match id.strip_prefix(prefix) {
        Some(rest) => {
            rest.len() == len
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        }
        None => false,
    }
}

/// `len` random decimal digits, the first one not zero (account ids look like Tencent UINs).
pub fn random_digits(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|i| {
            let low = if i == 0 { 1 } else { 0 };
            char::from(b'0' + rng.gen_range(low..10u8))
        })
        .collect()
}

/// A random string of `len` characters from a URL-safe alphabet, for credentials.
pub fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_well_formed() {
        for _ in 0..100 {
            let id = new_id("skey-", 8);
            assert!(is_well_formed(&id, "skey-", 8), "{id}");
        }
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!(!is_well_formed("skey-1122", "skey-", 8));
        assert!(!is_well_formed("skey-ABCDEFGH", "skey-", 8));
        assert!(!is_well_formed("lhkp-abcdefgh", "skey-", 8));
        assert!(!is_well_formed("skey-abcdefgh1", "skey-", 8));
        assert!(is_well_formed("skey-3glfot13", "skey-", 8));
    }
}
