-- Shared by every scenario script: count each response's status, hand out
-- credentials from a file (one per request when they are single-use), and write
-- the run's figures as JSON for bench/run.py.
--
-- Environment (set by bench/run.py):
--   BENCH_FILE    credentials, one per line (optional)
--   BENCH_ONCE    "1": each line is used once (refresh tokens are single-use)
--   BENCH_EXPECT  comma-separated statuses that count as success (default 200)
--   BENCH_RESULT  where done() writes the JSON summary
--   BENCH_THREADS number of wrk threads (-t), to split single-use lines between them

local M = {}

local threads = {}

function M.lines(path)
  local out = {}
  if not path or path == "" then return out end
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

function M.split_tab(line)
  local a, b = line:match("^([^\t]*)\t(.*)$")
  if a then return a, b end
  return line, ""
end

-- Called in the main state, once per thread, before the run.
function M.setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

-- Called in each thread's own state.
function M.init()
  statuses = {}
  sent = 0
  exhausted = 0
  local all = M.lines(os.getenv("BENCH_FILE"))
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  M.once = os.getenv("BENCH_ONCE") == "1"
  -- Thread k takes lines k+1, k+1+n, ...: single-use lines are never shared.
  M.creds = {}
  for i = tid + 1, #all, n do M.creds[#M.creds + 1] = all[i] end
  M.next = 0
end

-- The next credential line; single-use lines are never handed out twice.
function M.cred()
  sent = sent + 1
  if #M.creds == 0 then return nil end
  M.next = M.next + 1
  if M.next > #M.creds then
    if M.once then exhausted = exhausted + 1 end
    M.next = 1
  end
  return M.creds[M.next]
end

function M.response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local function json_counts(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = string.format('"%s": %d', tostring(k), v) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function M.done(summary, latency, requests)
  local total, total_sent, total_exhausted = {}, 0, 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      total[status] = (total[status] or 0) + count
    end
    total_sent = total_sent + (thread:get("sent") or 0)
    total_exhausted = total_exhausted + (thread:get("exhausted") or 0)
  end
  local e = summary.errors
  local out = io.open(os.getenv("BENCH_RESULT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "sent": %d, "exhausted": %d, "statuses": %s, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, total_sent, total_exhausted, json_counts(total),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  out:close()
end

-- Install the hooks every script shares; a script adds its own request().
function M.install()
  setup = M.setup
  init = M.init
  response = M.response
  done = M.done
end

return M
