-- wrk script: POST runs/log-metric (or log-batch with BATCH=100) to one run; auth header from env
-- (AUTH_HEADER), or a dev-mode tenant header (TENANT). Each wrk thread gets its own timestamps,
-- so two threads never log the same (key, timestamp, step): MLflow refuses such a duplicate
-- within one batch race with a 500, which is MLflow's answer to the load script, not to the
-- target under test.
local run_id = os.getenv("RUN_ID")
local auth = os.getenv("AUTH_HEADER") or ""
local tenant = os.getenv("TENANT") or ""
local batch = tonumber(os.getenv("BATCH") or "0")
local step = 0
local threads = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if auth ~= "" then wrk.headers["Authorization"] = auth end
if tenant ~= "" then wrk.headers["X-Tenant"] = tenant end

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

request = function()
  step = step + 1
  local ts = 1700000000000 + step * 16 + (tid or 0)
  if batch > 0 then
    local parts = {}
    for i = 1, batch do
      parts[i] = string.format('{"key":"b%d","value":%d.5,"timestamp":%d,"step":%d}', i, step, ts, step)
    end
    return wrk.format(nil, "/api/2.0/mlflow/runs/log-batch", nil,
      string.format('{"run_id":"%s","metrics":[%s]}', run_id, table.concat(parts, ",")))
  end
  return wrk.format(nil, "/api/2.0/mlflow/runs/log-metric", nil,
    string.format('{"run_id":"%s","key":"loss","value":%d.25,"timestamp":%d,"step":%d}', run_id, step, ts, step))
end
