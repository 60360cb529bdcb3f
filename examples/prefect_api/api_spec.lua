-- Shows the seed's Prefect API functional suite (an httpx script) as a sonde spec:
-- one test per section, the same requests and checks, against PREFECT_API_URL.
--
-- PREFECT_API_URL=http://127.0.0.1:4200/api sonde test examples/prefect_api
-- With no server there every section is reported skipped, with the reason.
local http = require("sonde.http")
local json = require("sonde.json")
local task = require("sonde.task")
local events = require("sonde.events") -- for Prefect-style UUIDs and timestamps

local BASE_URL = os.getenv("PREFECT_API_URL") or "http://localhost:4200/api"

-- --------------------------------------------------------------- the server

local unreachable -- why BASE_URL could not be reached, or nil

-- Checked once per run: a transport error means there is no server to test;
-- any HTTP answer means there is one, and the sections judge what it says.
setup(function()
  local ok, err = pcall(http.get, http.join_url(BASE_URL, "/health"), { timeout = 2 })
  if not ok then unreachable = tostring(err) end
end)

-- api() -> a fresh client for one section, as the seed's run_test makes one
-- (so the runner counts each section's requests); skips it without a server.
local function api()
  if unreachable then pending("no Prefect API at " .. BASE_URL .. ": " .. unreachable) end
  return http.client { base_url = BASE_URL, timeout = 10 }
end

-- ------------------------------------------------------------------ checks

local CALLER = assert:level(2) -- a failed check points at the line that called the helper

-- expect_status(r, 200, 201) -> r, when its status is one of those given.
local function expect_status(r, ...)
  local wanted = { ... }
  for _, status in ipairs(wanted) do
    if r.status == status then return r end
  end
  assert(false, string.format("%s %s: expected status %s, got %d: %s", r.method, r.url,
    table.concat(wanted, " or "), r.status, r.body:sub(1, 300)), CALLER)
end

local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v -- cjson decodes [] and {} alike, so an empty table counts
end

local function expect_list(v, what)
  assert(is_list(v), what .. ": expected a JSON list, got " .. json.encode(v):sub(1, 200), CALLER)
  return v
end

-- The seed's validate_response: required fields present (null counts), and
-- typed fields of the Lua type standing for the Python one when not null.
local TYPE_CHECKS = {
  str = function(v) return type(v) == "string" end,
  int = function(v) return type(v) == "number" and v % 1 == 0 end,
  list = is_list,
}

local function expect_fields(data, required, types)
  assert(type(data) == "table", "expected a JSON object, got " .. json.encode(data), CALLER)
  for _, name in ipairs(required) do
    assert(data[name] ~= nil, "missing field '" .. name .. "' in " .. json.encode(data):sub(1, 200), CALLER)
  end
  for name, want in pairs(types or {}) do
    local v = data[name]
    if v ~= nil and v ~= json.null then
      assert(TYPE_CHECKS[want](v), string.format("field '%s' expected %s, got %s", name, want, type(v)), CALLER)
    end
  end
  return data
end

-- ---------------------------------------------------------------- helpers

-- uuid.uuid4().hex[:8]: names that differ between runs on the same server.
local function hex8() return events.uuid4():sub(1, 8) end

-- datetime.now(timezone.utc).isoformat()
local function now_iso() return (events.rfc3339(task.time()):gsub("Z$", "+00:00")) end

-- state("RUNNING") -> {type="RUNNING", name="Running"}, the seed's state bodies.
local function state(type_)
  return { type = type_, name = type_:sub(1, 1) .. type_:sub(2):lower() }
end

-- set_state(c, "flow_runs", id, "RUNNING", force) -> the orchestration result.
-- force=nil leaves the key out, as the seed's orchestration section does.
local function set_state(c, runs, id, type_, force)
  local r = c:post(string.format("/%s/%s/set_state", runs, id), { json = { state = state(type_), force = force } })
  return expect_status(r, 200, 201):json()
end

-- Deletes what a section made, whether it passed or not; like the seed, it
-- does not judge the answers.
local function cleanup(c, ...)
  local paths = { ... }
  finally(function()
    for _, path in ipairs(paths) do pcall(c.delete, c, path) end
  end)
end

-- The scheduler service runs every 5 s by default. The seed sleeps 7 s and
-- looks once; polling until runs appear passes as soon as the scheduler has
-- run, and fails only when it has not within SCHEDULER_WAIT.
local SCHEDULER_WAIT = 15
local SCHEDULER_TICK = 7 -- at least one more scheduler run

local function deployment_runs(c, deployment_id, limit)
  local r = c:post("/flow_runs/filter", { json = {
    flow_runs = { deployment_id = { any_ = { deployment_id } } }, limit = limit } })
  return expect_list(expect_status(r, 200):json(), "POST /flow_runs/filter")
end

local function wait_for_runs(c, deployment_id, limit)
  local deadline = task.now() + SCHEDULER_WAIT
  while true do
    local runs = deployment_runs(c, deployment_id, limit)
    if #runs > 0 or task.now() >= deadline then return runs end
    task.sleep(0.5)
  end
end

-- A flow, a process work pool and a deployment on it: the scheduler sections' setup.
local function scheduled_deployment(c, prefix, deployment)
  local flow = expect_status(c:post("/flows/", { json = { name = prefix .. "-flow-" .. hex8() } }), 200, 201):json()
  local pool_name = prefix .. "-pool-" .. hex8()
  expect_status(c:post("/work_pools/", { json = { name = pool_name, type = "process" } }), 200, 201)
  deployment.name = prefix .. "-deploy-" .. hex8()
  deployment.flow_id, deployment.work_pool_name = flow.id, pool_name
  local created = expect_status(c:post("/deployments/", { json = deployment }), 200, 201):json()
  cleanup(c, "/deployments/" .. tostring(created.id), "/work_pools/" .. pool_name)
  return created
end

-- A flow run from PENDING through RUNNING to COMPLETED or FAILED.
local function flow_run_lifecycle(should_fail)
  local c = api()
  local suffix = should_fail and "fail" or "success"
  local flow = expect_status(c:post("/flows/", { json = { name = "bench-flow-" .. suffix } }), 200, 201):json()
  expect_fields(flow, { "id", "name", "created", "updated" }, { id = "str", name = "str" })
  local run = expect_status(c:post("/flow_runs/", { json = { flow_id = flow.id, name = "run-" .. hex8(),
    state = state("PENDING") } }), 200, 201):json()
  expect_fields(run, { "id", "name", "flow_id", "state_type" }, { id = "str", name = "str" })
  expect_status(c:get("/flow_runs/" .. tostring(run.id)), 200)
  set_state(c, "flow_runs", run.id, "RUNNING", false)
  local final = should_fail and "FAILED" or "COMPLETED"
  set_state(c, "flow_runs", run.id, final, false)
  local after = expect_status(c:get("/flow_runs/" .. tostring(run.id)), 200):json()
  assert.are.equal(final, after.state_type)
end

-- ---------------------------------------------------------------- sections

it("admin", function()
  local c = api()
  expect_status(c:get("/health"), 200)
  expect_status(c:get("/admin/version"), 200)
  -- 422: the server runs without CSRF protection, which the seed accepts
  expect_status(c:get("/csrf-token", { params = { client = "test-client" } }), 200, 422)
end)

it("flow_run (success)", function() flow_run_lifecycle(false) end)

it("flow_run (failure)", function() flow_run_lifecycle(true) end)

it("orchestration_rules", function()
  local c = api()
  local flow = expect_status(c:post("/flows/", { json = { name = "orchestration-test-" .. hex8() } }), 200, 201)
  local flow_id = expect_fields(flow:json(), { "id" }).id
  local r = c:post("/flow_runs/", { json = { flow_id = flow_id, name = "orch-run-" .. hex8(),
    state = state("PENDING") } })
  local run_id = expect_fields(expect_status(r, 200, 201):json(), { "id" }).id
  -- PreventPendingTransitions: PENDING -> PENDING and RUNNING -> PENDING are
  -- rejected, and a rejected transition leaves the state as it was.
  assert.are.equal("REJECT", set_state(c, "flow_runs", run_id, "PENDING").status)
  assert.are.equal("ACCEPT", set_state(c, "flow_runs", run_id, "RUNNING").status)
  assert.are.equal("REJECT", set_state(c, "flow_runs", run_id, "PENDING").status)
  assert.are.equal("RUNNING", expect_status(c:get("/flow_runs/" .. run_id), 200):json().state_type)
  assert.are.equal("ACCEPT", set_state(c, "flow_runs", run_id, "COMPLETED").status)
  -- CopyScheduledTime: SCHEDULED -> PENDING copies next_scheduled_start_time
  -- into expected_start_time.
  local scheduled_time = "2025-06-15T10:00:00Z"
  r = c:post("/flow_runs/", { json = { flow_id = flow_id, name = "scheduled-run-" .. hex8(),
    state = state("SCHEDULED"), next_scheduled_start_time = scheduled_time } })
  local scheduled_id = expect_fields(expect_status(r, 200, 201):json(), { "id" }).id
  assert.are.equal("ACCEPT", set_state(c, "flow_runs", scheduled_id, "PENDING").status)
  assert.are.equal(scheduled_time, expect_status(c:get("/flow_runs/" .. scheduled_id), 200):json().expected_start_time)
end)

it("task_run", function()
  local c = api()
  local r = c:post("/task_runs/", { json = { task_key = "bench-task", dynamic_key = "key-" .. hex8(),
    name = "task-" .. hex8(), state = state("PENDING") } })
  local id = expect_status(r, 200, 201):json().id
  expect_status(c:get("/task_runs/" .. tostring(id)), 200)
  set_state(c, "task_runs", id, "RUNNING", false)
  set_state(c, "task_runs", id, "COMPLETED", false)
end)

it("filters", function()
  local c = api()
  for _, endpoint in ipairs({ "/flows/filter", "/flow_runs/filter", "/task_runs/filter" }) do
    expect_list(expect_status(c:post(endpoint, { json = {} }), 200):json(), endpoint)
  end
end)

it("logs", function()
  local c = api()
  local logs = {
    { level = 20, message = "test log 1", name = "test", timestamp = now_iso() },
    { level = 30, message = "test log 2", name = "test", timestamp = now_iso() },
  }
  expect_status(c:post("/logs/", { json = logs }), 200, 201, 204)
end)

it("variables", function()
  local c = api()
  local name = "bench-var-" .. hex8()
  local r = c:post("/variables/", { json = { name = name, value = { nested = "object", count = 42 },
    tags = { "benchmark", "test" } } })
  local variable = expect_fields(expect_status(r, 201):json(), { "id", "name", "value", "tags", "created", "updated" },
    { id = "str", name = "str", tags = "list" })
  expect_status(c:get("/variables/name/" .. name), 200)
  expect_status(c:get("/variables/" .. tostring(variable.id)), 200)
  expect_status(c:patch("/variables/name/" .. name, { json = { value = "updated" } }), 204)
  expect_list(expect_status(c:post("/variables/filter", { json = { limit = 10 } }), 200):json(), "/variables/filter")
  expect_status(c:post("/variables/count", { json = {} }), 200)
  expect_status(c:post("/variables/", { json = { name = name, value = "dupe" } }), 409) -- names are unique
  expect_status(c:delete("/variables/name/" .. name), 204)
end)

it("blocks", function()
  local c = api()
  local slug = "bench-block-" .. hex8()
  local r = c:post("/block_types/", { json = { name = "Bench Block " .. slug, slug = slug,
    description = "benchmark block type" } })
  local block_type = expect_fields(expect_status(r, 200, 201):json(), { "id", "name", "slug" },
    { id = "str", name = "str", slug = "str" })
  expect_status(c:get("/block_types/slug/" .. slug), 200)
  r = c:post("/block_schemas/", { json = { block_type_id = block_type.id,
    fields = { properties = { value = { type = "string" } } }, capabilities = { "test" }, version = "1.0.0" } })
  local schema = expect_status(r, 200, 201):json()
  expect_status(c:get("/block_schemas/checksum/" .. tostring(schema.checksum)), 200)
  local doc_name = "bench-doc-" .. hex8()
  r = c:post("/block_documents/", { json = { name = doc_name, block_type_id = block_type.id,
    block_schema_id = schema.id, data = { value = "secret-value" } } })
  local doc_id = tostring(expect_status(r, 200, 201):json().id)
  expect_status(c:get("/block_documents/" .. doc_id), 200)
  expect_status(c:get(string.format("/block_types/slug/%s/block_documents/name/%s", slug, doc_name)), 200)
  expect_status(c:patch("/block_documents/" .. doc_id, { json = { data = { value = "updated" } } }), 204)
  for _, endpoint in ipairs({ "/block_types/filter", "/block_schemas/filter", "/block_documents/filter" }) do
    expect_status(c:post(endpoint, { json = {} }), 200)
  end
  expect_status(c:delete("/block_documents/" .. doc_id), 204)
end)

it("work_pools", function()
  local c = api()
  local pool_name = "test-pool-" .. hex8()
  local pool_path = "/work_pools/" .. pool_name
  local r = c:post("/work_pools/", { json = { name = pool_name, type = "process", description = "test work pool" } })
  local pool = expect_fields(expect_status(r, 200, 201):json(), { "id", "name", "type", "status", "default_queue_id" },
    { id = "str", name = "str" })
  assert(pool.default_queue_id ~= json.null and pool.default_queue_id ~= "", "no default queue was created")
  expect_status(c:get(pool_path), 200)
  expect_status(c:patch(pool_path, { json = { description = "updated" } }), 204)
  expect_list(expect_status(c:post("/work_pools/filter", { json = {} }), 200):json(), "/work_pools/filter")
  -- a queue of its own, listed beside the default one
  local queue_name = "test-queue-" .. hex8()
  r = c:post(pool_path .. "/queues/", { json = { name = queue_name, description = "test queue", priority = 5 } })
  expect_fields(expect_status(r, 200, 201):json(), { "id", "name", "priority", "work_pool_id" },
    { id = "str", priority = "int" })
  expect_status(c:get(pool_path .. "/queues/" .. queue_name), 200)
  local queues = expect_status(c:post(pool_path .. "/queues/filter", { json = {} }), 200):json()
  expect_list(queues, "queues/filter")
  assert(#queues >= 2, "expected the default queue and ours, got " .. #queues)
  -- a worker's heartbeat makes the pool READY
  r = c:post(pool_path .. "/workers/heartbeat", { json = { name = "test-worker-1", heartbeat_interval_seconds = 30 } })
  expect_status(r, 204)
  assert.are.equal("READY", expect_status(c:get(pool_path), 200):json().status)
  local workers = expect_status(c:post(pool_path .. "/workers/filter", { json = {} }), 200):json()
  assert(#expect_list(workers, "workers/filter") >= 1, "expected the worker that sent a heartbeat, got none")
  expect_status(c:delete(pool_path .. "/queues/" .. queue_name), 204)
  expect_status(c:delete(pool_path), 204)
end)

it("deployments", function()
  local c = api()
  local flow = expect_status(c:post("/flows/", { json = { name = "deploy-flow-" .. hex8() } }), 200, 201):json()
  local name = "test-deployment-" .. hex8()
  local r = c:post("/deployments/", { json = { name = name, flow_id = flow.id, description = "test deployment",
    tags = { "test", "benchmark" }, parameters = { key = "value" },
    schedules = { { schedule = { interval = 3600 }, active = true } } } })
  local deployment = expect_fields(expect_status(r, 200, 201):json(),
    { "id", "name", "flow_id", "status", "schedules" }, { id = "str", name = "str" })
  assert.are.equal(1, #expect_list(deployment.schedules, "deployment schedules"))
  local path = "/deployments/" .. tostring(deployment.id)
  expect_status(c:get(path), 200)
  expect_status(c:get(string.format("/deployments/name/%s/%s", flow.name, name)), 200)
  expect_status(c:patch(path, { json = { description = "updated" } }), 204)
  r = c:post("/deployments/filter", { json = { limit = 10 } })
  expect_list(expect_status(r, 200):json(), "/deployments/filter")
  expect_status(c:post("/deployments/count", { json = {} }), 200)
  expect_status(c:post(path .. "/pause_deployment", { json = {} }), 204)
  expect_status(c:post(path .. "/resume_deployment", { json = {} }), 204)
  -- a flow run made from the deployment belongs to it
  local run = expect_fields(expect_status(c:post(path .. "/create_flow_run", { json = {} }), 200, 201):json(),
    { "id", "flow_id", "deployment_id" }, { id = "str" })
  assert.are.equal(deployment.id, run.deployment_id)
  -- schedules: list, create (inactive), activate, delete
  expect_list(expect_status(c:get(path .. "/schedules"), 200):json(), "GET schedules")
  r = c:post(path .. "/schedules", { json = { schedule = { cron = "0 0 * * *" }, active = false } })
  local created = expect_list(expect_status(r, 200, 201):json(), "created schedules")
  assert.are.equal(1, #created)
  local schedule_path = path .. "/schedules/" .. tostring(created[1].id)
  expect_status(c:patch(schedule_path, { json = { active = true } }), 204)
  expect_status(c:delete(schedule_path), 204)
  expect_status(c:delete(path), 204)
end)

it("get_scheduled_flow_runs", function()
  local c = api()
  local flow = expect_status(c:post("/flows/", { json = { name = "schedule-flow-" .. hex8() } }), 200, 201):json()
  local pool_name = "schedule-pool-" .. hex8()
  local pool_path = "/work_pools/" .. pool_name
  local pool = expect_status(c:post("/work_pools/", { json = { name = pool_name, type = "process" } }), 200, 201):json()
  assert.are.equal("NOT_READY", pool.status) -- no worker has polled it yet
  local r = c:post("/deployments/", { json = { name = "schedule-deploy-" .. hex8(), flow_id = flow.id,
    work_pool_name = pool_name } })
  local deployment = expect_status(r, 200, 201):json()
  local deployment_path = "/deployments/" .. tostring(deployment.id)
  cleanup(c, deployment_path, pool_path)
  assert.are.equal("NOT_READY", deployment.status)
  r = c:post(deployment_path .. "/create_flow_run", { json = { state = state("SCHEDULED") } })
  local run = expect_status(r, 200, 201):json()
  assert.are.equal("SCHEDULED", run.state_type)
  -- a worker polls: our run is offered through the pool's default queue
  local offered = expect_list(expect_status(c:post(pool_path .. "/get_scheduled_flow_runs", { json = {} }), 200):json(),
    "get_scheduled_flow_runs")
  local found = false
  for _, item in ipairs(offered) do
    found = found or (type(item.flow_run) == "table" and item.flow_run.id == run.id and
      item.work_pool_id == pool.id and item.work_queue_id == pool.default_queue_id)
  end
  assert(found, "scheduled flow run not found in results")
  -- polling makes the pool and the deployment READY
  assert.are.equal("READY", expect_status(c:get(pool_path), 200):json().status)
  assert.are.equal("READY", expect_status(c:get(deployment_path), 200):json().status)
  expect_status(c:post(pool_path .. "/get_scheduled_flow_runs", { json = { work_queue_names = { "default" } } }), 200)
  r = c:post(pool_path .. "/get_scheduled_flow_runs", { json = { scheduled_before = now_iso() } })
  expect_list(expect_status(r, 200):json(), "get_scheduled_flow_runs scheduled_before")
end)

it("scheduler_idempotency", function()
  local c = api()
  local deployment = scheduled_deployment(c, "idem", {
    schedules = { { schedule = { interval = 3600 }, active = true } } })
  local first = #wait_for_runs(c, deployment.id, 100)
  assert(first > 0, "scheduler did not create any runs")
  -- another scheduler run must not add runs for the same scheduled times
  task.sleep(SCHEDULER_TICK)
  assert.are.equal(first, #deployment_runs(c, deployment.id, 100), "idempotency failed: run count changed")
end)

it("parameter_merging", function()
  local c = api()
  local deployment = scheduled_deployment(c, "params", {
    parameters = { base_key = "base_value", override_key = "deployment_value" },
    schedules = { { schedule = { interval = 3600 }, active = true,
      parameters = { override_key = "schedule_value", schedule_key = "schedule_only" } } } })
  local runs = wait_for_runs(c, deployment.id, 10)
  assert(#runs > 0, "scheduler did not create any runs")
  local params = runs[1].parameters
  if type(params) == "string" then params = json.decode(params) end -- some servers send it encoded
  assert.is_table(params, "run parameters")
  -- the deployment's keys, overridden and extended by the schedule's
  assert.are.equal("base_value", params.base_key)
  assert.are.equal("schedule_value", params.override_key)
  assert.are.equal("schedule_only", params.schedule_key)
end)
