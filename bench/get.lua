-- wrk script: GET of one path (PATH), no body: the cost of an instance that answers at once.
local path = os.getenv("PATH_UNDER_TEST") or "/"
request = function()
  return wrk.format("GET", path, nil, nil)
end
