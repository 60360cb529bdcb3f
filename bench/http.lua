-- sonde.http against its peers, on the same nginx in the same run:
-- sequential GETs (vs a plain libcurl easy loop and python3-httpx),
-- 50 concurrent tasks (vs a plain libcurl multi loop and wrk -t1 -c50),
-- and 10,000 requests in flight at once.
local bench = require("bench.lib")
local servers = require("specs.servers")
local http = require("sonde.http")
local process = require("sonde.process")
local task = require("sonde.task")
local loop = require("sonde.c.loop")

local build = loop.exe_path():match("^(.*)/[^/]+$")
local SEQ = tonumber(arg[1]) or 5000
local CONC = tonumber(arg[2]) or 50000
local FLIGHT = tonumber(arg[3]) or 10000

local ngx = servers.nginx()
local url = ngx.url .. "/small.json"

local function run_peer(argv)
  local code, out, err = process.run(argv)
  if code ~= 0 then error(table.concat(argv, " ") .. ": " .. err) end
  return out
end

-- sequential ------------------------------------------------------------
local c = http.client()
c:get(url) -- warm the connection
local t0 = task.now()
for _ = 1, SEQ do
  if c:get(url).status ~= 200 then error("bad status") end
end
local sonde_seq = SEQ / (task.now() - t0)
local easy_seq = SEQ / tonumber(run_peer { build .. "/bench_curl_easy", url, tostring(SEQ) })
local HTTPX = [[
import httpx, sys, time
n = int(sys.argv[2])
with httpx.Client() as c:
    c.get(sys.argv[1])
    t0 = time.perf_counter()
    for _ in range(n):
        assert c.get(sys.argv[1]).status_code == 200
    print(time.perf_counter() - t0)
]]
local httpx_n = math.max(1, math.floor(SEQ / 5))
local httpx_seq = httpx_n / tonumber(run_peer { "/usr/bin/python3", "-c", HTTPX, url, tostring(httpx_n) })
-- wrk on one connection: the round trip of this machine's loopback and
-- nginx, a ceiling for any sequential client.
local wrk1 = tonumber(run_peer({ "wrk", "-t1", "-c1", "-d3s", url }):match("Requests/sec:%s*([%d%.]+)"))
bench.report(string.format("sequential GETs, one task (%d)", SEQ), sonde_seq, "req/s")
bench.report("  plain libcurl easy loop", easy_seq, "req/s")
bench.report("  python3-httpx Client", httpx_seq, "req/s")
bench.report("  wrk -t1 -c1 -d3s (the ceiling)", wrk1, "req/s")
bench.report("  ratio sonde / libcurl easy", sonde_seq / easy_seq, "x", "goal: >= 0.8")
bench.report("  ratio sonde / httpx", sonde_seq / httpx_seq, "x", "goal: >= 10")
bench.report("  ratio wrk -c1 / httpx", wrk1 / httpx_seq, "x", "what any client could reach here")

-- 50 concurrent tasks ---------------------------------------------------
local per_task = math.floor(CONC / 50)
t0 = task.now()
local handles = {}
for i = 1, 50 do
  handles[i] = task.spawn(function()
    for _ = 1, per_task do
      if c:get(url).status ~= 200 then error("bad status") end
    end
  end)
end
for i = 1, 50 do handles[i]:join() end
local sonde_conc = per_task * 50 / (task.now() - t0)
local multi_conc = per_task * 50 / tonumber(run_peer { build .. "/bench_curl_multi", url, tostring(per_task * 50), "50" })
local multi_uv_conc = per_task * 50 /
  tonumber(run_peer { build .. "/bench_curl_multi_uv", url, tostring(per_task * 50), "50" })
local wrk_out = run_peer { "wrk", "-t1", "-c50", "-d3s", url }
local wrk_conc = tonumber(wrk_out:match("Requests/sec:%s*([%d%.]+)"))
bench.report(string.format("50 tasks, keep-alive (%d requests)", per_task * 50), sonde_conc, "req/s")
bench.report("  plain libcurl multi, 50 in flight", multi_conc, "req/s")
bench.report("  the same on libuv (socket_action)", multi_uv_conc, "req/s", "sonde's architecture, in C")
bench.report("  wrk -t1 -c50 -d3s", wrk_conc, "req/s")
bench.report("  ratio sonde / libcurl multi", sonde_conc / multi_conc, "x", "goal: >= 0.8")
bench.report("  ratio sonde / libcurl multi on libuv", sonde_conc / multi_uv_conc, "x")
bench.report("  ratio sonde / wrk", sonde_conc / wrk_conc, "x")

-- many in flight --------------------------------------------------------
local errors, ok_count = 0, 0
t0 = task.now()
handles = {}
for i = 1, FLIGHT do
  handles[i] = task.spawn(function()
    local fine, r = pcall(c.get, c, url, { timeout = 60 })
    if fine and r.status == 200 then ok_count = ok_count + 1 else errors = errors + 1 end
  end)
end
for i = 1, FLIGHT do handles[i]:join() end
bench.report(string.format("%d requests in flight at once", FLIGHT), task.now() - t0, "s",
  string.format("%d ok, %d errors", ok_count, errors))
bench.report("  peak RSS", bench.peak_rss_mb(), "MiB")
