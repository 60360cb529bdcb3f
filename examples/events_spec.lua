-- A stub flow-run service written with sonde.server posts Prefect-style
-- events to an events sink as it works; the spec asserts on those events.
local server = require("sonde.server")
local events = require("sonde.events")
local http = require("sonde.http")
local task = require("sonde.task")

-- The stub: PUT /flow_runs/{id}/state moves a run to a state, answers at
-- once, and reports the transition to whoever listens at `events_url`.
local function flow_run_service(events_url)
  return server.serve({}, function(s)
    s:put("/flow_runs/{id}/state", function(req)
      local state = req:json().type
      task.spawn(function()
        http.post(events_url, { json = {
          event = "prefect.flow-run." .. state:sub(1, 1) .. state:sub(2):lower(),
          resource = { ["prefect.resource.id"] = "prefect.flow-run." .. req.params.id,
            ["prefect.state-type"] = state },
          related = { { ["prefect.resource.id"] = "prefect.flow.etl", ["prefect.resource.role"] = "flow" } },
          payload = { intended = { to = state } },
        } })
      end)
      return { status = 202, json = { id = req.params.id, state = state } }
    end)
  end)
end

describe("a service that reports its state changes as events", function()
  local sink, service, api
  before_each(function()
    sink = events.sink()
    service = flow_run_service(sink.url)
    api = http.client { base_url = service.url }
  end)
  after_each(function()
    service:close()
    sink:close()
  end)

  it("emits a Running event for the run it started", function()
    api:put("/flow_runs/42/state", { json = { type = "RUNNING" } }):raise_for_status()
    events.wait_for({ event = "prefect.flow-run.Running" }, 5)
    events.assert_emitted_event_with {
      event = "prefect.flow-run.Running",
      resource = { ["prefect.resource.id"] = "prefect.flow-run.42" },
      related = { { ["prefect.resource.role"] = "flow", ["prefect.resource.id"] = "prefect.flow.*" } },
      payload = { intended = { to = "RUNNING" } },
    }
  end)

  it("emits one event per transition, and none for runs it never touched", function()
    for _, state in ipairs({ "PENDING", "RUNNING", "COMPLETED" }) do
      api:put("/flow_runs/7/state", { json = { type = state } })
    end
    events.wait_for({ event = "prefect.flow-run.Completed" }, 5)
    while events.count() < 3 do task.sleep(0.01) end
    events.assert_emitted_event_count(3)
    events.assert_emitted_event_with { resource = { ["prefect.state-type"] = { "PENDING", "SCHEDULED" } } }
    events.assert_no_emitted_event_with { resource = { ["prefect.resource.id"] = "prefect.flow-run.8" } }
  end)
end)
