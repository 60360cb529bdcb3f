-- sonde.events: Prefect's event model and its asserting events client.
--
-- An event is {id, occurred, event, resource, related, payload, follows}; a
-- resource is a map of string labels that has `prefect.resource.id`, a
-- related resource also has `prefect.resource.role`. Events emitted by any
-- client (or recorded from outside, by the HTTP sink) land in one list, the
-- class-level view that the assertions search, newest first. Matching
-- follows Prefect's ResourceSpecification (client side): labels ANDed, a
-- list of values ORed, a trailing `*` for a prefix, a leading `!` to negate
-- one value, and a label the resource lacks never matches.
local task = require("sonde.task")
local json = require("sonde.json")
local diff = require("sonde.runner.diff")
local pretty = require("sonde.lib.pretty")

local M = {}

-- Prefect's defaults for the same limits.
M.MAX_LABELS = 500
M.MAX_RELATED = 100
M.MAX_EVENT_NAME = 1024
-- Candidates a failure message describes one by one; the rest are counted.
M.MAX_LISTED = 20
-- wait_for's timeout when none is given, as Prefect's process_events.
M.DEFAULT_WAIT = 10

local type, pairs, ipairs, next, tostring, error = type, pairs, ipairs, next, tostring, error
local format, concat = string.format, table.concat

-- ------------------------------------------------------------------ state

local recorded = {} -- every event since the last reset, oldest first
local generation = 0 -- bumped by reset, so a waiting wait_for rescans
local arrived = task.event() -- set by every record; wait_for clears it

local stamp = require("sonde.lib.stamp")
M.uuid4, M.rfc3339 = stamp.uuid4, stamp.rfc3339 -- as before: events.uuid4(), events.rfc3339(t)
local is_rfc3339, UUID_PATTERN = stamp.is_rfc3339, stamp.UUID_PATTERN


-- ------------------------------------------------------- showing values

-- repr(v[, limit]) -> v on one line, as sonde.lib.pretty shows values.
M.repr = pretty.line
local is_matcher, key_less = pretty.is_matcher, diff.key_less

local function is_list(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end
local repr = M.repr

local function key_path(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return "." .. k end
  if type(k) == "number" then return "[" .. diff.show(k) .. "]" end
  return "[" .. format("%q", tostring(k)) .. "]"
end

-- ------------------------------------------------------------- validation

-- type(v), except that JSON's null (from a decoded body) says "null".
local function type_name(v)
  if v == json.null then return "null" end
  return type(v)
end

local FIELDS = { id = true, occurred = true, event = true, resource = true, related = true, payload = true,
  follows = true, received = true }
local FIELD_LIST = "id, occurred, event, resource, related, payload, follows, received"

-- Checks a label map; returns the number of labels, or nil and a reason.
local function check_labels(labels, where)
  if type(labels) ~= "table" then
    return nil, format("%s must be a table of string labels, got %s", where, type_name(labels))
  end
  local n = 0
  for k, v in pairs(labels) do
    n = n + 1
    if type(k) ~= "string" then
      return nil, format("%s: label names must be strings, got %s %s", where, type(k), repr(k, 40))
    end
    if type(v) ~= "string" then
      return nil, format("%s: label %s must be a string, got %s", where, repr(k, 60), type_name(v))
    end
  end
  if n > M.MAX_LABELS then
    return nil, format("%s: The maximum number of labels per resource is %d", where, M.MAX_LABELS)
  end
  return n
end

local function check_resource(resource, where, needs_role)
  local _, reason = check_labels(resource, where)
  if reason then return reason end
  local id = resource["prefect.resource.id"]
  if id == nil then
    return where .. (needs_role and ": Related Resources" or ": Resources") ..
      " must include the prefect.resource.id label"
  end
  if id == "" then return where .. ": The prefect.resource.id label must be non-empty" end
  if needs_role then
    local role = resource["prefect.resource.role"]
    if role == nil then return where .. ": Related Resources must include the prefect.resource.role label" end
    if role == "" then return where .. ": The prefect.resource.role label must be non-empty" end
  end
end

local function check_related(related)
  if type(related) ~= "table" then return "related must be a list of resources, got " .. type_name(related) end
  local n = #related
  for k in pairs(related) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
      return "related must be a list of resources, but it has the key " .. repr(k, 60)
    end
  end
  if n > M.MAX_RELATED then return format("The maximum number of related resources is %d", M.MAX_RELATED) end
  for i = 1, n do
    local reason = check_resource(related[i], format("related[%d]", i), true)
    if reason then return reason end
  end
end

local function check_payload(payload)
  if type(payload) ~= "table" then return "payload must be a table (a JSON object), got " .. type_name(payload) end
  for k in pairs(payload) do
    if type(k) ~= "string" then return "payload keys must be strings (a JSON object), got the key " .. repr(k, 60) end
  end
end

local function check_name(name)
  if name == nil then return "the event name (field `event`) is missing" end
  if type(name) ~= "string" then return "the event name (field `event`) must be a string, got " .. type_name(name) end
  if name == "" then return "the event name (field `event`) must be non-empty" end
  if #name > M.MAX_EVENT_NAME then return format("Event name must be at most %d characters", M.MAX_EVENT_NAME) end
end

-- A timestamp field: an RFC 3339 string, or epoch seconds turned into one.
local LAST_EPOCH = 253402300800 -- 10000-01-01: RFC 3339 has four-digit years

local function timestamp(v, field)
  if type(v) == "number" and v >= 0 and v < LAST_EPOCH then return M.rfc3339(v) end
  if type(v) == "string" and is_rfc3339(v) then return v end
  return nil, format("%s must be an RFC 3339 timestamp or epoch seconds, got %s", field, repr(v, 60))
end

local function uuid_field(v, field)
  if type(v) == "string" and v:match(UUID_PATTERN) then return v end
  return nil, format("%s must be a UUID string, got %s", field, repr(v, 60))
end

local function check_fields(ev)
  for k in pairs(ev) do
    if not FIELDS[k] then
      return format("unknown field %s (an event has: %s)", repr(k, 60), FIELD_LIST)
    end
  end
  return check_name(ev.event)
    or (ev.resource == nil and "the resource is missing (a table with a prefect.resource.id label)")
    or check_resource(ev.resource, "resource", false)
    or (ev.related ~= nil and check_related(ev.related))
    or (ev.payload ~= nil and check_payload(ev.payload))
    or nil
end

-- validate(ev) -> a new, complete event (id and occurred filled in when
-- missing), or nil and the reason it is malformed. Records nothing.
function M.validate(ev)
  if type(ev) ~= "table" then return nil, "an event must be a table, got " .. type_name(ev) end
  local reason = check_fields(ev)
  if reason then return nil, reason end
  local out = { event = ev.event, resource = ev.resource, related = ev.related or {}, payload = ev.payload or {} }
  local err
  if ev.id == nil then out.id = M.uuid4() else out.id, err = uuid_field(ev.id, "id") end
  if err then return nil, err end
  if ev.occurred == nil then
    out.occurred = M.rfc3339(task.time())
  else
    out.occurred, err = timestamp(ev.occurred, "occurred")
  end
  if err then return nil, err end
  if ev.follows ~= nil and ev.follows ~= json.null then out.follows, err = uuid_field(ev.follows, "follows") end
  if err then return nil, err end
  if ev.received ~= nil then out.received, err = timestamp(ev.received, "received") end
  if err then return nil, err end
  return out
end

-- validate_all(list) -> the validated events, or nil and the reason naming
-- the first bad one ("event 2 of 3: ...").
function M.validate_all(list)
  if type(list) ~= "table" then return nil, "expected a list of events, got " .. type_name(list) end
  local n = #list
  for k in pairs(list) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
      return nil, "expected a list of events, but it has the key " .. repr(k, 60)
    end
  end
  local out = {}
  for i = 1, n do
    local ev, reason = M.validate(list[i])
    if not ev then return nil, format("event %d of %d: %s", i, n, reason) end
    out[i] = ev
  end
  return out
end

-- ---------------------------------------------------------------- recording

local function store(ev)
  recorded[#recorded + 1] = ev
  arrived:set()
end

-- record_valid(what, ev) -> the recorded event: a malformed one raises
-- "WHAT: malformed event: ..." at the line that called record_valid's
-- caller.
local function record_valid(what, ev)
  local out, reason = M.validate(ev)
  if not out then error(what .. ": malformed event: " .. reason, 3) end
  store(out)
  return out
end

-- record(ev) -> the recorded event: validates an event that arrived from
-- outside (the sink) and records it as if emitted. A malformed event raises
-- at the caller's line.
function M.record(ev)
  local out = record_valid("events.record", ev)
  return out -- not a tail call: the level record_valid raises at counts this frame
end

-- record_all(list) -> the recorded events: all or nothing; a bad element
-- raises before any of the list is recorded.
function M.record_all(list)
  local out, reason = M.try_record_all(list)
  if not out then error("events.record_all: malformed event list, nothing recorded: " .. reason, 2) end
  return out
end

-- try_record_all(list) -> the recorded events, or nil and the reason
-- (nothing recorded): for the sink, which answers 400 with the reason.
function M.try_record_all(list)
  local out, reason = M.validate_all(list)
  if not out then return nil, reason end
  for i = 1, #out do store(out[i]) end
  return out
end

-- emitted() -> a copy of every event recorded since the last reset, oldest first.
function M.emitted()
  local copy = {}
  for i = 1, #recorded do copy[i] = recorded[i] end
  return copy
end

function M.count() return #recorded end

-- reset(): drops every recorded event (clients stay usable, as in Prefect,
-- where tests call reset mid-test to drop setup events).
function M.reset()
  recorded = {}
  generation = generation + 1
end

-- Between tests (the runner calls it): the events of the last test are gone.
function M._test_reset() M.reset() end

-- ----------------------------------------------------------------- clients

local Client = {}
Client.__index = Client
Client.__tostring = function(c) return "events client (" .. (c.is_open and "open" or "closed") .. ")" end

-- client() -> c, closed until c:open().
function M.client()
  return setmetatable({ is_open = false, was_opened = false }, Client)
end

local function check_self(c, method)
  if getmetatable(c) ~= Client then error(format("%s: call it as c:%s(...), with a colon", method, method), 3) end
end

function Client:open()
  check_self(self, "open")
  self.is_open, self.was_opened = true, true
  return self
end

function Client:close()
  check_self(self, "close")
  self.is_open = false
end

-- emit(ev) -> the recorded event, with id and occurred filled in.
function Client:emit(ev)
  check_self(self, "emit")
  if not self.is_open then
    error("emit: events may only be emitted while the client is open (" ..
      (self.was_opened and "this client was closed" or "call c:open() first, or use events.with_client(fn)") .. ")", 2)
  end
  local out = record_valid("emit", ev)
  return out -- not a tail call, as in M.record
end

-- with_client(fn) -> fn's results: fn(c) runs with an open client that is
-- closed afterwards, however fn ends.
function M.with_client(fn)
  if type(fn) ~= "function" then error("events.with_client: expected a function, got " .. type(fn), 2) end
  local c = M.client():open()
  local r = task.pack(pcall(fn, c))
  c:close()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

-- ------------------------------------------------------- criteria (specs)

local CRITERIA = { event = true, resource = true, related = true, payload = true }

-- One label's accepted values: {neg, prefix, text} each, ORed.
local function compile_value(v)
  local neg = v:sub(1, 1) == "!"
  if neg then v = v:sub(2) end
  local prefix = v:sub(-1) == "*"
  if prefix then v = v:sub(1, -2) end
  return { neg = neg, prefix = prefix, text = v }
end

-- compile_labels(spec, where) -> {{label, values, raw}...} sorted by label,
-- or nil and a reason. An empty spec (no labels) matches every resource.
local function compile_labels(spec, where)
  if type(spec) ~= "table" then
    return nil, format("%s must be a table of label = value (or list of values), got %s", where, type(spec))
  end
  local labels = {}
  for label, v in pairs(spec) do
    if type(label) ~= "string" then
      return nil, format("%s must map label names to values, got the key %s", where, repr(label, 60))
    end
    local values = {}
    if type(v) == "string" then
      values[1] = compile_value(v)
    elseif type(v) == "table" and is_list(v) then
      for i, s in ipairs(v) do
        if type(s) ~= "string" then
          return nil, format("%s[%s][%d] must be a string, got %s", where, repr(label, 60), i, type(s))
        end
        values[i] = compile_value(s)
      end
    else
      return nil, format("%s[%s] must be a string or a list of strings, got %s", where, repr(label, 60), type(v))
    end
    labels[#labels + 1] = { label = label, values = values, raw = v }
  end
  table.sort(labels, function(a, b) return a.label < b.label end)
  return labels
end

local function compile_related(related)
  if type(related) ~= "table" or not is_list(related) then
    return nil, 'related must be a list of resource specs, e.g. related = {{["prefect.resource.role"] = "flow"}}, '
      .. "got " .. (type(related) == "table" and "a table with non-list keys" or type(related))
  end
  local specs = {}
  for i, spec in ipairs(related) do
    local labels, reason = compile_labels(spec, format("related[%d]", i))
    if not labels then return nil, reason end
    specs[i] = labels
  end
  return specs
end

-- compile(criteria) -> a spec for match(), or nil and a reason. As in
-- Prefect, an empty resource/related/payload is no constraint.
local function compile(criteria)
  if criteria == nil then criteria = {} end
  if type(criteria) ~= "table" then
    return nil, "expected a table of criteria {event=, resource=, related=, payload=}, got " .. type(criteria)
  end
  for k in pairs(criteria) do
    if not CRITERIA[k] then
      return nil, format("unknown criterion %s (expected event, resource, related or payload)", repr(k, 60))
    end
  end
  local spec, reason = { criteria = criteria }
  if criteria.event ~= nil and type(criteria.event) ~= "string" then
    return nil, "event must be the exact event name (a string), got " .. type_name(criteria.event)
  end
  spec.event = criteria.event
  if criteria.resource ~= nil then
    spec.resource, reason = compile_labels(criteria.resource, "resource")
    if reason then return nil, reason end
    if #spec.resource == 0 then spec.resource = nil end
  end
  if criteria.related ~= nil then
    spec.related, reason = compile_related(criteria.related)
    if reason then return nil, reason end
    if #spec.related == 0 then spec.related = nil end
  end
  if criteria.payload ~= nil then
    if type(criteria.payload) ~= "table" then
      return nil, "payload must be a table of top-level keys to compare, got " .. type(criteria.payload)
    end
    local keys = {}
    for k in pairs(criteria.payload) do
      if type(k) ~= "string" then
        return nil, "payload must map top-level keys (strings) to expected values, got the key " .. repr(k, 60)
      end
      keys[#keys + 1] = k
    end
    table.sort(keys, key_less)
    if #keys > 0 then spec.payload, spec.payload_keys = criteria.payload, keys end
  end
  return spec
end

-- ---------------------------------------------------------------- matching

local function value_matches(p, value)
  local ok
  if p.prefix then ok = value:sub(1, #p.text) == p.text else ok = value == p.text end
  if p.neg then return not ok end
  return ok
end

-- A label the resource lacks never matches, not even a negated value.
local function label_matches(l, labels)
  local value = labels[l.label]
  if value == nil then return false end
  local values = l.values
  for i = 1, #values do
    if value_matches(values[i], value) then return true end
  end
  return false
end

local function labels_match(spec, labels)
  for i = 1, #spec do
    if not label_matches(spec[i], labels) then return false end
  end
  return true
end

local function some_related_matches(spec, related)
  for i = 1, #related do
    if labels_match(spec, related[i]) then return true end
  end
  return false
end

-- Prefect compares with payload.get(k) != v, so an expected null (None)
-- also matches a missing key. Tables compare deeply; luassert matchers
-- (match.is_number() ...) are applied.
local function payload_value_matches(expected, actual)
  if expected == actual then return true end
  if expected == json.null and actual == nil then return true end
  if type(expected) ~= "table" then return false end
  return #diff.compare(expected, actual) == 0
end

-- first_failure(spec, ev) -> nil when ev matches, else what failed first:
-- "event", "resource", "related", i (the related spec) or "payload", key.
local function first_failure(spec, ev)
  if spec.event ~= nil and ev.event ~= spec.event then return "event" end
  if spec.resource and not labels_match(spec.resource, ev.resource) then return "resource" end
  local related = spec.related
  if related then
    for i = 1, #related do
      if not some_related_matches(related[i], ev.related) then return "related", i end
    end
  end
  local keys = spec.payload_keys
  if keys then
    for i = 1, #keys do
      local k = keys[i]
      if not payload_value_matches(spec.payload[k], ev.payload[k]) then return "payload", k end
    end
  end
  return nil
end

-- find_newest(spec, first, last) -> index of the newest match in recorded[first..last].
local function find_newest(spec, first, last)
  for i = last, first, -1 do
    if first_failure(spec, recorded[i]) == nil then return i end
  end
end

-- ----------------------------------------------------------------- reports

local function criteria_lines(spec, out)
  local c = spec.criteria
  out[#out + 1] = "    event=" .. (c.event == nil and "nil" or repr(c.event))
  out[#out + 1] = "    resource=" .. (c.resource == nil and "nil" or repr(c.resource))
  out[#out + 1] = "    related=" .. (c.related == nil and "nil" or repr(c.related))
  out[#out + 1] = "    payload=" .. (c.payload == nil and "nil" or repr(c.payload))
end

local function describe_event(ev)
  return format("%s on %s (id %s, occurred %s)", repr(ev.event, 120),
    repr(ev.resource["prefect.resource.id"], 120), ev.id, ev.occurred)
end

-- Expected/Received texts for the criterion an event failed first, as the
-- seed prints them.
local function expected_received(spec, ev, what, which)
  if what == nil then return "(this event matches)", repr(ev, 400) end
  if what == "event" then return "event=" .. repr(spec.event), "event=" .. repr(ev.event) end
  if what == "resource" then return "resource=" .. repr(spec.criteria.resource), "resource=" .. repr(ev.resource) end
  if what == "related" then
    return format("related[%d]=%s (matching some related resource)", which, repr(spec.criteria.related[which])),
      "related=" .. repr(ev.related)
  end
  return format("payload%s=%s", key_path(which), repr(spec.payload[which])),
    "payload=" .. repr(ev.payload)
end

local function label_diff_lines(spec, labels, path, out)
  for _, l in ipairs(spec) do
    if not label_matches(l, labels) then
      local got = labels[l.label]
      local expected = type(l.raw) == "table" and ("one of " .. repr(l.raw)) or repr(l.raw)
      if got == nil then
        out[#out + 1] = format("%s[%q]: missing (expected %s)", path, l.label, expected)
      else
        out[#out + 1] = format("%s[%q]: expected %s, got %s", path, l.label, expected, repr(got, 120))
      end
    end
  end
end

local function count_matching_labels(spec, labels)
  local n = 0
  for _, l in ipairs(spec) do
    if label_matches(l, labels) then n = n + 1 end
  end
  return n
end

-- Index of the related resource that meets most labels of spec (first on ties).
local function nearest_related(spec, related)
  local best, best_n = nil, -1
  for i, r in ipairs(related) do
    local n = count_matching_labels(spec, r)
    if n > best_n then best, best_n = i, n end
  end
  return best
end

local function payload_diff_lines(spec, ev, out)
  for _, k in ipairs(spec.payload_keys or {}) do
    local e, a = spec.payload[k], ev.payload[k]
    if not payload_value_matches(e, a) then
      local path = "$.payload" .. key_path(k)
      if a == nil then
        out[#out + 1] = path .. ": missing (expected " .. repr(e, 120) .. ")"
      elseif is_matcher(e) then
        out[#out + 1] = path .. ": expected " .. repr(e, 120) .. ", got " .. repr(a, 120)
      else
        for _, line in ipairs(diff.compare(e, a)) do
          out[#out + 1] = line:sub(1, 1) == "$" and (path .. line:sub(2)) or line
        end
      end
    end
  end
end

-- Path-addressed differences between the criteria and one event.
local function event_diff(spec, ev)
  local out = {}
  if spec.event ~= nil and ev.event ~= spec.event then
    out[#out + 1] = format("$.event: expected %s, got %s", repr(spec.event), repr(ev.event))
  end
  if spec.resource then label_diff_lines(spec.resource, ev.resource, "$.resource", out) end
  for i, rspec in ipairs(spec.related or {}) do
    if not some_related_matches(rspec, ev.related) then
      local near = nearest_related(rspec, ev.related)
      if not near then
        out[#out + 1] = format("$.related: empty (expected a resource matching related[%d]=%s)", i,
          repr(spec.criteria.related[i]))
      else
        out[#out + 1] = format("$.related: none matches related[%d]; the nearest is $.related[%d]:", i, near)
        label_diff_lines(rspec, ev.related[near], format("$.related[%d]", near), out)
      end
    end
  end
  payload_diff_lines(spec, ev, out)
  return out
end

-- How many units of the criteria (the name, each resource label, each
-- related spec, each payload key) an event meets, to find the closest one.
local function closeness(spec, ev)
  local n = 0
  if spec.event ~= nil and ev.event == spec.event then n = n + 1 end
  if spec.resource then n = n + count_matching_labels(spec.resource, ev.resource) end
  for _, rspec in ipairs(spec.related or {}) do
    if some_related_matches(rspec, ev.related) then n = n + 1 end
  end
  for _, k in ipairs(spec.payload_keys or {}) do
    if payload_value_matches(spec.payload[k], ev.payload[k]) then n = n + 1 end
  end
  return n
end

local function total_units(spec)
  local related, keys = spec.related or {}, spec.payload_keys or {}
  return (spec.event ~= nil and 1 or 0) + (spec.resource and #spec.resource or 0) + #related + #keys
end

-- Per candidate (newest first) its first failing criterion, up to
-- MAX_LISTED of them, then counts of the rest; and the closest event's diff.
local function mismatch_report(spec, out)
  local n = #recorded
  local unlisted = {}
  local best, best_score = nil, -1
  for i = n, 1, -1 do
    local ev = recorded[i]
    local what, which = first_failure(spec, ev)
    local rank = n - i + 1
    if rank <= M.MAX_LISTED then
      local expected, received = expected_received(spec, ev, what, which)
      out[#out + 1] = ""
      out[#out + 1] = format("Candidate %d of %d: %s", rank, n, describe_event(ev))
      out[#out + 1] = "    Expected:"
      out[#out + 1] = "        " .. expected
      out[#out + 1] = "    Received:"
      out[#out + 1] = "        " .. received
    else
      unlisted[what or "nothing"] = (unlisted[what or "nothing"] or 0) + 1
    end
    local score = closeness(spec, ev)
    if score > best_score then best, best_score = i, score end
  end
  if n > M.MAX_LISTED then
    local parts = {}
    for _, what in ipairs({ "event", "resource", "related", "payload" }) do
      if unlisted[what] then parts[#parts + 1] = format("%d on %s", unlisted[what], what) end
    end
    out[#out + 1] = ""
    out[#out + 1] = format("... and %d older candidates not shown (first mismatch: %s)", n - M.MAX_LISTED,
      concat(parts, ", "))
  end
  if best then
    out[#out + 1] = ""
    out[#out + 1] = format("Closest event (candidate %d, meets %d of %d criteria): %s", n - best + 1, best_score,
      total_units(spec), describe_event(recorded[best]))
    for _, line in ipairs(event_diff(spec, recorded[best])) do out[#out + 1] = "    " .. line end
  end
end

-- ---------------------------------------------------------------- assertions

local fail = require("sonde.lib.test_hooks").fail -- a spec failure inside the runner

local function compile_or_raise(criteria, fn_name)
  local spec, reason = compile(criteria)
  if not spec then error(format("events.%s: %s", fn_name, reason), 3) end
  return spec
end

-- assert_emitted_event_with{event=, resource=, related=, payload=} -> the
-- newest matching event, or a failure describing every candidate.
function M.assert_emitted_event_with(criteria)
  local spec = compile_or_raise(criteria, "assert_emitted_event_with")
  local i = find_newest(spec, 1, #recorded)
  if i then return recorded[i] end
  local out = { "An event was not emitted matching the following criteria:" }
  criteria_lines(spec, out)
  out[#out + 1] = ""
  out[#out + 1] = "# of captured events: " .. #recorded
  mismatch_report(spec, out)
  fail(concat(out, "\n"), 2)
end

function M.assert_no_emitted_event_with(criteria)
  local spec = compile_or_raise(criteria, "assert_no_emitted_event_with")
  local i = find_newest(spec, 1, #recorded)
  if not i then return end
  local out = { "An event was emitted matching the given criteria:" }
  criteria_lines(spec, out)
  out[#out + 1] = ""
  out[#out + 1] = "# of captured events: " .. #recorded
  out[#out + 1] = format("Matching event (candidate %d, newest first): %s", #recorded - i + 1,
    describe_event(recorded[i]))
  out[#out + 1] = "    " .. repr(recorded[i], 2000)
  fail(concat(out, "\n"), 2)
end

local function list_events(out)
  local n = #recorded
  for i = n, math.max(1, n - M.MAX_LISTED + 1), -1 do
    out[#out + 1] = "    " .. describe_event(recorded[i])
  end
  if n > M.MAX_LISTED then out[#out + 1] = format("    ... and %d older", n - M.MAX_LISTED) end
end

function M.assert_emitted_event_count(count)
  if type(count) ~= "number" or count < 0 or count % 1 ~= 0 then
    error("events.assert_emitted_event_count: expected a whole number >= 0, got " .. repr(count, 60), 2)
  end
  if #recorded == count then return end
  local out = { format("The number of emitted events did not match the expected count: " ..
    "total_num_events=%d != count=%d", #recorded, count) }
  if #recorded > 0 then out[#out + 1] = "Emitted (newest first):" end
  list_events(out)
  fail(concat(out, "\n"), 2)
end

-- ------------------------------------------------------------------ waiting

local function where(level)
  local info = debug.getinfo(level + 1, "Sl")
  if not info or info.currentline < 0 then return "" end
  return format(" (at %s:%d)", info.short_src, info.currentline)
end

local function wait_timeout(spec, timeout, at)
  local out = { format("timeout: events.wait_for%s: no event matching the criteria arrived within %gs:", at, timeout) }
  criteria_lines(spec, out)
  out[#out + 1] = ""
  out[#out + 1] = "# of captured events: " .. #recorded
  mismatch_report(spec, out)
  return task.new_error("timeout", concat(out, "\n"))
end

-- wait_for(criteria[, timeout=10]) -> the matching event: the newest one
-- already recorded, else the first to arrive. Raises a timeout error that
-- lists what did arrive.
function M.wait_for(criteria, timeout)
  if criteria == nil then -- a nil variable, most likely: waiting for any event takes {}
    error("events.wait_for: expected a table of criteria {event=, resource=, related=, payload=} ({} waits for " ..
      "any event), got nil", 2)
  end
  local spec = compile_or_raise(criteria, "wait_for")
  if timeout == nil then timeout = M.DEFAULT_WAIT end
  if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
    error("events.wait_for: timeout must be a number of seconds >= 0, got " .. repr(timeout, 60), 2)
  end
  task.need_task("events.wait_for")
  local i = find_newest(spec, 1, #recorded)
  if i then return recorded[i] end
  local deadline, seen, gen, timed_out = task.now() + timeout, #recorded, generation, false
  while true do
    -- what arrived since the last look counts even when the timer fired
    -- in the same turn as the event that woke us
    if gen ~= generation then seen, gen = 0, generation end
    for k = seen + 1, #recorded do
      if first_failure(spec, recorded[k]) == nil then return recorded[k] end
    end
    seen = #recorded
    local remaining = deadline - task.now()
    if timed_out or remaining <= 0 then error(wait_timeout(spec, timeout, where(2)), 2) end
    arrived:clear()
    local ok, e = pcall(arrived.wait, arrived, remaining)
    if not ok then
      if not task.is_timeout(e) then error(e, 0) end -- cancelled: the test ended, or someone cancelled us
      timed_out = true
    end
  end
end

-- ---------------------------------------------------------------- sink

-- receive(req) -> the sink's answer to a POST of one event or a list of
-- them: 202 and the number recorded, or 400 and why (nothing recorded).
function M.receive(req)
  local ok, body = pcall(json.decode, req.body)
  if not ok then
    local why = tostring(body):gsub("^json%.decode: ", "")
    return { status = 400, json = { error = "the body must be JSON: " .. why } }
  end
  if type(body) ~= "table" then
    return { status = 400, json = { error = "expected an event object or a list of them" } }
  end
  -- a list, or one event; cjson decodes {} and [] alike, so the text says which
  local a_list = #body > 0 or (next(body) == nil and req.body:match("^%s*%[") ~= nil)
  local list = a_list and body or { body }
  local accepted, reason = M.try_record_all(list)
  if not accepted then return { status = 400, json = { error = reason } } end
  return { status = 202, json = { recorded = #accepted } }
end

-- sink{port=0, host="127.0.0.1", path="/events"} -> an HTTP endpoint on
-- sonde.server where a system under test can POST its events (one object
-- or a list, webhook style). Accepted events are recorded like emitted
-- ones; a request with any invalid event is refused whole with 400 and the
-- reason, and nothing of it is recorded. sink.url is the full endpoint URL.
local SINK_OPTIONS = { port = "number", host = "string", path = "string", max_body = "number" }
local SINK_RANGES = { port = "port", max_body = "count" } -- sonde.lib.options' kinds

function M.sink(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("events.sink: expected a table of options, got " .. type(opts), 2) end
  for k, v in pairs(opts) do
    local want = SINK_OPTIONS[k]
    if not want then
      error(format("events.sink: unknown option %s (expected port, host, path or max_body)", repr(k, 60)), 2)
    end
    if type(v) ~= want then error(format("events.sink: %s must be a %s, got %s", k, want, repr(v, 60)), 2) end
    if SINK_RANGES[k] then require("sonde.lib.options").check_value("events.sink", k, v, SINK_RANGES[k], 2) end
  end
  local server = require("sonde.server")
  local path = opts.path or "/events"
  if path:sub(1, 1) ~= "/" then error("events.sink: path must start with '/', got " .. repr(path, 60), 2) end
  local srv = server.new { host = opts.host, port = opts.port, max_body = opts.max_body or 16 * 1024 * 1024 }
  srv:post(path, M.receive)
  local started, err = pcall(srv.start, srv)
  if not started then error("events.sink: " .. tostring(err):gsub("^.-server%.start: ", ""), 2) end
  local sink = { server = srv, url = srv.url .. path, base_url = srv.url, port = srv.port }
  function sink.close(_, grace) srv:close(grace) end
  return sink
end

require("sonde.lib.test_hooks").add(M)

return M
