//! `/graphql`: the UI's read operations, decided on the parsed document (`mlflow::graphql`);
//! the ids in `variables.data` are checked like the matching REST route.

use super::fields::*;
use super::Draft;
use crate::error::GatewayError;
use crate::mlflow::graphql::{self, Operation};
use crate::mlflow::json::{opt_str, opt_str_list};
use crate::mlflow::ownership::{valid_experiment_id, valid_run_id, Resource};
use crate::mlflow::responses::ResponseFilter;
use serde_json::{Map, Value};

/// `/graphql`: the checked UI operation's ids, as for the matching REST route.
pub(super) fn graphql(d: &mut Draft) -> Result<(), GatewayError> {
    let req = d.req;
    let (tenant, key) = (d.tenant(), d.tag_key());
    let mut g = graphql::parse(&req.body)?;
    let data = g.data();
    let text = |k: &str| -> Result<Option<String>, GatewayError> {
        Ok(opt_str(data, k)?
            .filter(|s| !s.is_empty())
            .map(str::to_string))
    };
    match g.operation {
        Operation::GetRun => {
            let id = pick_run(text("runId")?, text("runUuid")?)?;
            d.checks.push(Resource::Run(id));
        }
        Operation::GetExperiment => {
            let id = text("experimentId")?.ok_or_else(|| missing("experimentId"))?;
            if !valid_experiment_id(&id) {
                return Err(invalid("experimentId"));
            }
            d.checks.push(Resource::Experiment(id));
        }
        Operation::GetMetricHistoryBulkInterval => {
            let ids = opt_str_list(data, "runIds")?;
            if ids.is_empty() || ids.len() > MAX_IDS || !ids.iter().all(|i| valid_run_id(i)) {
                return Err(invalid("runIds"));
            }
            d.checks.extend(ids.into_iter().map(Resource::Run));
        }
        Operation::SearchRuns => {
            let mut m = Map::new();
            m.insert(
                "experiment_ids".into(),
                data.get("experimentIds").cloned().unwrap_or(Value::Null),
            );
            let ids = experiment_ids(&m)?;
            let f = scoped_filter(key, tenant, opt_str(data, "filter")?)?;
            d.checks
                .extend(ids.iter().cloned().map(Resource::Experiment));
            if let Some(d) = g.data_mut() {
                d.insert("filter".into(), Value::String(f));
            }
            d.filter = Some(ResponseFilter::GraphqlRuns {
                experiment_ids: ids,
            });
        }
    }
    // Always the gateway's own body (re-printed query, pinned operation, the checked
    // variable), never the client's bytes.
    d.graphql_body = Some(g.into_body());
    Ok(())
}
