-- wrk script for the benchmark: each request from its own user, with that user's token, and every
-- answer's status counted (a fast wrong answer is a failure, not a result).
--   wrk -tT ... -s bench/wrk/requests.lua URL -- TOKENS_FILE METHOD BODY_TEMPLATE T
-- TOKENS_FILE: one "userId token" per line; thread k of T takes users k+1, k+1+T, ... and wraps around.
-- BODY_TEMPLATE: "{user}" is replaced by the user id ("-" for no body); so is USER_ID in the URL's path.
local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  users, tokens = {}, {}
  for line in io.lines(args[1]) do
    local user, token = line:match("^(%S+) (%S+)$")
    table.insert(users, user)
    table.insert(tokens, token)
  end
  method, template, stride = args[2], args[3], tonumber(args[4])
  statuses = {}
  first = index % #users + 1
  cursor = first
end

function request()
  local i = cursor
  cursor = cursor + stride
  if cursor > #users then cursor = first end
  local body = nil
  if template ~= "-" then body = template:gsub("{user}", users[i]) end
  local headers = { ["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json" }
  return wrk.format(method, (wrk.path:gsub("USER_ID", users[i])), headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do totals[status] = (totals[status] or 0) + n end
  end
  io.write("STATUSES")
  for status, n in pairs(totals) do io.write(string.format(" %d=%d", status, n)) end
  io.write(string.format("\nLATENCY_MS p50=%.2f p99=%.2f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
