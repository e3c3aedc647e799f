//! The incoming request as the pure core sees it (method, raw path and query, headers, body,
//! peer address), and the request id that ties a response to its audit line.

/// An incoming request, copied out of Spin's types by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub method: String,
    /// Raw (still percent-encoded) path.
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    /// Header names lowercased; values as received.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The TCP peer as Spin reports it.
    pub peer_ip: Option<String>,
}

impl Incoming {
    pub fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(k, _)| k == name)
    }

    #[cfg(test)]
    pub fn for_test(
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Incoming {
        Incoming {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
            peer_ip: Some("127.0.0.1".into()),
        }
    }
}

/// A client-supplied `X-Request-ID` is kept when it is short and plain (so it can be logged
/// and echoed safely); otherwise `fresh()` makes one.
pub fn request_id(candidate: &[&[u8]], fresh: impl FnOnce() -> String) -> String {
    if let [one] = candidate {
        if let Ok(s) = std::str::from_utf8(one) {
            let ok = !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
            if ok {
                return s.to_string();
            }
        }
    }
    fresh()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_request_ids_are_kept_others_replaced() {
        assert_eq!(request_id(&[b"abc-1"], || "new".into()), "abc-1");
        assert_eq!(request_id(&[], || "new".into()), "new");
        assert_eq!(request_id(&[b"a b"], || "new".into()), "new");
        assert_eq!(request_id(&[b"a\nb"], || "new".into()), "new");
        assert_eq!(request_id(&[b"a", b"b"], || "new".into()), "new");
        let long = vec![b'a'; 129];
        assert_eq!(request_id(&[&long], || "new".into()), "new");
    }
}
