-- sonde.http against its peers, on the same nginx in the same run:
-- sequential GETs (vs a plain libcurl easy loop and python3-httpx),
-- 50 concurrent tasks (vs a plain libcurl multi loop and wrk -t1 -c50),
-- and 10,000 requests in flight at once.
local bench = require("bench.lib")
local servers = require("specs.servers")
local http = require("sonde.http")
local task = require("sonde.task")
local loop = require("sonde.c.loop")

local build = loop.exe_path():match("^(.*)/[^/]+$")
local SEQ = tonumber(arg[1]) or 5000
local CONC = tonumber(arg[2]) or 50000
local FLIGHT = tonumber(arg[3]) or 10000

local ngx = servers.nginx()
local url = ngx.url .. "/small.json"


-- sequential ------------------------------------------------------------
-- Alternating rounds, medians: a single sample of a latency-bound loop on
-- a shared 2-core machine says more about the moment than about the code.
-- wrk on one connection is the round trip of this machine's loopback and
-- nginx: a ceiling for any sequential client.
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
-- sonde runs as a process of its own too, as every peer does: the process
-- that started nginx tends to share its CPU, which flatters a loop in it.
local SONDE_SEQ = [[
local http, task = require("sonde.http"), require("sonde.task")
local url, n = arg[1], tonumber(arg[2])
local c = http.client()
c:get(url) -- warm the connection
local t0 = task.now()
for _ = 1, n do
  if c:get(url).status ~= 200 then error("bad status") end
end
print(task.now() - t0)
]]
local function sonde_peer(script, ...)
  local argv = { loop.exe_path(), "run", "-", ... }
  argv.stdin = script
  return tonumber(bench.run(argv))
end

local ROUNDS = 5
local per_round = math.max(1, math.floor(SEQ / ROUNDS))
local httpx_n = math.max(1, math.floor(per_round / 5))
local seq_rounds, easy_rounds, httpx_rounds, wrk1_rounds = {}, {}, {}, {}
for r = 1, ROUNDS do
  seq_rounds[r] = per_round / sonde_peer(SONDE_SEQ, url, tostring(per_round))
  easy_rounds[r] = per_round / tonumber(bench.run { build .. "/bench_curl_easy", url, tostring(per_round) })
  httpx_rounds[r] = httpx_n / tonumber(bench.run { "/usr/bin/python3", "-c", HTTPX, url, tostring(httpx_n) })
  wrk1_rounds[r] = bench.wrk(url, 1, 1)
end
local sonde_seq, easy_seq = bench.median(seq_rounds), bench.median(easy_rounds)
local httpx_seq, wrk1 = bench.median(httpx_rounds), bench.median(wrk1_rounds)
bench.report(string.format("sequential GETs, one task (median of %d x %d)", ROUNDS, per_round), sonde_seq, "req/s")
bench.report("  plain libcurl easy loop", easy_seq, "req/s")
bench.report("  python3-httpx Client", httpx_seq, "req/s")
bench.report("  wrk -t1 -c1 -d1s (the ceiling)", wrk1, "req/s")
bench.report("  ratio sonde / libcurl easy", sonde_seq / easy_seq, "x", "goal: >= 0.8")
bench.report("  ratio sonde / httpx", sonde_seq / httpx_seq, "x", "goal: >= 10, or 0.8 of libcurl's")
bench.report("  ratio libcurl easy / httpx", easy_seq / httpx_seq, "x", "what a libcurl client reaches here")
bench.report("  ratio wrk -c1 / httpx", wrk1 / httpx_seq, "x", "what any client could reach here")
bench.goal(string.format("sequential GETs: sonde %.2fx a plain libcurl easy loop (goal >= 0.8)", sonde_seq / easy_seq),
  sonde_seq / easy_seq >= 0.8)
-- libcurl itself is the ceiling of a libcurl client: 10x httpx is the goal
-- only where plain libcurl reaches 12.5x; below, 0.8 of what it reaches.
local ceiling = easy_seq / httpx_seq
bench.goal(string.format("sequential GETs: sonde %.1fx httpx, plain libcurl %.1fx httpx "
  .. "(goal >= %.1f: 10, or 0.8 of libcurl's)", sonde_seq / httpx_seq, ceiling, math.min(10, 0.8 * ceiling)),
  sonde_seq / httpx_seq >= math.min(10, 0.8 * ceiling))

-- 50 concurrent tasks ---------------------------------------------------
local CONC_ROUNDS = 7
local per_task = math.max(1, math.floor(CONC / 50 / CONC_ROUNDS))
local n_conc = per_task * 50

local SONDE_CONC = [[
local http, task = require("sonde.http"), require("sonde.task")
local url, per_task = arg[1], tonumber(arg[2])
local c = http.client()
c:get(url)
local t0 = task.now()
local handles = {}
for i = 1, 50 do
  handles[i] = task.spawn(function()
    for _ = 1, per_task do
      if c:get(url).status ~= 200 then error("bad status") end
    end
  end)
end
for i = 1, 50 do handles[i]:join() end
print(task.now() - t0)
]]

-- Each round runs the three alternately; a round's ratio is sonde against
-- the faster C loop of that round, and the goal reads their median. CPU is
-- each process's own, start-up included (a few ms for sonde).
local rounds = { sonde = {}, multi = {}, uv = {}, ratio = {}, sonde_cpu = {}, multi_cpu = {}, uv_cpu = {} }
local function timed(argv, cpus)
  local out, cpu = bench.run_cpu(argv)
  cpus[#cpus + 1] = cpu / n_conc * 1e6
  return n_conc / tonumber(out:match("%S+"))
end
for r = 1, CONC_ROUNDS do
  local sonde_argv = { loop.exe_path(), "run", "-", url, tostring(per_task), stdin = SONDE_CONC }
  rounds.sonde[r] = timed(sonde_argv, rounds.sonde_cpu)
  rounds.multi[r] = timed({ build .. "/bench_curl_multi", url, tostring(n_conc), "50" }, rounds.multi_cpu)
  rounds.uv[r] = timed({ build .. "/bench_curl_multi_uv", url, tostring(n_conc), "50" }, rounds.uv_cpu)
  rounds.ratio[r] = rounds.sonde[r] / math.max(rounds.multi[r], rounds.uv[r])
end
local ratios = {}
for r = 1, CONC_ROUNDS do ratios[r] = string.format("%.2f", rounds.ratio[r]) end
local sonde_conc, multi_conc = bench.median(rounds.sonde), bench.median(rounds.multi)
local multi_uv_conc = bench.median(rounds.uv)
local wrk_conc = bench.wrk(url, 50, 3)
bench.report(string.format("50 tasks, keep-alive (median of %d x %d)", CONC_ROUNDS, n_conc), sonde_conc, "req/s",
  string.format("%.1f us CPU a request", bench.median(rounds.sonde_cpu)))
bench.report("  plain libcurl multi, 50 in flight", multi_conc, "req/s",
  string.format("%.1f us CPU a request", bench.median(rounds.multi_cpu)))
bench.report("  the same on libuv (socket_action)", multi_uv_conc, "req/s",
  string.format("%.1f us CPU a request; sonde's architecture, in C", bench.median(rounds.uv_cpu)))
bench.report("  wrk -t1 -c50 -d3s", wrk_conc, "req/s")
bench.report("  ratio sonde / libcurl multi", sonde_conc / multi_conc, "x")
bench.report("  ratio sonde / libcurl multi on libuv", sonde_conc / multi_uv_conc, "x")
bench.report("  ratio sonde / wrk", sonde_conc / wrk_conc, "x")
local ratio = bench.median(rounds.ratio)
bench.report("  ratio sonde / the faster C loop", ratio, "x", "median of rounds " .. table.concat(ratios, " "))
bench.goal(string.format("50 tasks: sonde %.2fx the faster plain-C libcurl loop, median of %d rounds (goal >= 0.8)",
  ratio, CONC_ROUNDS), ratio >= 0.8)

-- many in flight --------------------------------------------------------
local c = http.client()
local errors, ok_count = 0, 0
local t0 = task.now()
local handles = {}
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
