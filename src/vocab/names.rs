//! Names the gateway writes into filters, keys and tags: tenant ids, and hex digests.

/// Tenant ids are restricted, never escaped: they are written into MLflow filter strings
/// (`tags.\`tenant\` = '<id>'`) and KV keys, so quotes, `%`, `_`-wildcards in LIKE, spaces and
/// `+` must be impossible. (`_` is allowed: the gateway only ever builds `=` clauses.)
pub fn valid_tenant(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Lower-case hex of `bytes` (digests in KV keys and records).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}
