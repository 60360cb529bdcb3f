-- The examples, run as their users run them: `sonde test` on each example as
-- a subprocess of the sonde under test, its exit code and output checked.
local support = require("specs.support")
local fixture = require("sonde.fixture")
local loop = require("sonde.c.loop")
local servers = require("specs.servers")

local sonde = support.sonde
local PREFECT = "examples/prefect_api"

-- The seed suite's sections, in its order (seeds/003_020bcd75d9578919.txt, main()).
local SECTIONS = { "admin", "flow_run (success)", "flow_run (failure)", "orchestration_rules", "task_run",
  "filters", "logs", "variables", "blocks", "work_pools", "deployments", "get_scheduled_flow_runs",
  "scheduler_idempotency", "parameter_merging" }

-- {name = "ok" | "not ok" | "skip: reason"} from TAP output.
local function tap_results(out)
  local status, _, reasons = support.tap(out)
  for name, reason in pairs(reasons) do status[name] = "skip: " .. reason end
  return status
end

-- listed(path) -> the test names `sonde test --list` prints for path.
local function listed(path)
  local code, out, err = sonde("test", "--list", path)
  assert.are.equal(0, code, err)
  local names = {}
  for name in out:gmatch("[^\n]-:%d+: ([^\n]*)") do names[#names + 1] = name end
  return names
end


describe("the API scenario examples", function()
  local examples = require("examples.servers")
  -- what each example needs that may be absent here (it then skips every test)
  local needs = { ["examples/crud_spec.lua"] = examples.json_server_missing,
    ["examples/redis_spec.lua"] = examples.redis_missing }
  for _, file in ipairs({ "examples/httpbin_spec.lua", "examples/crud_spec.lua", "examples/redis_spec.lua" }) do
    it(file .. " passes every test it lists, against the server it starts", function()
      local missing = needs[file] and needs[file]()
      if missing then pending(missing) end
      local n = #listed(file)
      assert.is_true(n > 0, file .. " lists no tests")
      local code, out, err = sonde("test", file)
      assert.are.equal(0, code, out .. err)
      assert.matches("\n" .. n .. " passed, 0 failed\n$", out)
    end)
  end
end)

describe("examples/crud_spec.lua without json-server", function()
  it("run from a copy where json-server is not installed, every test is skipped with the reason, exit 0", function()
    local dir = support.temp_dir("crud")
    assert(loop.mkdir(dir .. "/examples"))
    for _, name in ipairs({ "crud_spec.lua", "servers.lua" }) do
      local f = assert(io.open("examples/" .. name))
      support.write_file(dir .. "/examples/" .. name, f:read("*a"))
      f:close()
    end
    local code, out, err = sonde("test", "--output", "tap", "examples/crud_spec.lua", { cwd = dir })
    assert.are.equal(0, code, out .. err)
    local results, names = tap_results(out), listed("examples/crud_spec.lua")
    assert.is_true(#names > 0)
    assert.are.equal(#names, #select(2, support.tap(out)), out)
    for _, name in ipairs(names) do
      assert.are.equal("skip: json-server is not installed (no deps/node/node_modules/.bin/json-server; " ..
        "sh scripts/install-deps puts it there)", results[name], name)
    end
  end)
end)

describe("examples/prefect_api", function()
  it("--list loads it and lists every section of the seed suite, in order", function()
    assert.are.same(SECTIONS, listed(PREFECT))
  end)

  it("without a server, every section is skipped with the reason and the run exits 0", function()
    local url = "http://127.0.0.1:" .. fixture.unused_port() .. "/api"
    local code, out, err = sonde("test", "--output", "tap", PREFECT, { env = { PREFECT_API_URL = url } })
    assert.are.equal(0, code, out .. err)
    local results = tap_results(out)
    for _, section in ipairs(SECTIONS) do
      assert.matches("^skip: no Prefect API at " .. url:gsub("%p", "%%%0") .. ": connect error", results[section] or "",
        1, section)
    end
  end)

  it("against a server that is not a Prefect API, its sections fail instead of passing", function()
    -- httpbin's /anything answers 200 with an echo to every request, so
    -- only the sections' own checks can fail them.
    local url = servers.httpbin().url .. "/anything/api"
    local code, out, err = sonde("test", "--output", "tap", PREFECT, { env = { PREFECT_API_URL = url } })
    assert.are.equal(1, code, out .. err)
    local results = tap_results(out)
    for _, section in ipairs({ "flow_run (success)", "orchestration_rules", "variables", "deployments",
      "get_scheduled_flow_runs", "scheduler_idempotency", "parameter_merging" }) do
      assert.are.equal("not ok", results[section], section)
    end
  end)
end)

describe("examples/livecheck", function()
  it("the demo shows PASS, then FAIL, TIMEOUT and a suite failure", function()
    local code, out, err = sonde("run", "examples/livecheck/demo.lua")
    assert.are.equal(0, code, out .. err)
    assert.matches("healthy service, buy%s+PASS", out)
    assert.matches("executes the wrong side%s+FAIL", out)
    assert.matches("loses the order%s+TIMEOUT", out)
    assert.matches("suite report: Failed after 3 %(max=3%)", out)
  end)
end)
