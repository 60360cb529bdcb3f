-- sonde.events: the event model, clients, Prefect's matching rules, failure
-- messages, wait_for, and bad input. Waits are ordered against each other
-- (a task that emits runs when the waiter suspends), never against time.
local events = require("sonde.events")
local task = require("sonde.task")
local json = require("sonde.json")
local dsl = require("sonde.runner.dsl")
local support = require("specs.support")

local ID, ROLE, NAME = "prefect.resource.id", "prefect.resource.role", "prefect.resource.name"
local UUID4 = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function resource(id, labels)
  local r = { [ID] = id }
  for k, v in pairs(labels or {}) do r[k] = v end
  return r
end

local function related(id, role, labels)
  local r = resource(id, labels)
  r[ROLE] = role
  return r
end

-- line() -> the line it is called on, to check where errors point.
local function line() return debug.getinfo(2, "l").currentline end

-- raised(fn) -> what fn raised; fails the test when it raised nothing.
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error to be raised")
  return err
end

local function failure_message(fn)
  local err = raised(fn)
  assert.is_true(dsl.is_failure(err), "expected a test failure, got: " .. tostring(err))
  return tostring(err.message)
end

-- matches(criteria) -> whether assert_emitted_event_with passes; checks that
-- assert_no_emitted_event_with says the opposite.
local function matches(criteria)
  local ok, err = pcall(events.assert_emitted_event_with, criteria)
  local no_ok, no_err = pcall(events.assert_no_emitted_event_with, criteria)
  if ok then
    assert.is_false(no_ok)
    assert.is_true(dsl.is_failure(no_err), tostring(no_err))
    return true
  end
  assert.is_true(dsl.is_failure(err), "expected a failure, got: " .. tostring(err))
  assert.is_true(no_ok, tostring(no_err))
  return false
end

local function emit(ev)
  return events.with_client(function(c) return c:emit(ev) end)
end

describe("emit", function()
  before_each(events.reset)

  it("fills a UUID v4 id and an RFC 3339 UTC occurred from task.time()", function()
    local before = events.rfc3339(task.time())
    local ev = emit { event = "order.paid", resource = resource("order.1") }
    local after = events.rfc3339(task.time())
    assert.matches(UUID4, ev.id)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$", ev.occurred)
    assert.is_true(before <= ev.occurred and ev.occurred <= after, before .. " <= " .. ev.occurred .. " <= " .. after)
  end)

  it("takes occurred from the virtual clock when one runs", function()
    local clock = require("sonde.clock")
    local before, after, ev = clock.virtual(function()
      local t0 = task.time()
      task.sleep(3600)
      return t0, task.time(), emit { event = "later", resource = resource("r") }
    end)
    assert.is_true(after - before >= 3600 - 1e-6, tostring(after - before))
    assert.are.equal(events.rfc3339(after), ev.occurred)
  end)

  it("formats occurred in UTC", function()
    assert.are.equal("1970-01-01T00:00:00.000000Z", events.rfc3339(0))
    assert.are.equal("2024-02-29T23:59:59.250000Z", events.rfc3339(1709251199.25))
  end)

  it("gives every event its own id", function()
    local seen = {}
    events.with_client(function(c)
      for i = 1, 2000 do
        local ev = c:emit { event = "tick", resource = resource("clock." .. i) }
        assert.is_nil(seen[ev.id])
        seen[ev.id] = true
      end
    end)
  end)

  it("records and returns a new event, leaving the caller's table alone", function()
    local mine = { event = "order.paid", resource = resource("order.1") }
    local ev = emit(mine)
    assert.are_not.equal(mine, ev)
    assert.is_nil(mine.id)
    assert.are.equal(ev, events.emitted()[1])
    assert.are.same({}, ev.related)
    assert.are.same({}, ev.payload)
  end)

  it("keeps a given id, occurred and follows, and turns epoch seconds into RFC 3339", function()
    local id, first = "5f0c4a2e-1b7d-4c1e-9d2a-0a1b2c3d4e5f", "0a0b0c0d-1111-4222-8333-444455556666"
    local ev = emit { id = id, occurred = 86400.5, follows = first, event = "x", resource = resource("r") }
    assert.are.equal(id, ev.id)
    assert.are.equal("1970-01-02T00:00:00.500000Z", ev.occurred)
    assert.are.equal(first, ev.follows)
    ev = emit { occurred = "2024-05-01T12:00:00+02:00", event = "x", resource = resource("r") }
    assert.are.equal("2024-05-01T12:00:00+02:00", ev.occurred)
  end)
end)

describe("clients", function()
  before_each(events.reset)

  it("refuse to emit before open, naming the caller's line", function()
    local c = events.client()
    local at, err = line(), raised(function() c:emit { event = "x", resource = resource("r") } end)
    assert.matches("events may only be emitted while the client is open", err, 1, true)
    assert.matches("events_spec%.lua:" .. at .. ":", err)
    assert.are.equal(0, events.count())
  end)

  it("refuse to emit after close, and emit again once reopened", function()
    local c = events.client():open()
    c:emit { event = "x", resource = resource("r") }
    c:close()
    local err = raised(function() c:emit { event = "y", resource = resource("r") } end)
    assert.matches("events may only be emitted while the client is open (this client was closed)", err, 1, true)
    c:open()
    c:emit { event = "z", resource = resource("r") }
    assert.are.equal(2, events.count())
  end)

  it("with_client opens a client for fn, closes it after and returns fn's results", function()
    local kept
    local a, b = events.with_client(function(c)
      kept = c
      assert.is_true(c.is_open)
      task.sleep(0) -- fn may wait: it runs in the calling task
      c:emit { event = "x", resource = resource("r") }
      return 1, 2
    end)
    assert.are.same({ 1, 2 }, { a, b })
    assert.is_false(kept.is_open)
    local err = raised(function() kept:emit { event = "x", resource = resource("r") } end)
    assert.matches("while the client is open", err)
  end)

  it("with_client closes the client when fn raises, and re-raises the same error", function()
    local kept, boom = nil, { reason = "boom" }
    local err = raised(events.with_client, function(c)
      kept = c
      error(boom)
    end)
    assert.are.equal(boom, err)
    assert.is_false(kept.is_open)
  end)

  it("say how to call emit when called with a dot", function()
    local c = events.client():open()
    local err = raised(function() c.emit { event = "x", resource = resource("r") } end)
    assert.matches("call it as c:emit(...), with a colon", err, 1, true)
  end)
end)

describe("malformed events", function()
  before_each(events.reset)

  local cases = {
    { "not a table", "oops", "an event must be a table, got string" },
    { "missing name", { resource = resource("r") }, "the event name (field `event`) is missing" },
    { "empty name", { event = "", resource = resource("r") }, "must be non-empty" },
    { "name not a string", { event = 3, resource = resource("r") }, "must be a string, got number" },
    { "name too long", { event = string.rep("x", 1025), resource = resource("r") },
      "Event name must be at most 1024 characters" },
    { "missing resource", { event = "x" }, "the resource is missing" },
    { "resource not a table", { event = "x", resource = "r" },
      "resource must be a table of string labels, got string" },
    { "resource without id", { event = "x", resource = { [NAME] = "n" } },
      "resource: Resources must include the prefect.resource.id label" },
    { "empty resource id", { event = "x", resource = { [ID] = "" } },
      "resource: The prefect.resource.id label must be non-empty" },
    { "label not a string", { event = "x", resource = resource("r", { count = 3 }) },
      'resource: label "count" must be a string, got number' },
    { "related without role", { event = "x", resource = resource("r"), related = { resource("f") } },
      "related[1]: Related Resources must include the prefect.resource.role label" },
    { "related without id", { event = "x", resource = resource("r"), related = { { [ROLE] = "flow" } } },
      "related[1]: Related Resources must include the prefect.resource.id label" },
    { "related not a list", { event = "x", resource = resource("r"), related = related("f", "flow") },
      "related must be a list of resources" },
    { "payload a number", { event = "x", resource = resource("r"), payload = 3 },
      "payload must be a table (a JSON object), got number" },
    { "payload a string", { event = "x", resource = resource("r"), payload = "{}" },
      "payload must be a table (a JSON object), got string" },
    { "payload a list", { event = "x", resource = resource("r"), payload = { 1, 2 } },
      "payload keys must be strings" },
    { "bad id", { event = "x", resource = resource("r"), id = "42" }, "id must be a UUID string" },
    { "bad occurred", { event = "x", resource = resource("r"), occurred = "yesterday" },
      "occurred must be an RFC 3339 timestamp" },
    { "occurred out of range", { event = "x", resource = resource("r"), occurred = 1 / 0 },
      "occurred must be an RFC 3339 timestamp or epoch seconds, got inf" },
    { "unknown field", { event = "x", resource = resource("r"), payloads = {} }, 'unknown field "payloads"' },
  }
  for _, case in ipairs(cases) do
    local what, ev, reason = case[1], case[2], case[3]
    it("raise a clear error at the caller's line: " .. what, function()
      local c = events.client():open()
      local at, err = line(), raised(function() c:emit(ev) end)
      assert.matches("emit: malformed event: ", err, 1, true)
      assert.matches(reason, err, 1, true)
      assert.matches("events_spec%.lua:" .. at .. ":", err)
      assert.are.equal(0, events.count())
    end)
  end

  it("limit related resources to 100 and labels to 500", function()
    local many = {}
    for i = 1, 101 do many[i] = related("f." .. i, "flow") end
    local ok, reason = events.validate { event = "x", resource = resource("r"), related = many }
    assert.is_nil(ok)
    assert.are.equal("The maximum number of related resources is 100", reason)
    local labels = resource("r")
    for i = 1, 500 do labels["l" .. i] = "v" end
    ok, reason = events.validate { event = "x", resource = labels }
    assert.is_nil(ok)
    assert.are.equal("resource: The maximum number of labels per resource is 500", reason)
  end)
end)

describe("record and record_all", function()
  before_each(events.reset)

  it("record validates an outside event, fills it in and records it", function()
    local ev = events.record(json.decode('{"event": "hook.received", "resource": {"prefect.resource.id": "hook.1"},'
      .. ' "payload": {"n": null}, "follows": null}'))
    assert.matches(UUID4, ev.id)
    assert.are.equal(1, events.count())
    assert.are.equal(json.null, ev.payload.n)
    assert.is_nil(ev.follows)
  end)

  it("record names the caller's line for a malformed event", function()
    local at, err = line(), raised(function() events.record { event = "x", resource = { [NAME] = "n" } } end)
    assert.matches("events_spec%.lua:" .. at .. ": events%.record: malformed event: ", err)
    assert.are.equal(0, events.count())
  end)

  it("record_all records a whole list in order", function()
    local out = events.record_all {
      { event = "a", resource = resource("r") },
      { event = "b", resource = resource("r") },
    }
    assert.are.equal(2, #out)
    assert.are.same({ "a", "b" }, { events.emitted()[1].event, events.emitted()[2].event })
  end)

  it("record_all records nothing when one element is bad", function()
    events.record { event = "before", resource = resource("r") }
    local list = {
      { event = "a", resource = resource("r") },
      { event = "b", resource = resource("r"), related = { resource("f") } },
      { event = "c", resource = resource("r") },
    }
    local err = raised(events.record_all, list)
    assert.matches("nothing recorded: event 2 of 3: related[1]: Related Resources must include the " ..
      "prefect.resource.role label", err, 1, true)
    assert.are.equal(1, events.count())
  end)

  it("try_record_all records a good list, and returns the reason for a bad one", function()
    local out = events.try_record_all { { event = "a", resource = resource("r") } }
    assert.are.equal(1, #out)
    local none, reason = events.try_record_all { { event = "b", resource = resource("r") }, { event = "c" } }
    assert.is_nil(none)
    assert.matches("^event 2 of 2: the resource is missing", reason)
    assert.are.equal(1, events.count())
  end)

  it("validate_all says why without raising or recording", function()
    local out, reason = events.validate_all { { event = "a", resource = resource("r") }, "nope" }
    assert.is_nil(out)
    assert.are.equal("event 2 of 2: an event must be a table, got string", reason)
    out, reason = events.validate_all { a = 1 }
    assert.is_nil(out)
    assert.matches("expected a list of events", reason)
    assert.are.equal(0, events.count())
  end)
end)

describe("the class-level view", function()
  before_each(events.reset)

  it("holds the events of every client, and of record, oldest first", function()
    local a, b = events.client():open(), events.client():open()
    a:emit { event = "1", resource = resource("r") }
    b:emit { event = "2", resource = resource("r") }
    events.record { event = "3", resource = resource("r") }
    a:emit { event = "4", resource = resource("r") }
    local names = {}
    for i, ev in ipairs(events.emitted()) do names[i] = ev.event end
    assert.are.same({ "1", "2", "3", "4" }, names)
    assert.are.equal(4, events.count())
    events.assert_emitted_event_count(4)
  end)

  it("emitted() is a copy", function()
    emit { event = "1", resource = resource("r") }
    local list = events.emitted()
    list[2] = list[1]
    assert.are.equal(1, events.count())
  end)

  it("reset drops the events; clients stay usable", function()
    local c = events.client():open()
    c:emit { event = "setup", resource = resource("r") }
    events.reset()
    assert.are.equal(0, events.count())
    c:emit { event = "after", resource = resource("r") }
    events.assert_emitted_event_count(1)
    assert.is_false(matches { event = "setup" })
  end)

  it("assert_emitted_event_count fails with both counts and lists the events", function()
    emit { event = "order.paid", resource = resource("order.1") }
    emit { event = "order.shipped", resource = resource("order.1") }
    local msg = failure_message(function() events.assert_emitted_event_count(3) end)
    assert.matches("The number of emitted events did not match the expected count: total_num_events=2 != count=3",
      msg, 1, true)
    assert.matches('"order.shipped" on "order.1".*"order.paid" on "order.1"', msg)
  end)
end)

describe("matching", function()
  before_each(function()
    events.reset()
    emit {
      event = "prefect.flow-run.Running",
      resource = resource("prefect.flow-run.1", { [NAME] = "nightly", empty = "" }),
      related = { related("prefect.flow.7", "flow", { [NAME] = "etl" }), related("prefect.tag.prod", "tag") },
      payload = { count = 2, state = { type = "RUNNING", tags = { "a", "b" } }, note = json.null },
    }
  end)

  it("with no criteria, any event matches", function()
    assert.is_true(matches(nil))
    assert.is_true(matches {})
    events.reset()
    assert.is_false(matches {})
  end)

  it("event is exact: no prefix, no wildcard", function()
    assert.is_true(matches { event = "prefect.flow-run.Running" })
    assert.is_false(matches { event = "prefect.flow-run" })
    assert.is_false(matches { event = "prefect.flow-run.*" })
    assert.is_false(matches { event = "prefect.flow-run.running" })
  end)

  it("labels are ANDed", function()
    assert.is_true(matches { resource = { [ID] = "prefect.flow-run.1", [NAME] = "nightly" } })
    assert.is_false(matches { resource = { [ID] = "prefect.flow-run.1", [NAME] = "weekly" } })
    assert.is_false(matches { resource = { [ID] = "prefect.flow-run.2", [NAME] = "nightly" } })
  end)

  it("a list of values is ORed", function()
    assert.is_true(matches { resource = { [NAME] = { "weekly", "nightly" } } })
    assert.is_false(matches { resource = { [NAME] = { "weekly", "hourly" } } })
    assert.is_false(matches { resource = { [NAME] = {} } }) -- any of nothing: no match
  end)

  it("a trailing * matches a prefix, and * alone any present value", function()
    assert.is_true(matches { resource = { [ID] = "prefect.flow-run.*" } })
    assert.is_true(matches { resource = { [ID] = "prefect.flow-run.1*" } }) -- the empty rest
    assert.is_false(matches { resource = { [ID] = "prefect.task-run.*" } })
    assert.is_true(matches { resource = { empty = "*" } })
    assert.is_false(matches { resource = { [ID] = "*.flow-run.1" } }) -- * only at the end
  end)

  it("a leading ! negates that one value", function()
    assert.is_false(matches { resource = { [ID] = "!prefect.flow-run.1" } })
    assert.is_true(matches { resource = { [ID] = "!prefect.flow-run.2" } })
    assert.is_false(matches { resource = { [ID] = "!prefect.flow-run.*" } })
    assert.is_true(matches { resource = { [ID] = "!prefect.task-run.*" } })
  end)

  it("negations are ORed with the other values, as Prefect's any()", function()
    assert.is_true(matches { resource = { [NAME] = { "!a", "!b" } } })
    assert.is_true(matches { resource = { [NAME] = { "night*", "!nightly" } } })
    assert.is_false(matches { resource = { [NAME] = { "weekly", "!nightly" } } })
  end)

  it("a label the resource lacks never matches, not even negated or *", function()
    assert.is_false(matches { resource = { ["prefect.resource.role"] = "!anything" } })
    assert.is_false(matches { resource = { missing = "*" } })
    assert.is_false(matches { resource = { missing = { "!a", "!b" } } })
  end)

  it("each related spec must match some related resource", function()
    assert.is_true(matches { related = { { [ROLE] = "flow" } } })
    assert.is_true(matches { related = { { [ROLE] = "tag", [ID] = "prefect.tag.*" }, { [ROLE] = "flow" } } })
    assert.is_false(matches { related = { { [ROLE] = "flow" }, { [ROLE] = "work-pool" } } })
    -- labels of one spec must hold on the same related resource
    assert.is_false(matches { related = { { [ROLE] = "tag", [NAME] = "etl" } } })
    -- one resource may satisfy several specs
    assert.is_true(matches { related = { { [ROLE] = "flow" }, { [NAME] = "etl" } } })
  end)

  it("related specs use the same rules: lists, prefixes, negation, missing labels", function()
    assert.is_true(matches { related = { { [ROLE] = { "task", "flow" } } } })
    assert.is_true(matches { related = { { [ID] = "prefect.flow.*" } } })
    assert.is_true(matches { related = { { [ROLE] = "!flow" } } }) -- the tag
    assert.is_false(matches { related = { { [ROLE] = "tag", [NAME] = "!x" } } }) -- the tag has no name
  end)

  it("an empty related list is no constraint, an empty spec needs a related resource", function()
    assert.is_true(matches { related = {} })
    assert.is_true(matches { related = { {} } })
    events.reset()
    emit { event = "alone", resource = resource("r") }
    assert.is_true(matches { related = {} })
    assert.is_false(matches { related = { {} } })
  end)

  it("payload compares the given top-level keys by deep equality; other keys do not matter", function()
    assert.is_true(matches { payload = { count = 2 } })
    assert.is_true(matches { payload = { state = { type = "RUNNING", tags = { "a", "b" } } } })
    assert.is_false(matches { payload = { state = { type = "RUNNING" } } }) -- tags missing
    assert.is_false(matches { payload = { state = { type = "RUNNING", tags = { "b", "a" } } } })
    assert.is_false(matches { payload = { count = "2" } })
    assert.is_false(matches { payload = { count = 2, absent = 1 } })
  end)

  it("payload: null matches null and a missing key (Prefect's None); luassert matchers apply", function()
    assert.is_true(matches { payload = { note = json.null } })
    assert.is_true(matches { payload = { absent = json.null } })
    assert.is_false(matches { payload = { count = json.null } })
    assert.is_true(matches { payload = { count = match.is_number() } })
    assert.is_false(matches { payload = { state = match.is_string() } })
  end)

  it("all criteria are ANDed", function()
    assert.is_true(matches { event = "prefect.flow-run.Running", resource = { [ID] = "prefect.flow-run.*" },
      related = { { [ROLE] = "flow" } }, payload = { count = 2 } })
    assert.is_false(matches { event = "prefect.flow-run.Running", resource = { [ID] = "prefect.flow-run.*" },
      related = { { [ROLE] = "flow" } }, payload = { count = 3 } })
  end)

  it("returns the newest matching event", function()
    local newer = emit { event = "prefect.flow-run.Running", resource = resource("prefect.flow-run.2") }
    emit { event = "prefect.flow-run.Completed", resource = resource("prefect.flow-run.2") }
    assert.are.equal(newer, events.assert_emitted_event_with { event = "prefect.flow-run.Running" })
  end)
end)

describe("failure messages", function()
  before_each(events.reset)

  it("list the criteria, the count and, newest first, each candidate's first mismatch", function()
    emit { event = "order.paid", resource = resource("order.1"), payload = { count = 2 } }
    emit { event = "order.created", resource = resource("order.1") }
    emit { event = "order.paid", resource = resource("order.9") }
    local at, msg = line(), failure_message(function()
      events.assert_emitted_event_with { event = "order.paid", resource = { [ID] = "order.1" },
        payload = { count = 3 } }
    end)
    assert.matches("events_spec%.lua:" .. at + 1 .. ": An event was not emitted matching the following criteria:", msg)
    assert.matches('\n    event="order.paid"\n    resource={"prefect.resource.id": "order.1"}\n    related=nil\n'
      .. '    payload={"count": 3}\n\n# of captured events: 3\n', msg, 1, true)
    local c1, c2, c3 = msg:find("Candidate 1 of 3", 1, true), msg:find("Candidate 2 of 3", 1, true),
      msg:find("Candidate 3 of 3", 1, true)
    assert.is_truthy(c1 and c2 and c3 and c1 < c2 and c2 < c3, msg)
    assert.matches('Candidate 1 of 3: "order.paid" on "order.9".-Expected:\n        resource={"prefect.resource.id": '
      .. '"order.1"}\n    Received:\n        resource={"prefect.resource.id": "order.9"}', msg)
    assert.matches('Candidate 2 of 3: "order.created".-Expected:\n        event="order.paid"\n    Received:\n'
      .. '        event="order.created"', msg)
    assert.matches('Candidate 3 of 3: "order.paid" on "order.1".-Expected:\n        payload.count=3\n    Received:\n'
      .. '        payload={"count": 2}', msg)
  end)

  it("end with a path-addressed diff of the closest event", function()
    emit { event = "order.paid", resource = resource("order.1"), payload = { count = 2, items = { { sku = "a" } } } }
    emit { event = "order.created", resource = resource("order.2") }
    local msg = failure_message(function()
      events.assert_emitted_event_with { event = "order.paid", resource = { [ID] = "order.*", [NAME] = "big" },
        payload = { count = 3, items = { { sku = "b" } } } }
    end)
    assert.matches("Closest event (candidate 2, meets 2 of 5 criteria)", msg, 1, true)
    assert.matches('\n    $.resource["prefect.resource.name"]: missing (expected "big")\n'
      .. '    $.payload.count: expected 3, got 2\n    $.payload.items[1].sku: expected "b", got "a"', msg, 1, true)
  end)

  it("point a failed related spec at the nearest related resource", function()
    emit { event = "x", resource = resource("r"),
      related = { related("prefect.tag.a", "tag"), related("prefect.flow.1", "flow", { [NAME] = "etl" }) } }
    local msg = failure_message(function()
      events.assert_emitted_event_with { related = { { [ROLE] = "flow", [NAME] = "elt" } } }
    end)
    assert.matches("$.related: none matches related[1]; the nearest is $.related[2]:\n"
      .. '    $.related[2]["prefect.resource.name"]: expected "elt", got "etl"', msg, 1, true)
    assert.matches('Expected:\n        related[1]={"prefect.resource.name": "elt", "prefect.resource.role": "flow"}',
      msg, 1, true)
  end)

  it("list at most MAX_LISTED candidates and count the rest by first mismatch", function()
    events.with_client(function(c)
      for i = 1, 30 do c:emit { event = i % 2 == 0 and "even" or "odd", resource = resource("n." .. i) } end
    end)
    local msg = failure_message(function()
      events.assert_emitted_event_with { event = "odd", resource = { [ID] = "n.0" } }
    end)
    assert.matches("Candidate 20 of 30", msg, 1, true)
    assert.is_nil(msg:find("Candidate 21 of 30", 1, true))
    assert.matches("... and 10 older candidates not shown (first mismatch: 5 on event, 5 on resource)", msg, 1, true)
  end)

  it("show luassert matchers as written", function()
    emit { event = "x", resource = resource("r"), payload = { count = "2" } }
    local msg = failure_message(function()
      events.assert_emitted_event_with { payload = { count = match.is_number(), gone = match.is_string() } }
    end)
    assert.matches('payload={"count": match.is_number(), "gone": match.is_string()}', msg, 1, true)
    assert.matches('$.payload.count: expected match.is_number(), got "2"\n'
      .. '    $.payload.gone: missing (expected match.is_string())', msg, 1, true)
  end)

  it("say so when nothing was captured", function()
    local msg = failure_message(function() events.assert_emitted_event_with { event = "x" } end)
    assert.matches("# of captured events: 0", msg, 1, true)
    assert.is_nil(msg:find("Closest", 1, true))
  end)

  it("of assert_no_emitted_event_with show the event that matched", function()
    emit { event = "order.paid", resource = resource("order.1") }
    local at, msg = line(), failure_message(function() events.assert_no_emitted_event_with { event = "order.paid" } end)
    assert.matches("events_spec%.lua:" .. at .. ": An event was emitted matching the given criteria:", msg)
    assert.matches('Matching event (candidate 1, newest first): "order.paid" on "order.1"', msg, 1, true)
  end)
end)

describe("criteria of the wrong type", function()
  before_each(function()
    events.reset()
    emit { event = "x", resource = resource("r") }
  end)

  local cases = {
    { "criteria not a table", "x", "expected a table of criteria {event=, resource=, related=, payload=}, got string" },
    { "unknown criterion", { resources = {} }, 'unknown criterion "resources"' },
    { "event not a string", { event = 3 }, "event must be the exact event name (a string), got number" },
    { "resource a string", { resource = "r" }, "resource must be a table of label = value" },
    { "label value a number", { resource = { [ID] = 1 } },
      'resource["prefect.resource.id"] must be a string or a list of strings, got number' },
    { "label list with a number", { resource = { [ID] = { "a", 2 } } },
      'resource["prefect.resource.id"][2] must be a string, got number' },
    { "related a map", { related = { [ROLE] = "flow" } }, "related must be a list of resource specs" },
    { "related a string", { related = "flow" }, "related must be a list of resource specs" },
    { "related spec a string", { related = { "flow" } }, "related[1] must be a table of label = value" },
    { "payload a number", { payload = 3 }, "payload must be a table of top-level keys to compare, got number" },
  }
  for _, case in ipairs(cases) do
    local what, criteria, reason = case[1], case[2], case[3]
    it("raise an error (not a failure) at the caller's line: " .. what, function()
      for _, fn in ipairs({ "assert_emitted_event_with", "assert_no_emitted_event_with", "wait_for" }) do
        local at, err = line(), raised(function() events[fn](criteria) end)
        assert.is_false(dsl.is_failure(err))
        assert.matches("events_spec%.lua:" .. at .. ": events%." .. fn .. ": ", err)
        assert.matches(reason, err, 1, true)
      end
    end)
  end

  it("assert_emitted_event_count needs a whole number", function()
    for _, bad in ipairs({ -1, 1.5, "1" }) do
      local at, err = line(), raised(function() events.assert_emitted_event_count(bad) end)
      assert.matches("events_spec%.lua:" .. at .. ": events%.assert_emitted_event_count: expected a whole number", err)
    end
  end)

  it("wait_for needs criteria: nil is a mistake, {} waits for any event", function()
    local at, err = line(), raised(function() events.wait_for(nil, 5) end)
    assert.matches("events_spec%.lua:" .. at .. ": events%.wait_for: expected a table of criteria " ..
      "{event=, resource=, related=, payload=} %({} waits for any event%), got nil$", err)
    assert.are.equal("x", events.wait_for({}, 0).event)
  end)

  it("wait_for needs a number of seconds", function()
    local at, err = line(), raised(function() events.wait_for({ event = "x" }, "5") end)
    assert.matches("events_spec%.lua:" .. at .. ": events%.wait_for: timeout must be a number of seconds", err)
  end)
end)

describe("wait_for", function()
  before_each(events.reset)

  it("returns an event that already arrived, newest first", function()
    emit { event = "job.done", resource = resource("job.1") }
    local newest = emit { event = "job.done", resource = resource("job.2") }
    assert.are.equal(newest, events.wait_for({ event = "job.done" }, 0))
  end)

  it("blocks until another task emits a matching event, skipping those that do not match", function()
    local order = {}
    task.spawn(function()
      order[#order + 1] = "emitter runs"
      emit { event = "job.started", resource = resource("job.1") }
      task.sleep(0)
      order[#order + 1] = "emits the match"
      emit { event = "job.done", resource = resource("job.1"), payload = { ok = true } }
    end)
    order[#order + 1] = "waiting"
    local ev = events.wait_for({ event = "job.done", payload = { ok = true } }, 5)
    order[#order + 1] = "woke"
    assert.are.equal("job.done", ev.event)
    assert.are.same({ "waiting", "emitter runs", "emits the match", "woke" }, order)
  end)

  it("wakes for events recorded from outside (the sink's path)", function()
    task.spawn(function()
      events.record_all { { event = "hook", resource = resource("a") }, { event = "hook", resource = resource("b") } }
    end)
    local ev = events.wait_for({ event = "hook", resource = { [ID] = "b" } }, 5)
    assert.are.equal("b", ev.resource[ID])
  end)

  it("wakes every waiter", function()
    local got = {}
    local waiters = {}
    for i = 1, 3 do
      waiters[i] = task.spawn(function() got[i] = events.wait_for({ event = "go" }, 5).event end)
    end
    task.sleep(0) -- let them all wait
    emit { event = "go", resource = resource("r") }
    for i = 1, 3 do waiters[i]:join() end
    assert.are.same({ "go", "go", "go" }, got)
  end)

  it("sees events recorded after a reset during the wait", function()
    local waiter = task.spawn(function() return events.wait_for({ event = "late" }, 5) end)
    task.sleep(0)
    events.reset()
    local ev = emit { event = "late", resource = resource("r") }
    assert.are.equal(ev, waiter:join())
  end)

  it("raises a timeout listing what did arrive", function()
    emit { event = "job.started", resource = resource("job.1") }
    emit { event = "job.failed", resource = resource("job.1") }
    local at, err = line(), raised(function() events.wait_for({ event = "job.done" }, 0.01) end)
    assert.is_true(task.is_timeout(err))
    local msg = tostring(err)
    assert.matches("^timeout: events%.wait_for %(at [^)]*events_spec%.lua:" .. at .. "%): no event matching the "
      .. "criteria arrived within 0%.01s", msg)
    assert.matches("# of captured events: 2", msg, 1, true)
    assert.matches('Candidate 1 of 2: "job.failed".-Candidate 2 of 2: "job.started"', msg)
  end)

  it("with timeout 0 checks once and raises at once", function()
    local err = raised(events.wait_for, { event = "never" }, 0)
    assert.is_true(task.is_timeout(err))
    assert.matches("# of captured events: 0", tostring(err), 1, true)
  end)

  it("can be cancelled, leaving nothing behind", function()
    local waiter = task.spawn(events.wait_for, { event = "never" }, 5)
    task.sleep(0)
    waiter:cancel()
    local err = raised(waiter.join, waiter)
    assert.is_true(task.is_cancelled(err))
    emit { event = "never", resource = resource("r") } -- nothing to wake any more
  end)
end)

describe("between tests", function()
  -- These two rely on the runner resetting sonde.events before every test
  -- (events._test_reset, called through sonde.lib.test_hooks): no reset here.
  it("an event emitted here...", function()
    emit { event = "leaks?", resource = resource("r") }
    assert.is_true(events.count() >= 1)
  end)

  it("...is gone in the next test", function()
    events.assert_emitted_event_count(0)
  end)
end)

describe("reported by the runner", function()
  it("a failed events assertion is a failure, a malformed criterion an error, both at the caller's line", function()
    local code, out = support.sonde("test", "-o", "tap", support.fixture("events/outcomes.lua"))
    assert.are.equal(1, code)
    assert.matches('not ok 1 %- events outcomes fails an assertion\n  %-%-%-\n  severity: "fail"', out)
    assert.matches("outcomes%.lua:10: An event was not emitted matching the following criteria:", out)
    assert.matches("$.payload.count: expected 3, got 2", out, 1, true)
    assert.matches('not ok 2 %- events outcomes raises on a malformed criterion\n  %-%-%-\n  severity: "error"', out)
    assert.matches("outcomes%.lua:14: events%.assert_emitted_event_with: resource must be a table", out)
  end)
end)

describe("events.sink", function()
  local http = require("sonde.http")
  local function ev(name, id)
    return { event = name, resource = { ["prefect.resource.id"] = id or "prefect.flow-run.1" } }
  end

  it("records one event or a list POSTed to it, like emitted ones", function()
    local sink = events.sink()
    assert.matches("^http://127%.0%.0%.1:%d+/events$", sink.url)
    local r = http.post(sink.url, { json = ev("webhook.one") })
    assert.are.equal(202, r.status)
    r = http.post(sink.url, { json = { ev("webhook.two"), ev("webhook.three") } })
    assert.are.same({ recorded = 2 }, r:json())
    assert.are.equal(3, events.count())
    events.assert_emitted_event_with { event = "webhook.three" }
    sink:close()
  end)

  it("refuses malformed JSON and a list with one bad event, recording nothing of it", function()
    local sink = events.sink()
    local r = http.post(sink.url, { body = "{not json" })
    assert.are.equal(400, r.status)
    assert.matches("the body must be JSON", r:json().error)
    r = http.post(sink.url, { json = { ev("ok.one"), { event = "bad", resource = {} } } })
    assert.are.equal(400, r.status)
    assert.matches("event 2 of 2", r:json().error)
    assert.matches("prefect.resource.id", r:json().error)
    assert.are.equal(0, events.count())
    sink:close()
  end)

  it("refuses an empty object, which is no event, naming what it lacks; an empty list records nothing", function()
    local sink = events.sink()
    local r = http.post(sink.url, { body = " {}", headers = { ["Content-Type"] = "application/json" } })
    assert.are.equal(400, r.status, r.body)
    assert.are.same({ error = "event 1 of 1: the event name (field `event`) is missing" }, r:json())
    r = http.post(sink.url, { body = "[]" })
    assert.are.equal(202, r.status, r.body)
    assert.are.same({ recorded = 0 }, r:json())
    assert.are.equal(0, events.count())
    sink:close()
  end)

  it("says why in one line, whatever a label's name holds (fuzz_events)", function()
    local sink = events.sink()
    local r = http.post(sink.url, { body = '{"event": "x", "resource": {"prefect.resource.id": "r", "a\\nb": 12}}' })
    assert.are.equal(400, r.status)
    assert.are.equal('event 1 of 1: resource: label "a\\nb" must be a string, got number', r:json().error)
    sink:close()
  end)

  it("refuses an unknown or mistyped option at the caller's line", function()
    local function sink_error(opts)
      local ok, err = pcall(function() local sink = events.sink(opts) return sink end)
      assert.is_false(ok)
      return err
    end
    assert.matches('events_spec.lua:%d+: events.sink: unknown option "prot" %(expected port, host, path or max_body%)$',
      sink_error { prot = 8080 })
    assert.matches('events_spec.lua:%d+: events.sink: port must be a number, got "8080"$', sink_error { port = "8080" })
    assert.matches("events_spec.lua:%d+: events.sink: path must start with '/', got \"events\"$",
      sink_error { path = "events" })
  end)

  it("wait_for sees an event that arrives at the sink later", function()
    local sink = events.sink()
    task.spawn(function()
      task.sleep(0.02)
      http.post(sink.url, { json = ev("late.arrival", "prefect.deployment.7") })
    end)
    local got = events.wait_for({ event = "late.arrival" }, 10)
    assert.are.equal("prefect.deployment.7", got.resource["prefect.resource.id"])
    sink:close()
  end)
end)
