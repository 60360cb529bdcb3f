-- `sonde test --jobs 2` against a serial run of the same suite: 20 small
-- files of 5 trivial tests (where workers can only cost), and 20 files whose
-- one test waits 50 ms (where two workers should halve the run). Whole
-- process, alternating, median of 5 runs each.
-- Usage: sonde run bench/jobs.lua [FILES] [RUNS]
local bench = require("bench.lib")
local loop = require("sonde.c.loop")
local process = require("sonde.process")

local files = tonumber(arg[1]) or 20
local runs = tonumber(arg[2]) or 5

local dir = os.tmpname()
os.remove(dir)
local function suite(name, body)
  local path = dir .. "/" .. name
  assert(process.run { "mkdir", "-p", path } == 0)
  for i = 1, files do
    local f = assert(io.open(string.format("%s/f%02d_spec.lua", path, i), "w"))
    f:write(body(i))
    f:close()
  end
  return path
end
local small = suite("small", function(i)
  local t = { 'describe("file ' .. i .. '", function()\n' }
  for j = 1, 5 do t[#t + 1] = string.format('  it("case %d", function() assert.equal(%d, %d) end)\n', j, j, j) end
  t[#t + 1] = "end)\n"
  return table.concat(t)
end)
local waiting = suite("waiting", function(i)
  return string.format('it("waits %d", function() require("sonde.task").sleep(0.05) end)\n', i)
end)

local function pair(path)
  local serial, jobs = {}, {}
  local env = { SONDE_CACHE_DIR = dir .. "/cache" }
  for r = 1, runs do
    serial[r] = bench.wall({ loop.exe_path(), "test", path, env = env }, 1)
    jobs[r] = bench.wall({ loop.exe_path(), "test", "--jobs", "2", path, env = env }, 1)
  end
  return bench.median(serial), bench.median(jobs)
end
local s_small, j_small = pair(small)
local s_wait, j_wait = pair(waiting)
process.run { "rm", "-rf", dir }

bench.report(string.format("%d small files, serial (median of %d)", files, runs), s_small * 1000, "ms")
bench.report("  the same, --jobs 2", j_small * 1000, "ms", "goal: <= serial + 20 ms")
bench.report(string.format("%d files whose test waits 50 ms, serial", files), s_wait * 1000, "ms")
bench.report("  the same, --jobs 2", j_wait * 1000, "ms", "goal: < serial")
bench.goal(string.format("--jobs 2 on %d small files: %+.0f ms against serial (goal <= +20 ms)", files,
  (j_small - s_small) * 1000), j_small - s_small <= 0.020)
bench.goal(string.format("--jobs 2 on %d files that wait: %.2fx serial's time (goal < 1)", files, j_wait / s_wait),
  j_wait < s_wait)
