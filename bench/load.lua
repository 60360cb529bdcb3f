-- sonde load against the same nginx in one run: what its metrics cost
-- (50 VUs doing one GET each iteration vs 50 plain sonde.http tasks, wrk
-- -t1 -c50 beside), 10,000 VUs with think time (memory), and an arrival
-- rate of 5,000/s held second by second (open model).
-- Usage: sonde run bench/load.lua [SECONDS=5 [HOLD=30 [RATE_SECONDS=20]]]
local bench = require("bench.lib")
local servers = require("specs.servers")
local support = require("specs.support")
local loop = require("sonde.c.loop")
local json = require("sonde.json")

local SECONDS = tonumber(arg[1]) or 5
local HOLD = tonumber(arg[2]) or 30
local RATE_SECONDS = tonumber(arg[3]) or 20

local ngx = servers.nginx()
local url = ngx.url .. "/small.json"
local dir = support.make_temp_dir("bench-load")

-- load(script, ...) -> the Summary data of `sonde load script` (run as a
-- process of its own, as every peer is), and its stdout
local function load(name, text, ...)
  local path = dir .. "/" .. name .. ".lua"
  support.write_file(path, text)
  local argv = { loop.exe_path(), "load", "-q", path, "-o", "json=" .. dir .. "/" .. name .. ".json", ... }
  argv.env = { URL = url }
  argv.timeout = 600
  local out = bench.run(argv)
  local last
  for line in io.lines(dir .. "/" .. name .. ".json") do last = line end
  return json.decode(last).data, out
end

local function metric(data, name) return data.metrics[name] and data.metrics[name].values or {} end

-- 50 VUs ------------------------------------------------------------------
-- Alternating rounds, medians: one sample on a shared 2-core machine says
-- more about the moment than about the code. No --out json here: writing
-- every sample is a cost of its own, measured apart below.
local PLAIN = [[
local http, task = require("sonde.http"), require("sonde.task")
local url, secs = arg[1], tonumber(arg[2])
local c = http.client()
c:get(url)
local t0, n = task.now(), 0
local handles = {}
for i = 1, 50 do
  handles[i] = task.spawn(function()
    while task.now() - t0 < secs do
      if c:get(url).status ~= 200 then error("bad status") end
      n = n + 1
    end
  end)
end
for i = 1, 50 do handles[i]:join() end
print(n / (task.now() - t0))
]]

local VUS50 = [[
local http = require("sonde.http")
local url = os.getenv("URL")
local c = http.client()
options = { vus = 50, duration = "%ds" }
function default()
  if c:get(url).status ~= 200 then error("bad status") end
end
]]

local function plain_round()
  local argv = { loop.exe_path(), "run", "-", url, tostring(SECONDS) }
  argv.stdin = PLAIN
  return tonumber(bench.run(argv))
end

local function load_round(out_json)
  local path = dir .. "/vus50.lua"
  support.write_file(path, VUS50:format(SECONDS))
  local argv = { loop.exe_path(), "load", "-q", path }
  if out_json then argv[#argv + 1] = "--out=json=" .. dir .. "/vus50.json" end
  argv.env = { URL = url }
  local out = bench.run(argv)
  local reqs, rate = out:match("http_reqs%.+: (%d+)%s+([%d%.]+)/s")
  return tonumber(rate), tonumber(reqs)
end

local ROUNDS = 5
local plain, loaded = {}, {}
for r = 1, ROUNDS do
  plain[r] = plain_round()
  loaded[r] = load_round(false)
end
local plain_rate, load_rate = bench.median(plain), bench.median(loaded)
local with_json = load_round(true)
local wrk = bench.wrk(url, 50, SECONDS)
bench.report(string.format("50 tasks of sonde.http, %ds (median of %d)", SECONDS, ROUNDS), plain_rate, "req/s")
bench.report("  sonde load, constant-vus 50", load_rate, "req/s")
bench.report("  the same with --out json (every sample)", with_json, "req/s")
bench.report("  wrk -t1 -c50", wrk, "req/s")
bench.report("  ratio sonde load / sonde.http tasks", load_rate / plain_rate, "x", "goal: >= 0.9")
bench.report("  ratio sonde load / wrk", load_rate / wrk, "x")

-- 10,000 VUs --------------------------------------------------------------
local MANY = [[
local http = require("sonde.http")
local load = require("sonde.load")
local url = os.getenv("URL")
local c = http.client { timeout = 60 }
options = { scenarios = { many = { executor = "ramping-vus", start_vus = 0,
  stages = { { duration = "5s", target = 10000 }, { duration = "%ds", target = 10000 } } } } }
function default()
  c:get(url)
  load.sleep(1)
end
function teardown()
  local f = io.open("/proc/self/status")
  print("peak RSS kB " .. f:read("*a"):match("VmHWM:%%s*(%%d+)"))
  f:close()
end
]]
local data, out = load("many", MANY:format(HOLD))
local reqs = metric(data, "http_reqs")
local rss = tonumber(out:match("peak RSS kB (%d+)")) / 1024
bench.report(string.format("10,000 VUs, 1 s think time, %ds held", HOLD), reqs.rate or 0, "req/s",
  string.format("%d requests, %d failed, %d iteration errors", reqs.count or 0, metric(data, "http_req_failed").passes
    or 0, metric(data, "iteration_errors").count or 0))
bench.report("  peak RSS of the sonde load process", rss, "MiB", string.format("%.1f KiB per VU", rss * 1024 / 10000))
bench.report("  http_req_duration p(95)", metric(data, "http_req_duration")["p(95)"] or 0, "ms")

-- 5,000 arrivals/s --------------------------------------------------------
-- Each iteration notes the second it started in; a second's count is the
-- rate the executor held then (the first and last second are partial).
local RATE = [[
local http = require("sonde.http")
local task = require("sonde.task")
local url = os.getenv("URL")
local c = http.client()
local per_second, t0 = {}, nil
options = { scenarios = { arrivals = { executor = "constant-arrival-rate", rate = 5000, time_unit = "1s",
  duration = "%ds", pre_allocated_vus = 200, max_vus = 2000 } },
  summary_trend_stats = { "avg", "min", "med", "max", "p(95)", "p(99)" } }
function setup() return { t0 = task.now() } end
function default(data)
  local s = math.floor(task.now() - data.t0)
  per_second[s] = (per_second[s] or 0) + 1
  c:get(url)
end
function teardown()
  local lo, hi = math.huge, 0
  for s = 1, %d do
    lo, hi = math.min(lo, per_second[s] or 0), math.max(hi, per_second[s] or 0)
  end
  print(string.format("per second: min %%d max %%d", lo, hi))
end
]]
data, out = load("rate", RATE:format(RATE_SECONDS, RATE_SECONDS - 2))
local lo, hi = out:match("per second: min (%d+) max (%d+)")
local iters = metric(data, "iterations")
bench.report(string.format("constant-arrival-rate 5000/s, %ds", RATE_SECONDS), iters.rate or 0, "it/s",
  string.format("%d iterations, %d dropped, %d VUs", iters.count or 0, metric(data, "dropped_iterations").count or 0,
    metric(data, "vus_max").max or 0))
bench.report("  slowest second / 5000", tonumber(lo) / 5000, "x", "goal: within 1 %")
bench.report("  fastest second / 5000", tonumber(hi) / 5000, "x", "goal: within 1 %")
local d = metric(data, "http_req_duration")
bench.report("  http_req_duration p(50), from intended start", d.med or 0, "ms")
bench.report("  http_req_duration p(99), from intended start", d["p(99)"] or d["p(95)"] or 0, "ms")

support.remove_dir(dir)
