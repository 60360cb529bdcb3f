-- LiveCheck signals on the in-process bus and on the Redis bus across
-- processes, beside sonde.redis' own XADD and redis-benchmark's on the same
-- redis-server:
--   latency: one signal at a time (the receiving execution answers with an
--            "ack" signal before the next is sent), send to the wait's
--            return, p50 and p99;
--   rate:    N executions wait in one process while two processes send
--            from 16 tasks each; first send to the last wait's return.
--   sonde run bench/livecheck_bus.lua [N=5000]
-- It runs itself as the receiving and sending processes (the roles below).
-- Redis 7.0's redis-benchmark has no `-t xadd`, so XADD is given as its
-- command.
local task = require("sonde.task")
local json = require("sonde.json")
local livecheck = require("sonde.livecheck")

local role = arg[1]

local function percentile(sorted, p) return sorted[math.max(1, math.ceil(#sorted * p))] end

-- An app whose case "c" waits for signal "go" keyed by its execution's id,
-- records the latency from the send time the value carries, and (with
-- `ack`) answers with signal "ack" on the same key.
local function new_app(bus, id, ack)
  local latencies = {}
  local app = livecheck.app { id = id, port = 0, report = false, log = false, bus = bus }
  local case = app:case { name = "c", signals = { "go", "ack" }, max_history = 10 }
  case.waiting, case.all_waiting = 0, task.event()
  function case:run()
    self.waiting = self.waiting + 1
    if self.waiting == self.expected then self.all_waiting:set() end
    local v = self.signals.go:wait { timeout = 600 }
    latencies[#latencies + 1] = task.time() - v.t
    if ack then self.signals.ack:send(true) end
  end
  return app, case, latencies
end

-- trigger_all(case, n) -> executions k1..kn, all waiting for "go"
local function trigger_all(case, n)
  local xs = {}
  case.expected = n
  for i = 1, n do xs[i] = case:trigger("k" .. i) end
  case.all_waiting:wait(600)
  return xs
end

-- send_all(send, from, to, concurrency): send(i) for each i in from..to,
-- from `concurrency` tasks at once
local function send_all(send, from, to, concurrency)
  local next_i = from
  local workers = {}
  for w = 1, concurrency do
    workers[w] = task.spawn(function()
      while next_i <= to do
        local i = next_i
        next_i = next_i + 1
        send(i)
      end
    end)
  end
  for _, w in ipairs(workers) do w:join() end
end

local function go(case, i) case.signals.go:send({ t = task.time() }, { key = "k" .. i }) end

-- one signal at a time: send go k_i, wait for ack k_i
local function ping_pong(case, n)
  for i = 1, n do
    go(case, i)
    case.signals.ack:wait { key = "k" .. i, timeout = 60 }
  end
end

local function summary(latencies, last)
  table.sort(latencies)
  return { p50 = percentile(latencies, 0.5), p99 = percentile(latencies, 0.99), count = #latencies, last = last }
end

-- ------------------------------------------------------------ roles

-- receive URL APP N ACK: N executions wait; "ready" on stderr; once each
-- has its signal, {p50, p99, count, last} on stdout (last: epoch seconds
-- of the last wait's return).
if role == "receive" then
  local url, id, n, ack = arg[2], arg[3], tonumber(arg[4]), arg[5] == "ack"
  local app, case, latencies = new_app(url, id, ack)
  app:start()
  local xs = trigger_all(case, n)
  io.stderr:write("ready\n")
  for _, x in ipairs(xs) do x:wait(600) end
  io.stdout:write(json.encode(summary(latencies, task.time())), "\n")
  app:stop(1)
  return
end

-- send URL APP FROM TO MODE: "flood" sends go to FROM..TO from 16 tasks
-- and prints the epoch time of its first send; "pingpong" sends one at a
-- time, each after the previous one's ack.
if role == "send" then
  local url, id, from, to, mode = arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5]), arg[6]
  local app, case = new_app(url, id)
  app:start()
  io.stdout:write(json.encode({ first = task.time() }), "\n")
  if mode == "pingpong" then ping_pong(case, to) else send_all(function(i) go(case, i) end, from, to, 16) end
  app:stop(1)
  return
end

-- ------------------------------------------------------------ main

local bench = require("bench.lib")
local process = require("sonde.process")
local fixture = require("sonde.fixture")
local redis = require("sonde.redis")
local loop = require("sonde.c.loop")

local n = tonumber(arg[1]) or 5000
local n_latency = math.min(n, 1000)
local self_path = debug.getinfo(1, "S").source:sub(2)
local bin = loop.exe_path()

local function report_latency(what, s)
  bench.report(what .. ", p50", s.p50 * 1e6, "us")
  bench.report(what .. ", p99", s.p99 * 1e6, "us")
end

-- ----------------------------------------------------- in-process bus
do
  local app, case, latencies = new_app(nil, "bench-local-latency", true)
  app:start()
  local xs = trigger_all(case, n_latency)
  ping_pong(case, n_latency)
  for _, x in ipairs(xs) do x:wait(60) end
  app:stop(1)
  report_latency(string.format("in-process bus, %d one at a time", n_latency), summary(latencies))
end
do
  local app, case = new_app(nil, "bench-local-rate")
  app:start()
  local xs = trigger_all(case, n)
  local t0 = task.now()
  send_all(function(i)
    go(case, i)
    task.sleep(0) -- lets the woken execution run, as a send over the network would
  end, 1, n, 16)
  for _, x in ipairs(xs) do x:wait(60) end
  bench.report(string.format("in-process bus, %d from 16 tasks", n), n / (task.now() - t0), "sig/s")
  app:stop(1)
end

-- ------------------------------------------------------ a redis-server
local found, code = pcall(process.run, { "redis-server", "--version", timeout = 10 })
if not found or code ~= 0 then
  print("redis bus: skipped, redis-server is not installed (scripts/install-deps installs it)")
  return
end
local port = fixture.unused_port()
local srv = process.spawn { "redis-server", "--port", tostring(port), "--bind", "127.0.0.1", "--save", "",
  "--appendonly", "no" }
while not srv:stdout():find("Ready to accept connections") do
  if not srv:running() then error("redis-server did not start: " .. srv:stdout()) end
  task.sleep(0.01)
end
local url = "redis://127.0.0.1:" .. port .. "/0"

local function await_ready(p)
  while not p:stderr():find("ready") do
    if not p:running() then error("a receiver exited: " .. p:stderr()) end
    task.sleep(0.01)
  end
end

local function finish(p)
  local status = p:wait(600)
  if status ~= 0 then error("a bench process failed: " .. p:stderr()) end
  return json.decode(p:stdout())
end

-- run_redis(n, senders, mode) -> the receiver's summary, the senders' first
-- send times
local function run_redis(count, ranges, mode)
  local id = string.format("bench-%s-%d", mode, math.floor(task.time() * 1000))
  local receiver = process.spawn { bin, "run", self_path, "receive", url, id, tostring(count),
    mode == "pingpong" and "ack" or "noack" }
  await_ready(receiver)
  local senders = {}
  for i, r in ipairs(ranges) do
    senders[i] = process.spawn { bin, "run", self_path, "send", url, id, tostring(r[1]), tostring(r[2]), mode }
  end
  local first = math.huge
  for _, p in ipairs(senders) do first = math.min(first, finish(p).first) end
  return finish(receiver), first
end

local ok, err = pcall(function()
  local s = run_redis(n_latency, { { 1, n_latency } }, "pingpong")
  report_latency(string.format("redis bus across processes, %d one at a time", n_latency), s)

  local half = math.floor(n / 2)
  local first
  s, first = run_redis(n, { { 1, half }, { half + 1, n } }, "flood")
  bench.report(string.format("redis bus, 2 processes -> 1, %d from 16 tasks each", n), n / (s.last - first), "sig/s")
  report_latency("  send to wait's return under that load", s)

  local r = redis.connect(url)
  local m = n * 4
  local t0 = task.now()
  send_all(function(i) r:xadd("bench:raw", "*", { i = i }, { maxlen = 10000 }) end, 1, m, 16)
  bench.report(string.format("sonde.redis XADD, 16 tasks on 1 connection, %d", m), m / (task.now() - t0), "req/s")
  t0 = task.now()
  for i = 1, n_latency do r:xadd("bench:raw", "*", { i = i }, { maxlen = 10000 }) end
  bench.report("sonde.redis XADD one at a time, mean", (task.now() - t0) / n_latency * 1e6, "us")
  r:close()

  for _, clients in ipairs({ 1, 16 }) do
    local out = bench.run { "redis-benchmark", "-p", tostring(port), "-n", tostring(m), "-c", tostring(clients),
      "--csv", "XADD", "bench:rb", "MAXLEN", "~", "10000", "*", "f", "v", timeout = 600 }
    local rps, p50, p99 = out:match('\n"XADD[^"]*","([%d%.]+)","[%d%.]+","[%d%.]+","([%d%.]+)","[%d%.]+","([%d%.]+)"')
    bench.report(string.format("redis-benchmark XADD -c %d", clients), tonumber(rps) or 0, "req/s",
      p50 and string.format("p50 %s ms, p99 %s ms", p50, p99) or out)
  end
end)
srv:stop(5)
if not ok then error(err, 0) end
