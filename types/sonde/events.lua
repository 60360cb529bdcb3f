---@meta sonde.events
-- LuaLS definitions of sonde.events (see README "Editors").

---Labels of a resource: "prefect.resource.id" and any others.
---@alias sonde.events.Resource table<string, string>

---Prefect's event.
---@class sonde.events.Event
---@field id string? a UUID (filled in when missing)
---@field occurred string? RFC 3339 time (filled in when missing)
---@field event string the event's name, e.g. "prefect.flow-run.Completed"
---@field resource sonde.events.Resource needs "prefect.resource.id"
---@field related sonde.events.Resource[]? each also with "prefect.resource.role"
---@field payload table?
---@field follows string? the id of the event this one follows

---What an assertion looks for. Labels are ANDed; a value may be a list
---(ORed); "*" at the end is a prefix match; "!" in front negates it; a label
---the resource lacks never matches. `payload` compares the given top-level
---keys by deep equality.
---@class sonde.events.Criteria
---@field event string? exact
---@field resource table<string, string|string[]>?
---@field related table<string, string|string[]>[]? each must match some related resource
---@field payload table?

---@class sonde.events.Client
---@field is_open boolean
local Client = {}
function Client:open() end
function Client:close() end
---Records ev (raises when the client is not open).
---@param ev sonde.events.Event
---@return sonde.events.Event recorded with id and occurred filled in
function Client:emit(ev) end

---An HTTP endpoint a system under test posts its events to.
---@class sonde.events.Sink
---@field url string the endpoint (base_url .. path)
---@field base_url string
---@field port integer
---@field server sonde.server.Server
local Sink = {}
---@param grace number?
function Sink:close(grace) end

local events = {}

---Labels a resource may have (500, as Prefect).
events.MAX_LABELS = 500
---Related resources an event may have (100).
events.MAX_RELATED = 100
---Characters of an event's name (1024).
events.MAX_EVENT_NAME = 1024
---Candidates a failure message describes one by one (20).
events.MAX_LISTED = 20
---wait_for's timeout when none is given (10 seconds).
events.DEFAULT_WAIT = 10

---A closed client; c:open() before emitting.
---@return sonde.events.Client
function events.client() end

---fn(c) with an open client, closed afterwards however fn ends.
---@param fn fun(c: sonde.events.Client): ...
---@return any ...
function events.with_client(fn) end

---A copy of every event recorded since the last reset, oldest first.
---@return sonde.events.Event[]
function events.emitted() end

---@return integer
function events.count() end

---Drops every recorded event (the runner does it between tests).
function events.reset() end

---The newest matching event, or a failure listing the criteria, the number
---of events and per candidate its first failing criterion.
---@param criteria sonde.events.Criteria
---@return sonde.events.Event
function events.assert_emitted_event_with(criteria) end

---Fails when an event matches.
---@param criteria sonde.events.Criteria
function events.assert_no_emitted_event_with(criteria) end

---@param count integer
function events.assert_emitted_event_count(count) end

---The newest matching event already recorded, else the first to arrive;
---raises a timeout error that lists what did arrive.
---@param criteria sonde.events.Criteria {} waits for any event
---@param timeout number? (default 10)
---@return sonde.events.Event
function events.wait_for(criteria, timeout) end

---An endpoint (POST one event or a list) whose events are recorded like
---emitted ones; a request with a malformed event is refused whole with 400.
---@param opts {port: integer?, host: string?, path: string?, max_body: integer?}?
---@return sonde.events.Sink
function events.sink(opts) end

---A new, complete event (id and occurred filled in), or nil and why it is
---malformed. Records nothing.
---@param ev any
---@return sonde.events.Event?, string? why
function events.validate(ev) end

---The validated events, or nil and the reason naming the first bad one.
---@param list any[]
---@return sonde.events.Event[]?, string? why
function events.validate_all(list) end

---Validates an event that arrived from outside and records it as if
---emitted; a malformed event raises at the caller's line.
---@param ev sonde.events.Event
---@return sonde.events.Event
function events.record(ev) end

---Records all or nothing: a bad element raises before any is recorded.
---@param list sonde.events.Event[]
---@return sonde.events.Event[]
function events.record_all(list) end

---record_all that returns nil and the reason instead of raising.
---@param list any[]
---@return sonde.events.Event[]?, string? why
function events.try_record_all(list) end

---The sink's answer to a POST of one event or a list of them (what
---events.sink's route calls): 202 and the number recorded, or 400 and why,
---with nothing recorded.
---@param req table a sonde.server request (req.body is its text)
---@return table response {status=, json=}
function events.receive(req) end

---A random (version 4) UUID.
---@return string
function events.uuid4() end

---"2024-05-01T12:00:00.250000Z" (UTC, microseconds).
---@param epoch_seconds number
---@return string
function events.rfc3339(epoch_seconds) end

---v as one line of JSON-like text, cut at `limit` characters.
---@param v any
---@param limit integer?
---@return string
function events.repr(v, limit) end

return events
