-- The scheduler under load: 100k tasks that each sleep 10 ms, and 1M
-- spawn+join of an empty function.
local bench = require("bench.lib")
local task = require("sonde.task")

local n = tonumber(arg[1]) or 100000
local t0 = task.now()
local handles = {}
for i = 1, n do handles[i] = task.spawn(task.sleep, 0.01) end
for i = 1, n do handles[i]:join() end
local slept = task.now() - t0
bench.report(string.format("%d tasks sleeping 10 ms, all done in", n), slept * 1000, "ms", "goal: < 1000 ms")
bench.report("peak RSS after them", bench.peak_rss_mb(), "MiB")

local m = tonumber(arg[2]) or 1000000
local empty = function() end
t0 = task.now()
for _ = 1, m do task.spawn(empty):join() end
local spawned = task.now() - t0
bench.report(string.format("%d spawn+join of an empty function", m), spawned * 1000, "ms")
bench.report("spawn+join rate", m / spawned / 1e6, "M/s")
