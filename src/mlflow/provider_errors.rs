//! Error answers of AI gateway invocations. MLflow relays a model provider's error text word
//! for word (`{"detail": "<provider message>"}`), and a provider, or a proxy in front of it,
//! may echo the credential it was sent (`Incorrect API key provided: Bearer sk-…`): the key
//! of the tenant's secret, which MLflow itself never shows. The gateway cannot know the key,
//! so it removes what is shaped like one: the word after `Bearer`/`Basic`, and words that
//! start like the keys of common providers. The error's status and the rest of its text stay,
//! so a caller still learns why the call failed. Successful answers are not touched.

/// Prefixes of provider API keys (OpenAI and compatible `sk-`, Anthropic `sk-ant-`, Google
/// `AIza`, Groq `gsk_`, xAI `xai-`, Hugging Face `hf_`, Replicate `r8_`, GitHub `ghp_`/
/// `github_pat_`, Slack `xox`, AWS access key ids `AKIA`/`ASIA`).
const KEY_PREFIXES: &[&str] = &[
    "sk-",
    "sk_",
    "pk-",
    "rk-",
    "AIza",
    "gsk_",
    "xai-",
    "hf_",
    "r8_",
    "ghp_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "AKIA",
    "ASIA",
];

/// Shortest word judged a key (shorter words after a key prefix are ordinary text).
const MIN_KEY_LEN: usize = 12;

/// What a removed credential is replaced by.
pub const REDACTED: &str = "[redacted by the gateway]";

/// A byte of a token (base64, base64url, hex, key alphabets); `=` only as trailing padding.
fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/')
}

/// The body with every credential-shaped word replaced by `REDACTED`.
pub fn scrub(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    let mut after_scheme = false;
    while i < body.len() {
        if !word_byte(body[i]) {
            out.push(body[i]);
            // `Bearer <token>`: one space (or an escaped one) between scheme and token.
            if !(after_scheme && body[i] == b' ') {
                after_scheme = false;
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < body.len() && word_byte(body[i]) {
            i += 1;
        }
        while i < body.len() && body[i] == b'=' {
            i += 1;
        }
        let word = &body[start..i];
        let keyish = word.len() >= MIN_KEY_LEN
            && KEY_PREFIXES.iter().any(|p| word.starts_with(p.as_bytes()));
        if (after_scheme && word.len() >= 8) || keyish {
            out.extend_from_slice(REDACTED.as_bytes());
            after_scheme = false;
        } else {
            out.extend_from_slice(word);
            after_scheme =
                word.eq_ignore_ascii_case(b"bearer") || word.eq_ignore_ascii_case(b"basic");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        String::from_utf8(scrub(x.as_bytes())).unwrap()
    }

    #[test]
    fn echoed_keys_and_bearer_tokens_are_removed() {
        assert_eq!(
            s(r#"{"detail":"Incorrect API key provided: Bearer sk-LEAKCHECK-ws-a-1234567890"}"#),
            format!(r#"{{"detail":"Incorrect API key provided: Bearer {REDACTED}"}}"#)
        );
        assert_eq!(
            s("key sk-proj-abcdefghijklmnop rejected"),
            format!("key {REDACTED} rejected")
        );
        assert_eq!(
            s("authorization: basic dXNlcjpwYXNzd29yZA=="),
            format!("authorization: basic {REDACTED}")
        );
        assert_eq!(s("AIzaSyD-1234567890abcdef"), REDACTED);
        assert_eq!(s("id=AKIAIOSFODNN7EXAMPLE,"), format!("id={REDACTED},"));
    }

    #[test]
    fn ordinary_error_text_is_kept() {
        for text in [
            r#"{"detail":"max_tokens is too large: 100000. This model supports at most 4096"}"#,
            "the bearer of bad news",
            "sk-short",
            "Rate limit reached for gpt-4o-mini in organization org-123",
            "",
        ] {
            assert_eq!(s(text), text);
        }
    }
}
