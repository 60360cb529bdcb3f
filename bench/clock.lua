-- Virtual time at speed: 1M timer firings under clock.virtual (1000 tasks
-- each sleeping 1000 times, every deadline distinct), and a simulated day
-- (one task waking every second, 86,400 wakes). Real seconds are measured
-- with the real clock, since task.now() is virtual inside.
local bench = require("bench.lib")
local task = require("sonde.task")
local clock = require("sonde.clock")
local loop = require("sonde.c.loop")

local tasks = tonumber(arg[1]) or 1000
local sleeps = tonumber(arg[2]) or 1000
local firings = tasks * sleeps

local t0 = loop.real_now()
local virtual_end = clock.virtual({ runaway_limit = firings + 1 }, function()
  local handles = {}
  for i = 1, tasks do
    -- a distinct period per task, so the firings interleave across tasks
    local period = 1 + i / (tasks + 1)
    handles[i] = task.spawn(function()
      for _ = 1, sleeps do task.sleep(period) end
    end)
  end
  for i = 1, tasks do handles[i]:join() end
  return task.now()
end)
local real = loop.real_now() - t0
bench.report(string.format("%d timer firings under clock.virtual", firings), real * 1000, "ms", "goal: < 1000 ms")
bench.report("firing rate", firings / real / 1e6, "M/s")
bench.report("virtual seconds covered", virtual_end, "s")

t0 = loop.real_now()
local wakes = clock.virtual(function()
  local n = 0
  while task.now() < 86400 do
    task.sleep(1)
    n = n + 1
  end
  return n
end)
real = loop.real_now() - t0
bench.report(string.format("a simulated day: %d wakes, one a second", wakes), real * 1000, "ms", "goal: < 200 ms")
bench.report("peak RSS", bench.peak_rss_mb(), "MiB")
