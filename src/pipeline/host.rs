//! What the pipeline needs from the platform, and nothing more: the component's variables, the
//! key-value store, outbound HTTP (with the client's body piped through for large uploads),
//! clocks, randomness and the operator log. `shell` implements it for Spin; the pipeline's
//! tests implement it in memory, so every step, fail-closed paths included, runs natively.

use crate::config::Origin;
use crate::forward::UpstreamRequest;

/// Why an outgoing call failed; each maps to its own status and log text (`ctx::send_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The platform refused the call (Spin's `allowed_outbound_hosts`): a configuration error.
    Denied,
    /// Connect, first byte or a gap between bytes took longer than the timeout (504).
    Timeout,
    /// No connection could be made (refused, DNS, TLS) (502).
    Unreachable(String),
    /// The connection broke after the request was sent: reset, closed before the answer
    /// completed, or an answer that is not HTTP (502).
    Reset(String),
    /// The answer's body ended before its `content-length` (502).
    Truncated { got: u64, expected: u64 },
}

/// An upstream answer, fully read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// An upstream answer whose status and headers are in and whose body is not read yet (it may
/// be piped to the client instead).
pub trait Answer {
    fn status(&self) -> u16;
    fn headers(&self) -> &[(String, Vec<u8>)];
    /// Reads the whole body.
    fn read_all(self) -> Result<UpstreamResponse, SendFailure>;
}

/// Why the client's body could not be taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit arrived (however the body was framed).
    TooLarge,
    /// The client's stream failed.
    Unreadable(String),
}

/// The body of an outgoing call.
pub enum OutBody<B> {
    /// The request's own bytes (`UpstreamRequest::body`).
    Bytes,
    /// The client's body, piped as it arrives; the request declares its length.
    Stream(B),
}

/// The platform, as the pipeline sees it.
pub trait Host {
    /// The client's body, still unread in its connection.
    type ClientBody;
    /// An upstream answer with its body unread.
    type Answer: Answer;

    /// Every component variable, in one read; a provider failure fails the whole read.
    fn variables(&mut self) -> Result<Vec<(String, String)>, String>;
    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), String>;
    fn kv_delete(&mut self, key: &str) -> Result<(), String>;
    /// Atomically adds `delta` to the counter at `key` (a missing key counts from 0) and returns
    /// the new value (`wasi:keyvalue/atomics.increment`). Counter keys are never written any
    /// other way: the stores keep counters in their own formats (SQLite: 8-byte integer; Redis:
    /// decimal string).
    fn kv_increment(&mut self, key: &str, delta: i64) -> Result<i64, String>;
    /// Wall-clock time (audit timestamps, token and cache times).
    fn now_ms(&self) -> u64;
    /// A monotonic clock (deadlines).
    fn monotonic_ms(&self) -> u64;
    fn random_u64(&mut self) -> u64;
    /// Writes one operator log line (already formatted, one JSON object).
    fn log(&mut self, line: &str);
    /// Reads the client's body, holding at most `limit + 1` bytes.
    fn read_body(
        &mut self,
        body: Self::ClientBody,
        declared: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>, BodyError>;
    /// Sends a request and returns once the answer's head is in. Timeouts (connect, first
    /// byte, between bytes) are `timeout_secs`.
    fn send(
        &mut self,
        origin: &Origin,
        req: &UpstreamRequest,
        body: OutBody<Self::ClientBody>,
        timeout_secs: u64,
    ) -> Result<Self::Answer, SendFailure>;
}
