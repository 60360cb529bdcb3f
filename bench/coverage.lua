-- What --coverage costs: `sonde test` with and without it, alternating,
-- median of RUNS each, on one file of 5000 trivial `it`s (every line of
-- the run goes through the line hook; the spec file itself is not
-- covered) and, when given, on a real project's suite (its folder and the
-- --coverage-include pattern of its code, e.g. a checkout of Penlight and
-- '^lua/pl/'). Whole processes, wall time.
-- Usage: sonde run bench/coverage.lua [RUNS [PROJECT_DIR INCLUDE]]
local bench = require("bench.lib")
local loop = require("sonde.c.loop")
local process = require("sonde.process")
local task = require("sonde.task")

local runs = tonumber(arg[1]) or 5
local project, include = arg[2], arg[3]

local dir = os.tmpname()
os.remove(dir)
assert(loop.mkdir(dir))
local spec = dir .. "/trivial_spec.lua"
local f = assert(io.open(spec, "w"))
f:write('describe("trivial", function()\n')
for i = 1, 5000 do
  f:write(string.format('  it("case %d", function() assert.are.same({ a = %d }, { a = %d }) end)\n', i, i, i))
end
f:write("end)\n")
f:close()

-- Any exit code: a real suite may have failures of its own.
local function wall(argv)
  local t = task.now()
  process.run(argv)
  return task.now() - t
end

local function compare(label, cwd, args, cov_args)
  local plain, covered = {}, {}
  local base = { loop.exe_path(), "test", cwd = cwd, timeout = 600 }
  for _, a in ipairs(args) do base[#base + 1] = a end
  local with = { unpack(base) }
  with.cwd, with.timeout = cwd, 600
  for _, a in ipairs(cov_args) do with[#with + 1] = a end
  wall(with) -- fills the chunk cache
  for i = 1, runs do
    plain[i] = wall(base)
    covered[i] = wall(with)
  end
  local p, c = bench.median(plain), bench.median(covered)
  bench.report(label .. string.format(" (median of %d)", runs), p * 1000, "ms")
  bench.report("  with --coverage", c * 1000, "ms", string.format("x%.2f", c / p))
end

compare("sonde test, 5000 trivial its", dir, { spec }, { "--coverage=" .. dir .. "/lcov.info" })
if project then
  compare("sonde test, " .. project, project, {}, { "--coverage=" .. dir .. "/project.info", "--coverage-include",
      include })
end
process.run { "rm", "-rf", dir }
