-- wrk script: the UI's read burst, alternating runs/search and get-history-bulk-interval.
local run_id = os.getenv("RUN_ID")
local exp_id = os.getenv("EXPERIMENT_ID")
local auth = os.getenv("AUTH_HEADER") or ""
local n = 0
-- wrk.format replaces wrk.headers when given a table, so every header lives in wrk.headers.
wrk.headers["Content-Type"] = "application/json"
if auth ~= "" then wrk.headers["Authorization"] = auth end

request = function()
  n = n + 1
  if n % 2 == 1 then
    return wrk.format("POST", "/api/2.0/mlflow/runs/search", nil,
      string.format('{"experiment_ids":["%s"],"max_results":50}', exp_id))
  end
  return wrk.format("GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=" .. run_id ..
    "&metric_key=loss&max_results=100", nil, nil)
end
