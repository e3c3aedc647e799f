//! The platform in memory, for the pipeline's native tests: variables (spin.toml's defaults,
//! overridable), a key-value map that can be made to fail or to stall, clocks the test moves,
//! and an MLflow that is **not** simulated: each upstream call is answered from MLflow 3.17.2
//! answers recorded by `tests/data/record_mlflow_answers.py`, or by a transport failure the
//! test chose, and any call the test did not foresee is refused. Every request sent is kept,
//! so a test can assert what was (and was not) forwarded.

use super::host::{Answer, BodyError, Host, OutBody, SendFailure, UpstreamResponse};
use crate::config::Origin;
use crate::forward::UpstreamRequest;
use std::collections::HashMap;

/// Answers recorded from the real MLflow (see the module doc).
pub const RECORDED: &str = include_str!("../../tests/data/recorded/answers.json");

/// A recorded answer by name.
pub fn recorded(name: &str) -> UpstreamResponse {
    let all: serde_json::Value = serde_json::from_str(RECORDED).expect("recorded answers parse");
    let a = &all["answers"][name];
    UpstreamResponse {
        status: a["status"].as_u64().expect("status") as u16,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: a["body"].as_str().expect("body").as_bytes().to_vec(),
    }
}

/// A value from the recordings' metadata (ids MLflow assigned).
pub fn recorded_meta(key: &str) -> String {
    let all: serde_json::Value = serde_json::from_str(RECORDED).expect("recorded answers parse");
    all["meta"][key].as_str().expect("meta key").to_string()
}

/// What an upstream call gets.
#[derive(Clone)]
pub enum Scripted {
    Answer(UpstreamResponse),
    /// The call fails before an answer's head arrives.
    Fail(SendFailure),
    /// The head arrives, then reading the body fails.
    FailBody(u16, SendFailure),
}

pub struct MemoryAnswer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Result<Vec<u8>, SendFailure>,
}

impl Answer for MemoryAnswer {
    fn status(&self) -> u16 {
        self.status
    }
    fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }
    fn read_all(self) -> Result<UpstreamResponse, SendFailure> {
        Ok(UpstreamResponse {
            status: self.status,
            headers: self.headers,
            body: self.body?,
        })
    }
}

pub struct MemoryHost {
    pub vars: Vec<(String, String)>,
    /// Reading the variables fails (a variables provider such as Vault unreachable).
    pub vars_broken: bool,
    pub kv: HashMap<String, Vec<u8>>,
    /// Every key-value call fails (a broken store).
    pub kv_broken: bool,
    /// Every key-value call takes this long (a store that hangs, as Spin's Redis store does).
    pub kv_stall_ms: u64,
    /// Scripted answers by `METHOD path?query`.
    pub upstream: HashMap<String, Scripted>,
    /// Every upstream call made, in order.
    pub sent: Vec<UpstreamRequest>,
    /// Every key read (`kv_get`), in order: the round trips a request costs.
    pub kv_reads: Vec<String>,
    pub logs: Vec<String>,
    pub now_ms: u64,
    pub mono_ms: u64,
}

impl MemoryHost {
    /// Dev mode (`X-Tenant` headers), every other variable at spin.toml's default.
    pub fn dev() -> MemoryHost {
        let mut h = MemoryHost {
            vars: spin_toml_defaults(),
            vars_broken: false,
            kv: HashMap::new(),
            kv_broken: false,
            kv_stall_ms: 0,
            upstream: HashMap::new(),
            sent: Vec::new(),
            kv_reads: Vec::new(),
            logs: Vec::new(),
            now_ms: 1_796_000_000_000,
            mono_ms: 0,
        };
        h.set_var("auth_mode", "off");
        h.set_var("tenant_isolation", "tag");
        h
    }

    /// Dev mode with `tenant_isolation=workspace` (spin.toml's default isolation).
    pub fn dev_workspaces() -> MemoryHost {
        let mut h = MemoryHost::dev();
        h.set_var("tenant_isolation", "workspace");
        h
    }

    pub fn set_var(&mut self, name: &str, value: &str) {
        self.vars.retain(|(k, _)| k != name);
        self.vars.push((name.into(), value.into()));
    }

    /// Answers `METHOD path?query` with `what`.
    pub fn on(&mut self, method: &str, path_and_query: &str, what: Scripted) {
        self.upstream
            .insert(format!("{method} {path_and_query}"), what);
    }

    /// The key-value map, as one store call finds it: after the stall, or failing if broken.
    fn store(&mut self) -> Result<&mut HashMap<String, Vec<u8>>, String> {
        self.mono_ms += self.kv_stall_ms;
        if self.kv_broken {
            return Err("store unavailable".into());
        }
        Ok(&mut self.kv)
    }

    /// The upstream calls made, as `METHOD path?query`.
    pub fn calls(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|r| format!("{} {}", r.method, r.path_and_query))
            .collect()
    }
}

/// The `[variables]` defaults of spin.toml, as the component sees them when nothing is set.
fn spin_toml_defaults() -> Vec<(String, String)> {
    let manifest = include_str!("../../spin.toml");
    let vars = manifest
        .split("[variables]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .unwrap_or("");
    vars.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(" = { default = \"")?;
            let value = rest.split('"').next()?;
            Some((name.trim().to_string(), value.to_string()))
        })
        .collect()
}

impl Host for MemoryHost {
    type ClientBody = Vec<u8>;
    type Answer = MemoryAnswer;

    fn variables(&mut self) -> Result<Vec<(String, String)>, String> {
        if self.vars_broken {
            return Err("the variables provider is unreachable".into());
        }
        // Settings set by name are folded into `settings`, as an operator writes them.
        Ok(crate::config::tests::as_variables(&self.vars))
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.kv_reads.push(key.to_string());
        Ok(self.store()?.get(key).cloned())
    }

    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.store()?.insert(key.into(), value.to_vec());
        Ok(())
    }

    fn kv_delete(&mut self, key: &str) -> Result<(), String> {
        self.store()?.remove(key);
        Ok(())
    }

    /// Counters are kept as SQLite's store keeps them (8-byte little-endian), so a test that
    /// reads one with `kv_get` sees what it would see there.
    fn kv_increment(&mut self, key: &str, delta: i64) -> Result<i64, String> {
        let store = self.store()?;
        let current = match store.get(key) {
            None => 0,
            Some(b) => i64::from_le_bytes(
                b.as_slice()
                    .try_into()
                    .map_err(|_| format!("{key} is not a counter"))?,
            ),
        };
        let next = current + delta;
        store.insert(key.into(), next.to_le_bytes().to_vec());
        Ok(next)
    }

    fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn monotonic_ms(&self) -> u64 {
        self.mono_ms
    }

    fn random_u64(&mut self) -> u64 {
        0x5eed
    }

    fn log(&mut self, line: &str) {
        self.logs.push(line.to_string());
    }

    fn read_body(
        &mut self,
        body: Vec<u8>,
        _declared: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>, BodyError> {
        if body.len() as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        Ok(body)
    }

    fn send(
        &mut self,
        _origin: &Origin,
        req: &UpstreamRequest,
        body: OutBody<Vec<u8>>,
        _timeout_secs: u64,
    ) -> Result<MemoryAnswer, SendFailure> {
        let mut sent = req.clone();
        if let OutBody::Stream(b) = body {
            sent.body = b;
        }
        let key = format!("{} {}", req.method, req.path_and_query);
        self.sent.push(sent);
        match self.upstream.get(&key).cloned() {
            Some(Scripted::Answer(r)) => Ok(MemoryAnswer {
                status: r.status,
                headers: r.headers,
                body: Ok(r.body),
            }),
            Some(Scripted::FailBody(status, e)) => Ok(MemoryAnswer {
                status,
                headers: Vec::new(),
                body: Err(e),
            }),
            Some(Scripted::Fail(e)) => Err(e),
            None => Err(SendFailure::Unreachable(format!(
                "no recorded answer for {key}"
            ))),
        }
    }
}
