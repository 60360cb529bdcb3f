-- sonde.events under load: 100k emits (each building its own event, as a
-- test would) beside the same loop keeping its events without emitting them,
-- then one assert_emitted_event_with whose only match is the oldest event,
-- so it checks every candidate; then the cost of emit alone (one prebuilt
-- event, emitted 100k times), which the goal reads.
local bench = require("bench.lib")
local task = require("sonde.task")
local events = require("sonde.events")

local n = tonumber(arg[1]) or 100000
local function event(i)
  return {
    event = i == 1 and "bench.first" or "bench.tick",
    resource = { ["prefect.resource.id"] = "bench.run." .. i, ["prefect.resource.name"] = "run" },
    related = { { ["prefect.resource.id"] = "bench.flow.1", ["prefect.resource.role"] = "flow" } },
    payload = { i = i, ok = true },
  }
end

-- The same loop keeping its events in a list instead of emitting them:
-- what building and keeping 100k events costs the test itself (the heap
-- grows, so the collector and page faults take most of it).
local function keep_all()
  local kept, c0 = {}, os.clock()
  for i = 1, n do kept[i] = event(i) end
  return os.clock() - c0, #kept
end
collectgarbage()
local kept_cpu = keep_all()
collectgarbage()

events.reset()
local c = events.client():open()
local t0, c0
t0, c0 = task.now(), os.clock()
for i = 1, n do c:emit(event(i)) end
local emitted, emitted_cpu = task.now() - t0, os.clock() - c0
c:close()
bench.report(string.format("%d emits", n), emitted * 1000, "ms")
bench.report("  a loop building and emitting each event", emitted_cpu / n * 1e6, "us", "CPU time, each")
bench.report("  the same loop keeping its events instead", kept_cpu / n * 1e6, "us", "CPU time, each")

t0 = task.now()
events.assert_emitted_event_with {
  event = "bench.first",
  resource = { ["prefect.resource.id"] = "bench.run.*", ["prefect.resource.name"] = { "run", "job" } },
  related = { { ["prefect.resource.role"] = "flow" } },
  payload = { i = 1 },
}
local searched = task.now() - t0
bench.report(string.format("assert over %d events (match is the oldest)", n), searched * 1000, "ms")

t0 = task.now()
events.assert_emitted_event_with {
  resource = { ["prefect.resource.id"] = "bench.run.*", ["prefect.resource.name"] = { "job", "run" } },
  related = { { ["prefect.resource.role"] = "flow" } },
  payload = { i = 1 },
}
searched = task.now() - t0
bench.report("the same on labels and payload only", searched * 1000, "ms")

t0 = task.now()
local ok = pcall(events.assert_emitted_event_with, { event = "bench.tick", payload = { i = 0 } })
assert(not ok)
bench.report(string.format("a failing assert over %d events (report)", n), (task.now() - t0) * 1000, "ms")
bench.report("peak RSS", bench.peak_rss_mb(), "MiB")

-- emit's own share: the same event table each time (emit copies it), so
-- the caller's allocations do not count
events.reset()
collectgarbage()
local one = {
  event = "bench.tick",
  resource = { ["prefect.resource.id"] = "bench.run.1", ["prefect.resource.name"] = "run" },
  related = { { ["prefect.resource.id"] = "bench.flow.1", ["prefect.resource.role"] = "flow" } },
  payload = { i = 1, ok = true },
}
c:open()
-- CPU time (os.clock): on a loaded machine wall time also counts others' turns
t0, c0 = task.now(), os.clock()
for _ = 1, n do c:emit(one) end
local alone, alone_cpu = task.now() - t0, os.clock() - c0
bench.report(string.format("%d emits of one prebuilt event", n), alone * 1000, "ms")
bench.report("  one emit", alone_cpu / n * 1e6, "us", "CPU time; goal: <= 2")
bench.goal(string.format("events: one emit %.1f us CPU (goal <= 2 us); a loop building and emitting %d events "
  .. "%.1f us each, %.1f of them building and keeping the events", alone_cpu / n * 1e6, n, emitted_cpu / n * 1e6,
  kept_cpu / n * 1e6), alone_cpu / n * 1e6 <= 2)
c:close()
events.reset()
