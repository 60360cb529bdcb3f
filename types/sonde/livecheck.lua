---@meta sonde.livecheck
-- LuaLS definitions of sonde.livecheck (see README "Editors").

---@alias sonde.livecheck.State "INIT"|"PASS"|"FAIL"|"ERROR"|"TIMEOUT"|"STALL"|"SKIP"

---The options of livecheck.app.
---@class sonde.livecheck.AppOptions
---@field id string? (default "livecheck")
---@field port integer? (default 9999; 0 picks a free one)
---@field host string? (default "127.0.0.1")
---@field report string|fun(report: sonde.livecheck.Report)|false? a JSON-lines file, an http(s) URL to POST to, a function, or false for none
---@field log fun(message: string)|false? where log lines go (default stderr)
---@field bus table? how signals travel between processes (default in-process)

---The options of app:case (faust's defaults).
---@class sonde.livecheck.CaseOptions
---@field name string
---@field probability number? of maybe_trigger starting an execution (default 0.5)
---@field warn_stalled_after number? seconds without a test before STALL (default 1800)
---@field frequency number? seconds between make_fake_request calls
---@field test_expires number? seconds (default 10800)
---@field max_consecutive_failures integer? that fail the suite (default 30)
---@field state_transition_delay number? seconds reports and recovery are held off after a failure (default 60)
---@field max_history integer? (default 100)
---@field signals string[]? the names of case.signals
---@field url_timeout_total number? (default 300)
---@field url_timeout_connect number?
---@field url_error_retries integer? (default 10)
---@field url_error_delay_min number? (default 0.5)
---@field url_error_delay_backoff number? (default 1.5)
---@field url_error_delay_max number? (default 5)
---@field active boolean? an inactive case skips (default true)

---What every finished execution reports.
---@class sonde.livecheck.Report
---@field case_name string
---@field state sonde.livecheck.State
---@field test table? the execution (id, case_name, timestamp, expires, args)
---@field runtime number?
---@field signal_latency table<string, number>?
---@field error string?
---@field traceback string?

---One run of a case.
---@class sonde.livecheck.Execution
---@field id string
---@field case_name string
---@field timestamp number epoch seconds
---@field expires number epoch seconds
---@field args any[]
local Execution = {}
---Waits for the execution's report.
---@param timeout number?
---@return sonde.livecheck.Report
function Execution:wait(timeout) end

---@class sonde.livecheck.Signal
---@field name string
local Signal = {}
---Publishes the signal for key (default: the current test's id).
---@param value any
---@param opts {key: string?}?
function Signal:send(value, opts) end
---The value sent; the timeout is exact, and raises a TIMEOUT outcome.
---@param opts {key: string?, timeout: number?}?
---@return any
function Signal:wait(opts) end

---@class sonde.livecheck.Case
---@field name string
---@field app sonde.livecheck.App
---@field status sonde.livecheck.State
---@field signals table<string, sonde.livecheck.Signal>
---@field consecutive_failures integer
---@field total_failures integer
---@field run fun(self: sonde.livecheck.Case, ...)? define it: the check itself
---@field make_fake_request fun(self: sonde.livecheck.Case)? define it to make traffic every `frequency` seconds
local Case = {}
---Starts an execution now, in its own task (id defaults to a UUID).
---@param id string?
---@return sonde.livecheck.Execution
function Case:trigger(id, ...) end
---With `probability`, triggers and calls fn(execution) with that test
---current; otherwise calls fn(nil).
---@param id string?
---@param fn fun(x: sonde.livecheck.Execution?)
function Case:maybe_trigger(id, fn, ...) end
---GET with faust's retries and backoff; nil once retries ran out (the suite then fails).
---@param url string
---@param opts sonde.http.RequestOptions?
---@return string? body
function Case:get_url(url, opts) end
---POST with faust's retries and backoff; nil once retries ran out.
---@param url string
---@param opts sonde.http.RequestOptions?
---@return string? body
function Case:post_url(url, opts) end

---@class sonde.livecheck.App
---@field id string
---@field url string? once started
---@field cases table<string, sonde.livecheck.Case>
local App = {}
---@param opts sonde.livecheck.CaseOptions
---@return sonde.livecheck.Case
function App:case(opts) end
---Serves POST /signal, GET /status and GET / at app.url, and starts every case's timers.
function App:start() end
---Stops the timers, lets in-flight executions finish (up to grace seconds,
---then cancels them), flushes reports and closes the server.
---@param grace number? (default 30)
function App:stop(grace) end
---Names of the cases whose state is not OK.
---@return string[]
function App:failing() end
---Per-case state, counters and medians (what GET /status serves).
---@return table
function App:status() end

local livecheck = {}

---The class of apps.
livecheck.App = App
---The states a case or report can be in, by name.
livecheck.State = { INIT = "INIT", PASS = "PASS", FAIL = "FAIL", ERROR = "ERROR", TIMEOUT = "TIMEOUT",
  STALL = "STALL", SKIP = "SKIP" }

---An app (faust's LiveCheck without Kafka).
---@param opts sonde.livecheck.AppOptions
---@return sonde.livecheck.App
function livecheck.app(opts) end

---The execution running in this task, or nil.
---@return sonde.livecheck.Execution?
function livecheck.current_test() end

---The four LiveCheck-Test-* headers of the current test, or nil: sonde.http
---sends them with every request made inside an execution.
---@return table<string, string>?
function livecheck.context_headers() end

---Makes the handler's task run with the test the headers name, or with none
---when they name none (sonde.server calls it for every request, as faust's
---middleware).
---@param headers table<string, string>
function livecheck.enter_from_headers(headers) end

---ISO 8601 text of epoch seconds (UTC).
---@param epoch_seconds number
---@return string
function livecheck.iso8601(epoch_seconds) end

---A random (version 4) UUID.
---@return string
function livecheck.uuid4() end

return livecheck
