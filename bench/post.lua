-- wrk script: POST /v1/messages with a fixed JSON body and Basic auth.
-- The Authorization header value comes from BENCH_AUTHORIZATION (bench/run.py builds it), so the
-- bare app receives byte-for-byte the same request as Tidings (it ignores the header).
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

-- Counting exact non-202 answers needs wrk's response() hook, which makes wrk parse every
-- response into Lua and slows it; off by default (wrk still counts status >= 400 by itself).
local count_status = os.getenv("BENCH_COUNT_STATUS") == "1"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
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
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,'
      .. '"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,"status_errors":%.0f,'
      .. '"timeouts":%.0f,"non_202":%.0f,'
      .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p999":%.0f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, counted,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
