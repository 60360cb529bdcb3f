-- What a serial run's protection costs (host/protect.c: results journaled,
-- fatal-signal handlers, sonde restarting by execve after a death): `sonde
-- test` on a file of 5000 trivial tests and on a file of one, as it runs by
-- default and with SONDE_SUPERVISE=off, alternating; wall median and p90,
-- and CPU per run (the children's user+sys time, in clock ticks: a mean over
-- the runs).
-- Usage: sonde run bench/supervise.lua [RUNS]
local bench = require("bench.lib")
local loop = require("sonde.c.loop")
local process = require("sonde.process")
local task = require("sonde.task")

local runs = tonumber(arg[1]) or 20

local dir = os.tmpname()
os.remove(dir)
assert(process.run { "mkdir", "-p", dir } == 0)
local function write(name, n)
  local f = assert(io.open(dir .. "/" .. name, "w"))
  for i = 1, n do
    f:write(string.format('it("case %d", function() assert.are.same({ a = %d }, { a = %d }) end)\n', i, i, i))
  end
  f:close()
  return dir .. "/" .. name
end

-- children's CPU seconds so far (utime + stime of waited-for children)
local function children_cpu()
  local f = assert(io.open("/proc/self/stat"))
  local stat = f:read("*a"):gsub("^.*%) ", "")
  f:close()
  local fields = {}
  for v in stat:gmatch("%S+") do fields[#fields + 1] = v end
  return (tonumber(fields[14]) + tonumber(fields[15])) / 100 -- cutime, cstime (fields 16, 17 of stat)
end

local function p90(xs)
  table.sort(xs)
  return xs[math.max(1, math.ceil(#xs * 0.9))]
end

for _, case in ipairs({ { "5000 tests", write("many_spec.lua", 5000) }, { "one test", write("one_spec.lua", 1) } }) do
  local variants = { { "protected (default)", {} }, { "SONDE_SUPERVISE=off", { SONDE_SUPERVISE = "off" } } }
  local wall, cpu = { {}, {} }, { 0, 0 }
  for i = 1, runs + 1 do -- the first round fills the chunk cache
    for k = 1, 2 do
      local v = i % 2 == 0 and k or 3 - k
      local env = { SONDE_CACHE_DIR = dir .. "/cache" }
      for name, value in pairs(variants[v][2]) do env[name] = value end
      local c0, t0 = children_cpu(), task.now()
      bench.run { loop.exe_path(), "test", case[2], env = env }
      if i > 1 then
        wall[v][#wall[v] + 1] = task.now() - t0
        cpu[v] = cpu[v] + children_cpu() - c0
      end
    end
  end
  for v = 1, 2 do
    bench.report(string.format("%s, %s: wall median", case[1], variants[v][1]), bench.median(wall[v]) * 1000, "ms",
      string.format("p90 %.1f ms, CPU %.1f ms per run (n=%d)", p90(wall[v]) * 1000, cpu[v] / runs * 1000, runs))
  end
end
process.run { "rm", "-rf", dir }
