-- wrk script: POST runs/log-metric (or log-batch with BATCH=100) to one run; auth header from env.
local run_id = os.getenv("RUN_ID")
local auth = os.getenv("AUTH_HEADER") or ""
local batch = tonumber(os.getenv("BATCH") or "0")
local step = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if auth ~= "" then wrk.headers["Authorization"] = auth end

request = function()
  step = step + 1
  if batch > 0 then
    local parts = {}
    for i = 1, batch do
      parts[i] = string.format('{"key":"b%d","value":%d.5,"timestamp":%d,"step":%d}', i, step, 1700000000000 + step, step)
    end
    return wrk.format(nil, "/api/2.0/mlflow/runs/log-batch", nil,
      string.format('{"run_id":"%s","metrics":[%s]}', run_id, table.concat(parts, ",")))
  end
  return wrk.format(nil, "/api/2.0/mlflow/runs/log-metric", nil,
    string.format('{"run_id":"%s","key":"loss","value":%d.25,"timestamp":%d,"step":%d}', run_id, step, 1700000000000 + step, step))
end
