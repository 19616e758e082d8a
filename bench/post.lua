-- wrk script: POST /v1/messages with a fixed JSON body, and Basic auth or a fresh Bearer JWT per request.
--
-- Basic: the Authorization header value comes from BENCH_AUTHORIZATION (bench/run.py builds it), so
-- the bare app receives byte-for-byte the same request as Tidings (it ignores the header). The
-- request is static: wrk builds it once.
--
-- JWT: BENCH_TOKENS_FILE names a file of one-use tokens, one per line (bench/tokens.py mints them).
-- Tidings refuses a jti it has seen, so every request takes the next unused line: thread k of
-- BENCH_THREADS takes lines BENCH_TOKENS_START + k, + k + T, + k + 2T, ... and never a line twice.
-- When its lines run out, a thread sends "Bearer token-pool-exhausted" (a 401, so an error) and
-- counts it; done() reports the count, and bench/run.py flags the row. No token is ever reused.
--
-- done() prints one machine-readable line, "BENCH_RESULT {json}", that bench/run.py parses.

wrk.method = "POST"
wrk.path = "/v1/messages"
wrk.body = '{"channel":"sms","message_type":"text","to":"447700900000","from":"Acme",'
    .. '"text":"Hello from the benchmark","client_ref":"bench"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

local tokens_path = os.getenv("BENCH_TOKENS_FILE")
if tokens_path == "" then
  tokens_path = nil
end

-- BENCH_BODIES_FILE: one JSON body per line (the mixed-channel payload); each request takes the
-- next, round and round. Unset: the static SMS body above.
local bodies = nil
local bodies_path = os.getenv("BENCH_BODIES_FILE")
if bodies_path and bodies_path ~= "" then
  bodies = {}
  for line in io.lines(bodies_path) do
    if line ~= "" then
      table.insert(bodies, line)
    end
  end
end
local next_body = 0
local next_token = nil  -- with tokens: takes this thread's next unused one (set below)

-- Counting exact non-202 answers needs wrk's response() hook, which makes wrk parse every
-- response into Lua and slows it; off by default (wrk still counts status >= 400 by itself).
local count_status = os.getenv("BENCH_COUNT_STATUS") == "1"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads - 1)  -- 0-based: which lines of the token file are this thread's
end

if tokens_path then
  -- Per-thread state (each wrk thread has its own Lua state); read back by done() via thread:get.
  used = 0       -- tokens taken by this thread
  exhausted = 0  -- requests this thread sent without a token
  local stride = tonumber(os.getenv("BENCH_THREADS") or "1")
  local start = tonumber(os.getenv("BENCH_TOKENS_START") or "0")
  local file = nil

  function init(args)
    file = assert(io.open(tokens_path, "r"))
    for _ = 1, start + (thread_index or 0) do  -- skip what earlier runs and the other threads own
      if not file:read("*l") then
        break
      end
    end
  end

  next_token = function()
    local token = file:read("*l")
    if not token or token == "" then
      return nil
    end
    used = used + 1
    for _ = 2, stride do  -- the lines in between belong to the other threads
      file:read("*l")
    end
    return token
  end
end

local function rotate_body()
  if bodies then
    next_body = next_body % #bodies + 1
    wrk.body = bodies[next_body]
  end
end

if tokens_path then
  function request()
    local token = next_token()
    if token then
      wrk.headers["Authorization"] = "Bearer " .. token
    else
      exhausted = exhausted + 1
      wrk.headers["Authorization"] = "Bearer token-pool-exhausted"
    end
    rotate_body()
    return wrk.format()
  end
elseif bodies then
  function request()
    rotate_body()
    return wrk.format()
  end
end

if count_status then
  non_202 = 0
  function response(status, headers, body)
    if status ~= 202 then
      non_202 = non_202 + 1
    end
  end
end

function done(summary, latency, requests)
  local counted = -1
  if count_status then
    counted = 0
    for _, thread in ipairs(threads) do
      counted = counted + (thread:get("non_202") or 0)
    end
  end
  -- Tokens: how many were taken, how many requests went without one, and the first line (relative
  -- to BENCH_TOKENS_START) that no thread has taken, where the next run must start.
  local tokens_used, tokens_exhausted, tokens_next = -1, -1, -1
  if tokens_path then
    tokens_used, tokens_exhausted, tokens_next = 0, 0, 0
    local stride = #threads
    for _, thread in ipairs(threads) do
      local taken = thread:get("used") or 0
      local index = thread:get("thread_index") or 0
      tokens_used = tokens_used + taken
      tokens_exhausted = tokens_exhausted + (thread:get("exhausted") or 0)
      tokens_next = math.max(tokens_next, index + taken * stride)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,'
      .. '"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,"status_errors":%.0f,'
      .. '"timeouts":%.0f,"non_202":%.0f,'
      .. '"tokens_used":%.0f,"tokens_exhausted":%.0f,"tokens_next":%.0f,'
      .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p999":%.0f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, counted,
    tokens_used, tokens_exhausted, tokens_next,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
