//! `/graphql`, restricted to the four read operations the MLflow UI sends (GetRun, SearchRuns,
//! MlflowGetExperimentQuery, GetMetricHistoryBulkInterval). A small tokenizer checks the query's
//! *shape*: one named `query` operation, one root field taking `input: $data`, nested plain
//! field selections only (no aliases, arguments, fragments or extra root fields), so the ids
//! that matter can only come from `variables.data`, where the gateway checks them like the
//! matching REST route. Anything else is refused.

use crate::error::{GatewayError, Reason};
use crate::mlflow::json::parse_object;
use serde_json::{Map, Value};

/// Longest query document accepted.
const MAX_QUERY_BYTES: usize = 64 * 1024;
/// Deepest selection nesting accepted (MLflow's own limit is 10).
const MAX_DEPTH: usize = 10;

/// The UI operations the gateway scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetRun,
    SearchRuns,
    GetExperiment,
    GetMetricHistoryBulkInterval,
}

impl Operation {
    fn from_name(name: &str) -> Option<Operation> {
        Some(match name {
            "GetRun" => Operation::GetRun,
            "SearchRuns" => Operation::SearchRuns,
            "MlflowGetExperimentQuery" => Operation::GetExperiment,
            "GetMetricHistoryBulkInterval" => Operation::GetMetricHistoryBulkInterval,
            _ => return None,
        })
    }
    /// (root field, input type, allowed `variables.data` keys)
    fn shape(self) -> (&'static str, &'static str, &'static [&'static str]) {
        match self {
            Operation::GetRun => ("mlflowGetRun", "MlflowGetRunInput", &["runId", "runUuid"]),
            Operation::SearchRuns => (
                "mlflowSearchRuns",
                "MlflowSearchRunsInput",
                &[
                    "experimentIds",
                    "filter",
                    "runViewType",
                    "maxResults",
                    "orderBy",
                    "pageToken",
                ],
            ),
            Operation::GetExperiment => (
                "mlflowGetExperiment",
                "MlflowGetExperimentInput",
                &["experimentId"],
            ),
            Operation::GetMetricHistoryBulkInterval => (
                "mlflowGetMetricHistoryBulkInterval",
                "MlflowGetMetricHistoryBulkIntervalInput",
                &["runIds", "metricKey", "startStep", "endStep", "maxResults"],
            ),
        }
    }
}

/// A checked GraphQL request: the operation, the request body as a JSON object, and the name
/// of its single variable (`data`, or `input` in the UI's experiment query), whose object holds
/// the ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub operation: Operation,
    pub body: Map<String, Value>,
    pub variable: String,
}

impl Request {
    pub fn data(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.body
            .get("variables")
            .and_then(|v| v.get(&self.variable))
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }
    pub fn data_mut(&mut self) -> Option<&mut Map<String, Value>> {
        self.body
            .get_mut("variables")?
            .get_mut(&self.variable)?
            .as_object_mut()
    }
}

fn refuse(msg: &str) -> GatewayError {
    GatewayError::forbidden(
        Reason::RouteDenied,
        format!("this GraphQL request is not permitted through the gateway: {msg}"),
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Name(String),
    Punct(char),
    Str,
}

fn tokenize(q: &str) -> Result<Vec<Tok>, GatewayError> {
    let mut out = Vec::new();
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        match c {
            ' ' | '\t' | '\n' | '\r' | ',' | '\u{feff}' => i += 1,
            '#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            '!' | '$' | '(' | ')' | ':' | '{' | '}' | '@' => {
                out.push(Tok::Punct(c));
                i += 1;
            }
            '"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' || b[i] == b'\n' {
                        return Err(refuse("unsupported string literal"));
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Err(refuse("unterminated string"));
                }
                i += 1;
                out.push(Tok::Str);
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                out.push(Tok::Name(q[start..i].to_string()));
            }
            _ => {
                return Err(refuse(
                    "unsupported syntax (fragments, literals or aliases)",
                ))
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn punct(&mut self, c: char) -> Result<(), GatewayError> {
        match self.next() {
            Some(Tok::Punct(p)) if p == c => Ok(()),
            _ => Err(refuse("unexpected query shape")),
        }
    }
    fn name(&mut self) -> Result<String, GatewayError> {
        match self.next() {
            Some(Tok::Name(n)) => Ok(n),
            _ => Err(refuse("unexpected query shape")),
        }
    }
    fn expect_name(&mut self, want: &str) -> Result<(), GatewayError> {
        if self.name()? == want {
            Ok(())
        } else {
            Err(refuse("unexpected query shape"))
        }
    }
    /// `@name` or `@name(arg: "literal", ...)`, allowed on the operation only.
    fn directives(&mut self) -> Result<(), GatewayError> {
        while self.peek() == Some(&Tok::Punct('@')) {
            self.pos += 1;
            self.name()?;
            if self.peek() == Some(&Tok::Punct('(')) {
                self.pos += 1;
                loop {
                    if self.peek() == Some(&Tok::Punct(')')) {
                        self.pos += 1;
                        break;
                    }
                    self.name()?;
                    self.punct(':')?;
                    if self.next() != Some(Tok::Str) {
                        return Err(refuse("directive arguments must be string literals"));
                    }
                }
            }
        }
        Ok(())
    }
    /// `{ field { ... } field ... }` with plain field names only.
    fn selection_set(&mut self, depth: usize) -> Result<(), GatewayError> {
        if depth > MAX_DEPTH {
            return Err(refuse("query is nested too deeply"));
        }
        self.punct('{')?;
        let mut fields = 0;
        loop {
            match self.peek() {
                Some(Tok::Punct('}')) => {
                    self.pos += 1;
                    return if fields > 0 {
                        Ok(())
                    } else {
                        Err(refuse("empty selection"))
                    };
                }
                Some(Tok::Name(_)) => {
                    self.pos += 1;
                    fields += 1;
                    if self.peek() == Some(&Tok::Punct('{')) {
                        self.selection_set(depth + 1)?;
                    }
                }
                _ => return Err(refuse("only plain field selections are allowed")),
            }
        }
    }
}

/// Checks the query document's shape for `op`; returns the name of its one variable.
fn check_document(query: &str, op: Operation, op_name: &str) -> Result<String, GatewayError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(refuse("query is too large"));
    }
    let (root, input_type, _) = op.shape();
    let mut p = Parser {
        toks: tokenize(query)?,
        pos: 0,
    };
    p.expect_name("query")?;
    p.expect_name(op_name)?;
    p.punct('(')?;
    p.punct('$')?;
    let var = p.name()?;
    p.punct(':')?;
    p.expect_name(input_type)?;
    p.punct('!')?;
    p.punct(')')?;
    p.directives()?;
    p.punct('{')?;
    p.expect_name(root)?;
    p.punct('(')?;
    p.expect_name("input")?;
    p.punct(':')?;
    p.punct('$')?;
    p.expect_name(&var)?;
    p.punct(')')?;
    p.selection_set(1)?;
    p.punct('}')?;
    if p.peek().is_some() {
        return Err(refuse("only one root field and one operation are allowed"));
    }
    Ok(var)
}

/// Parses and checks a `/graphql` POST body.
pub fn parse(body: &[u8]) -> Result<Request, GatewayError> {
    let body = parse_object(body)?;
    if let Some(k) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "query" | "variables" | "operationName"))
    {
        return Err(refuse(&format!("unexpected field `{k}`")));
    }
    let op_name = body
        .get("operationName")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("operationName is required"))?;
    let operation = Operation::from_name(op_name)
        .ok_or_else(|| refuse("only the MLflow UI's run and experiment queries are allowed"))?;
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("query is required"))?;
    let variable = check_document(query, operation, op_name)?;
    let vars = body
        .get("variables")
        .and_then(Value::as_object)
        .ok_or_else(|| refuse("variables are required"))?;
    if vars.len() != 1 {
        return Err(refuse("only the query's one variable is allowed"));
    }
    let data = vars
        .get(&variable)
        .and_then(Value::as_object)
        .ok_or_else(|| refuse("the query's variable must be an object"))?;
    let (_, _, allowed) = operation.shape();
    if let Some(k) = data.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(GatewayError::bad_request(
            Reason::InvalidField,
            format!("variables.{variable}.{k} is not accepted for {op_name}"),
        ));
    }
    Ok(Request {
        operation,
        body,
        variable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GET_RUN: &str = r#"
      query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
        mlflowGetRun(input: $data) {
          apiError { code message __typename }
          run { info { runUuid experimentId } experiment { name tags { key value } }
                modelVersions { name version } __typename }
          __typename
        }
      }"#;

    fn body(op: &str, query: &str, data: Value) -> Vec<u8> {
        json!({"operationName": op, "query": query, "variables": {"data": data}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn the_ui_get_run_query_is_accepted() {
        let r = parse(&body("GetRun", GET_RUN, json!({"runId": "abc"}))).unwrap();
        assert_eq!(r.operation, Operation::GetRun);
        assert_eq!(r.data().get("runId"), Some(&json!("abc")));
    }

    #[test]
    fn the_ui_experiment_query_uses_input() {
        let q = r#"query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) @component(name: "x") {
            mlflowGetExperiment(input: $input) { experiment { experimentId name } } }"#;
        let b = json!({"operationName": "MlflowGetExperimentQuery", "query": q,
                       "variables": {"input": {"experimentId": "3"}}});
        let r = parse(b.to_string().as_bytes()).unwrap();
        assert_eq!(r.data().get("experimentId"), Some(&json!("3")));
    }

    #[test]
    fn other_shapes_are_refused() {
        let bad = [
            // a second root field
            GET_RUN.replace(
                "__typename\n        }\n      }",
                "__typename }\n mlflowGetExperiment(input: $data) { experiment { name } } }",
            ),
            // inline literal ids instead of the variable
            GET_RUN.replace(
                "mlflowGetRun(input: $data)",
                "mlflowGetRun(input: {runId: \"x\"})",
            ),
            // an alias
            GET_RUN.replace("run { info", "r: run { info"),
            // a fragment spread
            GET_RUN.replace("apiError {", "...F apiError {"),
            // nested field arguments
            GET_RUN.replace("modelVersions {", "modelVersions(input: $data) {"),
            // a mutation
            GET_RUN.replace("query GetRun", "mutation GetRun"),
            // a different root field under the allowed name
            GET_RUN.replace("mlflowGetRun(", "mlflowSearchModelVersions("),
        ];
        for q in bad {
            let e = parse(&body("GetRun", &q, json!({"runId": "abc"}))).unwrap_err();
            assert_eq!(e.status(), 403, "{q}");
        }
        assert!(parse(&body("Other", GET_RUN, json!({}))).is_err());
        // The root field must take the declared variable.
        let renamed = GET_RUN.replace("($data:", "($input:");
        assert!(parse(&body("GetRun", &renamed, json!({"runId": "a"}))).is_err());
        let e = parse(&body(
            "GetRun",
            GET_RUN,
            json!({"runId": "a", "experimentIds": ["1"]}),
        ))
        .unwrap_err();
        assert_eq!(e.reason, Reason::InvalidField);
        let extra = json!({"operationName": "GetRun", "query": GET_RUN, "variables": {"data": {}}, "extensions": {}});
        assert!(parse(extra.to_string().as_bytes()).is_err());
    }
}
