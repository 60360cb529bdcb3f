-- fuzz/targets.lua: the Lua side of fuzz/fuzz_lua.c, one function per
-- target. Each gives its input to the sonde code that receives such input
-- and raises only when that code did something wrong: a rejection it is
-- meant to make (malformed JSON, a 400, a worker line that is no event) is
-- checked, not raised.
local json = require("sonde.json")
local task = require("sonde.task")
local server = require("sonde.server")
local trace = require("sonde.lib.trace")

local M = {}

local function check(ok, fmt, ...)
  if not ok then error(string.format(fmt, ...), 2) end
end

-- same(a, b): deep equality, where NaN equals NaN.
local function same(a, b)
  if a == b or (a ~= a and b ~= b) then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- A rejection's message: a string of one line.
local function one_line(msg) return type(msg) == "string" and msg ~= "" and not msg:find("\n") end

-- ------------------------------------------------------------------ json

-- Any text either fails to decode with one line "json.decode: ...", or
-- decodes to a value that json.encode and json.pretty write as text that
-- decodes to the same value; only NaN and the infinities, which JSON cannot
-- hold, are refused, by name.
function M.json(text)
  local ok, v = pcall(json.decode, text)
  if not ok then
    check(one_line(v) and v:find("^json%.decode: "), "decode raised %s", tostring(v))
    return
  end
  for name, write in pairs({ encode = json.encode, pretty = json.pretty }) do
    local wrote, out = pcall(write, v)
    if wrote then
      local read, back = pcall(json.decode, out)
      check(read and same(v, back), "json.%s wrote %q, which reads back as %s", name, out, tostring(back))
    else
      local what = type(out) == "string" and out:match("^json%.%a+: cannot encode: %$.* is (%-?%a+)$")
      check(what == "inf" or what == "-inf" or what == "nan" or what == "-nan", "json.%s raised %s", name,
        tostring(out))
    end
  end
end

-- --------------------------------------------------------- HTTP handlers

-- Runs a request through s:handle as the server's dispatch does (as a task)
-- and returns the answer's status and decoded body. A handler that raised
-- (the server answered 500) raises here.
local function request(s, method, target, headers, body)
  local answer
  s.answer = function(_, _, status, _, rbody) answer = { status = status, body = rbody } end
  local root = task.run(function() s:handle(1, method, target, headers, body) end)
  if root.err ~= nil then error("the handler raised: " .. task.describe(root.err), 0) end
  check(answer, "no answer")
  local ok, decoded = pcall(json.decode, answer.body)
  check(ok and type(decoded) == "table", "the answer's body is no JSON object: %q", answer.body)
  return answer.status, decoded
end

local function refused(status, answer, statuses)
  check(statuses[status] and one_line(answer.error), "answered %s %s", tostring(status), json.encode(answer))
end

-- events: a POST to a sink (events.sink's route on a server that is not
-- listening) records every event of the body, each valid as it is stored,
-- or answers 400 saying why and records nothing.
local events = require("sonde.events")
local sink = server.new {}
sink:post("/events", events.receive)

function M.events(method, target, headers, body)
  if not method then return end -- the server refused the request itself
  events.reset()
  local status, answer = request(sink, method, target, headers, body)
  if status ~= 202 then
    refused(status, answer, { [400] = true })
    check(events.count() == 0, "refused with %d event(s) recorded", events.count())
    return
  end
  check(answer.recorded == events.count(), "answered %s, recorded %d", json.encode(answer), events.count())
  for i, ev in ipairs(events.emitted()) do
    local again, why = events.validate(ev)
    check(again, "recorded event %d is not valid: %s", i, tostring(why))
  end
end

-- signal: a POST /signal to a LiveCheck app resolves the signal of the
-- body's case for its key, so a wait for that key returns its value at
-- once; or it is answered 400 or 404 saying why.
function M.signal(method, target, headers, body)
  if not method then return end
  local livecheck = require("sonde.livecheck")
  local app = livecheck.app { id = "fuzz", report = false, log = false }
  local case = app:case { name = "orders", signals = { "paid", "shipped" } }
  local s = server.new {}
  app:routes(s)
  local status, answer = request(s, method, target, headers, body)
  if status ~= 202 then return refused(status, answer, { [400] = true, [404] = true }) end
  local sent = json.decode(body)
  local root = task.run(function() return case.signals[sent.signal]:wait { key = sent.key, timeout = 0 } end)
  check(root.err == nil, "accepted, but a wait for key %s: %s", tostring(sent.key), task.describe(root.err))
  check(same(root.results[1], sent.value), "accepted %s, but the wait returned %s", body, tostring(root.results[1]))
end

-- ---------------------------------------------------- --jobs and journal

local runner = require("sonde.runner")
local options = require("sonde.runner.options")
local jobs = require("sonde.runner.jobs")


-- A file whose writes go into the list `parts`.
local function file_into(parts)
  return { write = function(self, ...)
    for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
    return self
  end, flush = function(self) return self end }
end

-- A run of the spec files at paths (never loaded: its events come from
-- elsewhere) whose reporters write into texts[name].
local function new_run(paths, args)
  local opts = assert(options.parse(paths, args))
  local reporters, texts = {}, {}
  for _, name in ipairs(options.REPORTERS) do
    texts[name] = {}
    reporters[#reporters + 1] = require("sonde.runner.reporters." .. name).new(file_into(texts[name]), opts)
  end
  return runner.Run.new(opts, reporters), texts
end

-- The json reporter's document, whose counts add up to its sections.
local function check_json_report(text)
  local ok, doc = pcall(json.decode, text)
  check(ok and type(doc) == "table", "the json report is not JSON: %s", text)
  local c = doc.counts
  local n = c.passed + c.failures + c.errors + c.skipped + c.flaky
  check(n == #doc.sections, "the json report counts %d results and has %d sections", n, #doc.sections)
end

-- jobs: what a --jobs worker wrote to its results file, read in two pieces
-- (the first byte says where the cut is) as the parent reads it for its
-- pool's units: every line that is an event goes to the reporters, the
-- tests of a unit whose worker stopped before it was done become errors,
-- and the reports add up.
function M.jobs(input)
  local run, texts = new_run({ "a_spec.lua", "b_spec.lua" }, { "--jobs", "2" })
  local pool = jobs.new_pool(run, run.opts.paths)
  local cut = #input > 0 and input:byte(1) % (#input + 1) or 0
  local pieces = { input:sub(2, cut), input:sub(math.max(2, cut + 1)) }
  local root = task.run(function()
    run:emit("suite_start", { opts = run.opts })
    local w = { partial = "" }
    for _ = 1, #pool.units do
      local unit = pool:next_unit()
      w.unit = unit
      while #pieces > 0 and not jobs.unit_finished(unit) do jobs.take_events(w, table.remove(pieces, 1)) end
      if not unit.done then jobs.close_crashed_unit(unit, "its worker was killed by SIGSEGV", false) end
      pool:count_progress(unit)
      pool:flush_ready()
    end
    run:emit("suite_end", run:summary())
  end)
  check(root.err == nil, "the parent raised: %s", trace.format(root.err, root.traceback))
  check_json_report(table.concat(texts.json))
end

-- journal: the records of the shared journal (fuzz_lua.c wrote them there)
-- after a runner died in a test: a new runner walks fuzz/replay_spec.lua up
-- to that test, replays what the journal says of the tests before it,
-- reports that one as an error and runs the rest. Whatever the records
-- hold, the run ends with reports that add up, and what it says on stderr
-- (of damaged records) is whole lines.
local report = os.tmpname()
local replay_spec = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/replay_spec.lua"

function M.journal()
  local said, stdout, stderr = {}, io.stdout, io.stderr
  -- what a run sets up for its spec files, once per process: put back, so
  -- that runs do not add up
  local path, cpath, arg = package.path, package.cpath, _G.arg
  io.stdout, io.stderr = file_into({}), file_into(said) -- its closing line; what it says of the journal
  local args = { "-o", "json=" .. report }
  for _, name in ipairs(options.REPORTERS) do
    if name ~= "json" then args[#args + 1], args[#args + 2] = "-o", name .. "=/dev/null" end
  end
  local ok, code = pcall(runner.main, { replay_spec }, args)
  io.stdout, io.stderr, package.path, package.cpath, _G.arg = stdout, stderr, path, cpath, arg
  said = table.concat(said)
  check(ok and (code == 0 or code == 1 or code == 2), "the run exited %s; it said %s", tostring(code), said)
  check(said == "" or said:match("^sonde test: [^\n]*\n$"), "the run said %q", said)
  local f = assert(io.open(report))
  local text = f:read("*a")
  f:close()
  os.remove(report)
  check_json_report(text)
end

return M
