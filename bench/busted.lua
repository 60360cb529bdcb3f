-- `sonde test` against busted on one spec file of 5000 trivial `it` blocks,
-- each `assert.are.same({a=i}, {a=i})`: whole process, start to exit, both
-- with their default output, alternating, median of 5 runs each.
-- Usage: sonde run bench/busted.lua [TESTS] [RUNS]
local bench = require("bench.lib")
local loop = require("sonde.c.loop")
local process = require("sonde.process")

local n = tonumber(arg[1]) or 5000
local runs = tonumber(arg[2]) or 5

local dir = os.tmpname()
os.remove(dir)
assert(process.run { "mkdir", "-p", dir } == 0)
local spec = dir .. "/trivial_spec.lua"
local f = assert(io.open(spec, "w"))
f:write('describe("trivial", function()\n')
for i = 1, n do
  f:write(string.format('  it("case %d", function() assert.are.same({ a = %d }, { a = %d }) end)\n', i, i, i))
end
f:write("end)\n")
f:close()

-- sonde with its compiled-chunk cache (its default; the first run fills a
-- cache of its own here), with an empty cache each time (a first run on a
-- fresh machine: it parses, and fills the cache), and without a cache.
local sonde_argv = { loop.exe_path(), "test", spec, env = { SONDE_CACHE_DIR = dir .. "/cache" } }
local off_argv = { loop.exe_path(), "test", spec, env = { SONDE_CACHE = "off" } }
local busted_argv = { "busted", spec }
local t_sonde, t_first, t_off, t_busted = {}, {}, {}, {}
for i = 1, runs do
  t_busted[i] = bench.wall(busted_argv, 1)
  t_sonde[i] = bench.wall(sonde_argv, 1)
  t_first[i] = bench.wall({ loop.exe_path(), "test", spec, env = { SONDE_CACHE_DIR = dir .. "/empty" .. i } }, 1)
  t_off[i] = bench.wall(off_argv, 1)
end
process.run { "rm", "-rf", dir }

local s, first, o, b = bench.median(t_sonde), bench.median(t_first), bench.median(t_off), bench.median(t_busted)
bench.report(string.format("busted, %d trivial its (median of %d)", n, runs), b * 1000, "ms")
bench.report(string.format("sonde test, the same file (median of %d)", runs), s * 1000, "ms")
bench.report("  the same with an empty cache (a first run)", first * 1000, "ms")
bench.report("  the same with SONDE_CACHE=off", o * 1000, "ms")
bench.report("ratio busted / sonde test", b / s, "x", "goal: >= 20 x")
bench.report("  with an empty cache", b / first, "x")
bench.report("  with SONDE_CACHE=off", b / o, "x")
bench.goal(string.format("%d-test file: sonde %.1fx faster than busted, cache on (goal >= 20)", n, b / s), b / s >= 20)
bench.goal(string.format("%d-test file: sonde %.1fx faster than busted, SONDE_CACHE=off (goal >= 15)", n, b / o),
  b / o >= 15)
