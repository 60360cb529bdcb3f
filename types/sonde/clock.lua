---@meta sonde.clock
-- LuaLS definitions of sonde.clock (see README "Editors").

---The options of clock.mocked and clock.virtual.
---@class sonde.clock.Options
---@field start_time number? the virtual time at the start (task.time() reads it too) (default 0)
---@field precision number? seconds per step (default 0.1; clock.virtual: exact)
---@field autojump boolean? when no task can run and nothing real is in flight, jump to the next deadline (default true)
---@field runaway_limit integer? timer firings without real progress before it raises (default clock.RUNAWAY_LIMIT)

---A mocked clock (machinery's mocked_call_later).
---@class sonde.clock.Mocked
---@field called_times number[] the virtual times at which timers fired
local Mocked = {}
---The clock's time (frozen once closed).
---@return number
function Mocked:now() end
---Moves time forward round(seconds/precision) steps, firing every timer
---that falls due on the way, in deadline order, each woken task running to
---its next wait before the next fires.
---@param seconds number
function Mocked:add(seconds) end
---Back to real time (also done when the test ends). Closing twice does nothing.
function Mocked:close() end

---Futures that fall in order (machinery's future_dominos); futs[i] is domino i.
---@class sonde.clock.Dominos
---@field started sonde.Event
---@field finished sonde.Event
---@field [integer] sonde.Future
local Dominos = {}
---The dominos may start falling.
function Dominos:begin() end
---Stops the knocker, sets finished, and fails when a domino was never
---retrieved or never fell (unless quiet). Also run at test end.
---@param quiet boolean?
function Dominos:close(quiet) end

---A timer clock.pending lists.
---@class sonde.clock.PendingTimer
---@field deadline number
---@field remaining number seconds
---@field clock "virtual"|"real"
---@field kind "sleep"|"timeout"
---@field task sonde.Task?
---@field at string "file:line" of the wait

local clock = {}

---Timer firings by autojump without real progress after which a clock decides it spins (100000).
clock.RUNAWAY_LIMIT = 100000

---A mocked clock: virtual time from start_time in steps of precision, for
---task.sleep, task.now, task.time, timeouts and every timer of the loop;
---real I/O stays real.
---@param opts sonde.clock.Options?
---@return sonde.clock.Mocked
function clock.mocked(opts) end

---Runs fn(...) under a fresh autojumping clock (time jumps to each deadline
---exactly) and restores real time after: task.sleep(3600) returns at once.
---@param opts_or_fn sonde.clock.Options|function
---@param ... any fn and its arguments, after the options
---@return any ...
function clock.virtual(opts_or_fn, ...) end

---The open mocked clock, or nil.
---@return sonde.clock.Mocked?
function clock.current() end

---Runs fn with sleeps that do not wait and checks that they add up to
---`seconds`: slept - extra <= seconds <= slept + runtime + extra. Failure:
---"slept for X; expected S with tolerance of +A, -B".
---@param seconds number
---@param fn function
---@param opts {extra_tolerance: number?}?
---@return any ...
function clock.assert_sleeps_for(seconds, fn, opts) end

---N futures that fall strictly in order after futs:begin(). With fn, runs
---fn(futs), closes them after (checks included) and returns fn's results.
---@param opts {expected: integer}
---@param fn fun(futs: sonde.clock.Dominos)?
---@return sonde.clock.Dominos|any
function clock.dominos(opts, fn) end

---Every pending timer, soonest first; printing the list shows one line per timer.
---@return sonde.clock.PendingTimer[]
function clock.pending() end

return clock
