//! `/graphql`, restricted to the four read operations the MLflow UI sends (GetRun, SearchRuns,
//! MlflowGetExperimentQuery, GetMetricHistoryBulkInterval).
//!
//! The query document is parsed with `apollo-parser`, a spec-conformant GraphQL parser, and
//! never with a hand-written lexer: a lexer that disagrees with graphql-core (which MLflow runs)
//! about where a comment, string or token ends can hide a second root field from the gateway
//! (issue 16: a `#` comment ended by a bare `\r`). The gateway then decides on the parsed
//! document: exactly one named `query` operation with the expected name, one variable of the
//! operation's input type, one root field taking `input: $variable`, and below it plain field
//! selections only (no aliases, arguments, directives or fragments), so the ids that matter can
//! only come from the variable, where the gateway checks them like the matching REST route.
//!
//! MLflow never sees the client's query bytes: the gateway forwards a document it re-prints
//! from what it checked (names only), with `operationName` pinned to the checked operation and
//! only the checked variable. Whatever the client wrote around the checked shape, comments,
//! commas, BOMs, the UI's informational `@component` directive, is dropped.

use crate::error::{GatewayError, Reason};
use crate::mlflow::json::parse_object;
use apollo_parser::cst;
use serde_json::{Map, Value};

/// Longest query document accepted.
const MAX_QUERY_BYTES: usize = 64 * 1024;
/// Most lexer tokens accepted: bounds the parser's work on a hostile document (the UI's
/// largest query has a few hundred).
const MAX_TOKENS: usize = 10_000;
/// The parser's own nesting bound (stack depth), above anything an accepted query needs.
const MAX_RECURSION: usize = 64;
/// Deepest selection nesting accepted, counting the operation's selection set as 1 as MLflow
/// does (`graphql_no_batching._MAX_DEPTH` is 10).
const MAX_DEPTH: usize = 10;
/// Most field selections accepted (MLflow's own limit is 1000).
const MAX_SELECTIONS: usize = 1000;

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
    /// The operation name the UI sends (and the gateway forwards).
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetRun => "GetRun",
            Operation::SearchRuns => "SearchRuns",
            Operation::GetExperiment => "MlflowGetExperimentQuery",
            Operation::GetMetricHistoryBulkInterval => "GetMetricHistoryBulkInterval",
        }
    }
    /// (root field, input type, allowed `variables.<variable>` keys)
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

/// A checked GraphQL request: the operation, the body to forward (built by the gateway:
/// `operationName`, the re-printed `query` and the one variable), and the name of that variable
/// (`data`, or `input` in the UI's experiment query), whose object holds the ids.
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
    /// The re-printed query document that will be forwarded.
    pub fn query(&self) -> &str {
        self.body.get("query").and_then(Value::as_str).unwrap_or("")
    }
    /// The JSON body to forward to MLflow.
    pub fn into_body(self) -> Vec<u8> {
        Value::Object(self.body).to_string().into_bytes()
    }
}

fn refuse(msg: &str) -> GatewayError {
    GatewayError::new(
        Reason::RouteDenied,
        format!("this GraphQL request is not permitted through the gateway: {msg}"),
    )
}

/// A checked field selection below the root field: a name and its own selections, nothing
/// else. This, not the client's text, is what MLflow receives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    name: String,
    selections: Vec<Field>,
}

/// The checked document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckedDocument {
    operation: Operation,
    variable: String,
    selections: Vec<Field>,
}

impl CheckedDocument {
    /// Prints the document MLflow will execute: one query operation, one variable, one root
    /// field taking it, and the checked selections. Every piece is a checked GraphQL name, so
    /// nothing needs escaping.
    fn print(&self) -> String {
        let (root, input_type, _) = self.operation.shape();
        let v = &self.variable;
        let mut out = format!(
            "query {}(${v}: {input_type}!) {{ {root}(input: ${v}) ",
            self.operation.name()
        );
        print_selections(&self.selections, &mut out);
        out.push_str(" }");
        out
    }
}

fn print_selections(fields: &[Field], out: &mut String) {
    out.push('{');
    for f in fields {
        out.push(' ');
        out.push_str(&f.name);
        if !f.selections.is_empty() {
            out.push(' ');
            print_selections(&f.selections, out);
        }
    }
    out.push_str(" }");
}

/// `Name` of the GraphQL spec, checked again here although the lexer produced it: the printer
/// relies on it.
fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c == b'_' || c.is_ascii_alphabetic())
        && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

fn name_text(n: Option<cst::Name>) -> Result<String, GatewayError> {
    let text = n
        .and_then(|n| n.ident_token())
        .map(|t| t.text().to_string())
        .ok_or_else(|| refuse("unexpected query shape"))?;
    if is_name(&text) {
        Ok(text)
    } else {
        Err(refuse("unexpected query shape"))
    }
}

/// Exactly one item, or `None`.
fn single<T>(mut it: impl Iterator<Item = T>) -> Option<T> {
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// The UI's `@component(name: "...")` on the operation: informational (MLflow declares it for
/// compatibility and ignores it); accepted and dropped. Any other directive is refused.
fn check_component(d: cst::Directive) -> Result<(), GatewayError> {
    let bad = || refuse("only the UI's @component directive is allowed");
    if name_text(d.name())? != "component" {
        return Err(bad());
    }
    let arg = d
        .arguments()
        .and_then(|a| single(a.arguments()))
        .ok_or_else(bad)?;
    if name_text(arg.name())? != "name" || !matches!(arg.value(), Some(cst::Value::StringValue(_)))
    {
        return Err(bad());
    }
    Ok(())
}

/// Plain field selections: no aliases, arguments, directives or fragments.
fn check_selections(
    set: cst::SelectionSet,
    depth: usize,
    count: &mut usize,
) -> Result<Vec<Field>, GatewayError> {
    if depth > MAX_DEPTH {
        return Err(refuse("query is nested too deeply"));
    }
    let mut out = Vec::new();
    for sel in set.selections() {
        let cst::Selection::Field(f) = sel else {
            return Err(refuse("fragments are not allowed"));
        };
        if f.alias().is_some() {
            return Err(refuse("aliases are not allowed"));
        }
        if f.arguments().is_some() {
            return Err(refuse("arguments are only allowed on the root field"));
        }
        if f.directives().is_some() {
            return Err(refuse("directives are not allowed on fields"));
        }
        *count += 1;
        if *count > MAX_SELECTIONS {
            return Err(refuse("query selects too many fields"));
        }
        let name = name_text(f.name())?;
        let selections = match f.selection_set() {
            Some(s) => check_selections(s, depth + 1, count)?,
            None => Vec::new(),
        };
        out.push(Field { name, selections });
    }
    if out.is_empty() {
        return Err(refuse("empty selection"));
    }
    Ok(out)
}

/// Parses `query` with a spec-conformant parser and checks it is exactly the shape of `op`.
fn check_document(query: &str, op: Operation) -> Result<CheckedDocument, GatewayError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(refuse("query is too large"));
    }
    let (root, input_type, _) = op.shape();
    let shape = || refuse("unexpected query shape");
    let tree = apollo_parser::Parser::new(query)
        .token_limit(MAX_TOKENS)
        .recursion_limit(MAX_RECURSION)
        .parse();
    if tree.errors().next().is_some() {
        return Err(refuse("the query is not a valid GraphQL document"));
    }
    let Some(cst::Definition::OperationDefinition(o)) = single(tree.document().definitions())
    else {
        return Err(refuse("exactly one operation and no fragments are allowed"));
    };
    if o.operation_type().and_then(|t| t.query_token()).is_none() {
        return Err(refuse("only a named query operation is allowed"));
    }
    if name_text(o.name())? != op.name() {
        return Err(refuse("the operation's name must be operationName"));
    }

    // One variable, `$v: <InputType>!`, no default value or directives.
    let v = o
        .variable_definitions()
        .and_then(|v| single(v.variable_definitions()))
        .ok_or_else(|| refuse("the query must declare exactly one variable"))?;
    if v.default_value().is_some() || v.directives().is_some() {
        return Err(shape());
    }
    let variable = name_text(v.variable().and_then(|v| v.name()))?;
    let Some(cst::Type::NonNullType(t)) = v.ty() else {
        return Err(shape());
    };
    if t.list_type().is_some() || name_text(t.named_type().and_then(|n| n.name()))? != input_type {
        return Err(shape());
    }

    if let Some(ds) = o.directives() {
        let mut n = 0;
        for d in ds.directives() {
            check_component(d)?;
            n += 1;
        }
        if n > 1 {
            return Err(refuse("only the UI's @component directive is allowed"));
        }
    }

    // One root field, `root(input: $v) { ... }`.
    let Some(cst::Selection::Field(f)) = o.selection_set().and_then(|s| single(s.selections()))
    else {
        return Err(refuse("exactly one root field is allowed"));
    };
    if f.alias().is_some() || f.directives().is_some() || name_text(f.name())? != root {
        return Err(shape());
    }
    let arg = f
        .arguments()
        .and_then(|a| single(a.arguments()))
        .ok_or_else(shape)?;
    let Some(cst::Value::Variable(arg_var)) = arg.value() else {
        return Err(refuse("ids must come from the query's variable"));
    };
    if name_text(arg.name())? != "input" || name_text(arg_var.name())? != variable {
        return Err(shape());
    }
    let mut count = 1;
    let selections = check_selections(f.selection_set().ok_or_else(shape)?, 2, &mut count)?;
    Ok(CheckedDocument {
        operation: op,
        variable,
        selections,
    })
}

/// Parses and checks a `/graphql` POST body; the returned request's body is the one to forward.
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
    let checked = check_document(query, operation)?;
    let variable = checked.variable.clone();
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
        return Err(GatewayError::new(
            Reason::InvalidField,
            format!("variables.{variable}.{k} is not accepted for {op_name}"),
        ));
    }
    let mut vars_out = Map::new();
    vars_out.insert(variable.clone(), Value::Object(data.clone()));
    let mut out = Map::new();
    out.insert(
        "operationName".into(),
        Value::String(operation.name().into()),
    );
    out.insert("query".into(), Value::String(checked.print()));
    out.insert("variables".into(), Value::Object(vars_out));
    Ok(Request {
        operation,
        body: out,
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

    fn get_run(query: &str) -> Result<Request, GatewayError> {
        parse(&body("GetRun", query, json!({"runId": "abc"})))
    }

    #[test]
    fn the_ui_get_run_query_is_accepted_and_re_printed() {
        let r = get_run(GET_RUN).unwrap();
        assert_eq!(r.operation, Operation::GetRun);
        assert_eq!(r.data().get("runId"), Some(&json!("abc")));
        assert_eq!(
            r.query(),
            "query GetRun($data: MlflowGetRunInput!) { mlflowGetRun(input: $data) { \
             apiError { code message __typename } run { info { runUuid experimentId } \
             experiment { name tags { key value } } modelVersions { name version } \
             __typename } __typename } }"
        );
        assert_eq!(r.body.get("operationName"), Some(&json!("GetRun")));
        assert_eq!(r.body.len(), 3);
    }

    #[test]
    fn the_ui_experiment_query_uses_input() {
        let q = r#"query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) @component(name: "x") {
            mlflowGetExperiment(input: $input) { experiment { experimentId name } } }"#;
        let b = json!({"operationName": "MlflowGetExperimentQuery", "query": q,
                       "variables": {"input": {"experimentId": "3"}}});
        let r = parse(b.to_string().as_bytes()).unwrap();
        assert_eq!(r.data().get("experimentId"), Some(&json!("3")));
        assert!(r.query().starts_with(
            "query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) { \
             mlflowGetExperiment(input: $input) {"
        ));
    }

    /// Issue 16: a `#` comment ended by a bare `\r` (a GraphQL line terminator) hid a second
    /// root field from the hand-written lexer, which ended comments at `\n` only.
    #[test]
    fn a_comment_ended_by_a_bare_carriage_return_does_not_hide_a_root_field() {
        for eol in ["\r", "\r\n", "\n"] {
            let q = format!(
                "query GetRun($data: MlflowGetRunInput!) {{ mlflowGetRun(input: $data) {{ run {{ info {{ runUuid }} }} }} # c{eol}\
                 x: mlflowGetRun(input: {{runId: \"victim\"}}) {{ run {{ info {{ runUuid }} }} }}\n}}"
            );
            let e = get_run(&q).unwrap_err();
            assert_eq!(e.status(), 403, "{q:?}");
        }
        // The comment itself, whatever ends it, is fine and does not reach MLflow.
        for eol in ["\r", "\r\n", "\n"] {
            let q = format!(
                "query GetRun($data: MlflowGetRunInput!) {{ # c{eol} mlflowGetRun(input: $data) {{ # d{eol} run {{ info {{ runUuid }} }} }} }}"
            );
            let r = get_run(&q).unwrap();
            assert!(!r.query().contains('#'));
        }
    }

    #[test]
    fn ignored_tokens_and_literals_are_lexed_as_the_spec_says() {
        let ok = [
            // BOM, commas, tabs and every line terminator are insignificant
            "\u{feff}query GetRun($data: MlflowGetRunInput!),{\r\tmlflowGetRun(input: $data),{,run{info{runUuid,__typename}}}\r\n}",
            // a block string, with quotes and a `#`, in the UI directive
            "query GetRun($data: MlflowGetRunInput!) @component(name: \"\"\"a \"\" } # \r b\"\"\") { mlflowGetRun(input: $data) { run { info { runUuid } } } }",
            // unicode escapes in the directive's string
            "query GetRun($data: MlflowGetRunInput!) @component(name: \"\\u007D \\u0023\") { mlflowGetRun(input: $data) { run { info { runUuid } } } }",
        ];
        for q in ok {
            let r = get_run(q).unwrap_or_else(|e| panic!("{q:?}: {e:?}"));
            assert_eq!(
                r.query(),
                "query GetRun($data: MlflowGetRunInput!) { mlflowGetRun(input: $data) { run { info { runUuid"
                    .to_string()
                    + if q.contains("__typename") {
                        " __typename } } } }"
                    } else {
                        " } } } }"
                    }
            );
        }
        let bad = [
            // a string hiding nothing from a real lexer but closing early for a naive one
            "query GetRun($data: MlflowGetRunInput!) @component(name: \"\\\" } x: mlflowGetRun\") { mlflowGetRun(input: $data) { run { info { runUuid } } } } }",
            // an unterminated block string
            "query GetRun($data: MlflowGetRunInput!) @component(name: \"\"\"a) { mlflowGetRun(input: $data) { run } }",
            // a bare control character is not GraphQL
            "query GetRun($data: MlflowGetRunInput!) { mlflowGetRun(input: $data) { run\u{1} { info { runUuid } } } }",
        ];
        for q in bad {
            assert!(get_run(q).is_err(), "{q:?}");
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        let bad = [
            // a second root field
            GET_RUN.replace(
                "__typename\n        }\n      }",
                "__typename }\n mlflowGetExperiment(input: $data) { experiment { name } } }",
            ),
            // `__typename` or introspection next to the root field
            GET_RUN.replace("mlflowGetRun(input", "__typename mlflowGetRun(input"),
            GET_RUN.replace(
                "mlflowGetRun(input",
                "__schema { types { name } } mlflowGetRun(input",
            ),
            // inline literal ids instead of the variable
            GET_RUN.replace(
                "mlflowGetRun(input: $data)",
                "mlflowGetRun(input: {runId: \"x\"})",
            ),
            // an alias, on the root field or below
            GET_RUN.replace("run { info", "r: run { info"),
            GET_RUN.replace("mlflowGetRun(input", "mlflowGetRun: mlflowGetRun(input"),
            // fragments: spread, definition, inline
            GET_RUN.replace("apiError {", "...F apiError {") + " fragment F on X { a }",
            GET_RUN.to_string() + " fragment F on X { a }",
            GET_RUN.replace("apiError {", "... on MlflowGetRunResponse { run { info { runUuid } } } apiError {"),
            GET_RUN.replace("mlflowGetRun(input", "... { x: mlflowGetRun(input: {runId: \"v\"}) { run { info { runUuid } } } } mlflowGetRun(input"),
            // directives on fields, other directives on the operation
            GET_RUN.replace("run { info", "run @include(if: true) { info"),
            GET_RUN.replace("@component(name: \"MLflow.ExperimentRunTracking\")", "@skip(if: true)"),
            GET_RUN.replace(") @component", ") @component(name: \"a\") @component"),
            GET_RUN.replace("(name: \"MLflow.ExperimentRunTracking\")", "(name: $data)"),
            // nested field arguments
            GET_RUN.replace("modelVersions {", "modelVersions(input: $data) {"),
            // a mutation, a subscription, an anonymous or shorthand query
            GET_RUN.replace("query GetRun", "mutation GetRun"),
            GET_RUN.replace("query GetRun", "subscription GetRun"),
            GET_RUN.replace("query GetRun", "query"),
            "{ mlflowGetRun(input: {runId: \"x\"}) { run { info { runUuid } } } }".to_string(),
            // a second operation
            GET_RUN.to_string() + " query Other { test { output } }",
            GET_RUN.to_string() + " query GetRun($data: MlflowGetRunInput!) { mlflowGetRun(input: $data) { run { info { runUuid } } } }",
            // a different root field under the allowed name
            GET_RUN.replace("mlflowGetRun(", "mlflowSearchModelVersions("),
            // variable definitions: a default value, a second variable, a list or nullable type
            GET_RUN.replace("MlflowGetRunInput!)", "MlflowGetRunInput! = {runId: \"v\"})"),
            GET_RUN.replace("MlflowGetRunInput!)", "MlflowGetRunInput!, $o: String)"),
            GET_RUN.replace("MlflowGetRunInput!)", "[MlflowGetRunInput!]!)"),
            GET_RUN.replace("MlflowGetRunInput!)", "MlflowGetRunInput)"),
            // a second argument on the root field
            GET_RUN.replace("(input: $data)", "(input: $data, x: 1)"),
            // empty or broken documents
            String::new(),
            "# only a comment".to_string(),
            GET_RUN.replace("__typename\n        }\n      }", "__typename"),
        ];
        for q in bad {
            let e = get_run(&q).unwrap_err();
            assert_eq!(e.status(), 403, "{q}");
        }
        assert!(parse(&body("Other", GET_RUN, json!({}))).is_err());
        // The operation's name must be operationName.
        let e = parse(&body("SearchRuns", GET_RUN, json!({}))).unwrap_err();
        assert_eq!(e.status(), 403);
        // The root field must take the declared variable.
        let renamed = GET_RUN.replace("($data:", "($input:");
        assert!(get_run(&renamed).is_err());
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

    #[test]
    fn limits_are_enforced() {
        let mut deep = "a".to_string();
        for _ in 0..9 {
            deep = format!("a {{ {deep} }}");
        }
        let q = |sel: &str| {
            format!("query GetRun($data: MlflowGetRunInput!) {{ mlflowGetRun(input: $data) {{ {sel} }} }}")
        };
        // depth 10 counting the operation's selection set as MLflow does
        let nine = deep.replacen("a { ", "", 1).replacen('}', "", 1);
        assert!(get_run(&q(&nine)).is_ok(), "{nine}");
        assert!(get_run(&q(&deep)).is_err());
        let wide = "a ".repeat(MAX_SELECTIONS);
        assert!(get_run(&q(&wide)).is_err());
        assert!(get_run(&q(&"a ".repeat(MAX_SELECTIONS - 1))).is_ok());
        let nested = "{".repeat(5000);
        assert!(get_run(&q(&nested)).is_err());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// Pieces of GraphQL, tricky ones included, from which documents are put together.
        const PIECES: &[&str] = &[
            "query",
            "GetRun",
            "($data: MlflowGetRunInput!)",
            "$data",
            "data",
            "mlflowGetRun",
            "(input: $data)",
            "mlflowSearchRuns",
            "{",
            "}",
            "(",
            ")",
            ":",
            "!",
            "$",
            "@",
            "...",
            "=",
            "[",
            "]",
            "|",
            "&",
            "run",
            "info",
            "runUuid",
            "__typename",
            "__schema",
            "x:",
            "fragment F on X",
            "...F",
            "... on X",
            "@component(name: \"c\")",
            "@include(if: true)",
            "#",
            "# c\r",
            "# c\n",
            "\r",
            "\n",
            "\r\n",
            "\u{feff}",
            ",",
            " ",
            "\t",
            "\"s\"",
            "\"\"\"b\r\"\"\"",
            "\"\\u0041\"",
            "\"\\\"\"",
            "\"\"\"",
            "1",
            "1.5e3",
            "true",
            "null",
            "mutation",
            "subscription",
            "query Q",
            "{runId: \"v\"}",
            "\u{2028}",
            "é",
            "\u{0}",
        ];

        fn documents() -> impl Strategy<Value = String> {
            let piece = proptest::sample::select(PIECES);
            // Either a soup of pieces, or the UI query with pieces inserted at a place.
            prop_oneof![
                proptest::collection::vec(piece.clone(), 0..40).prop_map(|v| v.join(" ")),
                (0..=GET_RUN.len(), proptest::collection::vec(piece, 1..4)).prop_map(|(at, v)| {
                    let at = (0..=at)
                        .rev()
                        .find(|i| GET_RUN.is_char_boundary(*i))
                        .unwrap_or(0);
                    format!("{}{}{}", &GET_RUN[..at], v.concat(), &GET_RUN[at..])
                }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512),
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// No input panics; an accepted document re-prints to one that is accepted again
            /// as the same checked operation (the re-print is a fixed point).
            #[test]
            fn accepted_documents_re_print_to_themselves(q in documents()) {
                if let Ok(r) = get_run(&q) {
                    let again = get_run(r.query()).expect("the re-printed document is accepted");
                    prop_assert_eq!(&again, &r);
                    let c = check_document(&q, Operation::GetRun).expect("checked");
                    prop_assert_eq!(c.print(), r.query());
                    prop_assert!(!r.query().contains('#') && !r.query().contains('@'));
                }
            }

            /// Arbitrary text never panics the parser or the check.
            #[test]
            fn arbitrary_text_does_not_panic(q in ".{0,200}") {
                let _ = get_run(&q);
            }
        }
    }
}
