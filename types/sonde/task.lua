---@meta sonde.task
-- LuaLS definitions of sonde.task (installed under share/sonde/types; see
-- README "Editors"). Checked against the module's exports by
-- specs/types_spec.lua.

---A task: a coroutine the loop resumes when what it waits on completes.
---@class sonde.Task
---@field name string? where its body is defined, e.g. "orders_spec.lua:12"
---@field state "scheduled"|"running"|"suspended"|"done"
local Task = {}

---Waits until the task finishes and returns its results, or re-raises its
---error with the task's traceback. Raises a timeout error (`kind` "timeout")
---when `timeout` seconds pass first; the task keeps running.
---@param timeout number?
---@param real boolean? the timeout runs on real time even under a virtual clock
---@return any ...
function Task:join(timeout, real) end

---Raises a cancellation inside the task at its current wait (its cleanup
---runs), or stops it before it starts.
---@param reason string?
---@return boolean running true when the task was still running
function Task:cancel(reason) end

---@return boolean
function Task:done() end

---@return boolean cancelled it finished by being cancelled
function Task:cancelled() end

---Marks the task's error as seen, so it is not reported as lost.
function Task:observe() end

---Calls cb(task) once the task is done (at once when it already is).
---@param cb fun(t: sonde.Task)
function Task:add_done_callback(cb) end

---An error the scheduler raises: a timeout, a cancellation, a deadlock.
---@class sonde.TaskError
---@field kind "timeout"|"cancelled"|"deadlock"|string
---@field message string

---@class sonde.Event
local Event = {}
function Event:set() end
function Event:clear() end
---@return boolean
function Event:is_set() end
---Waits until the event is set; raises a timeout error after `timeout` seconds.
---@param timeout number?
---@param real boolean? the timeout runs on real time even under a virtual clock
---@return true
function Event:wait(timeout, real) end

---asyncio's Future: a result or an exception, set once.
---@class sonde.Future
local Future = {}
---@param value any
function Future:set_result(value) end
---@param err any
function Future:set_exception(err) end
---@param reason string?
function Future:cancel(reason) end
---@return boolean
function Future:done() end
---@return boolean
function Future:cancelled() end
---The result; raises the exception, or raises when the future is not done.
---@return any
function Future:result() end
---@return any err the exception, or nil
function Future:exception() end
---@param cb fun(f: sonde.Future)
function Future:add_done_callback(cb) end
---Waits until the future is done: its result, or raises its exception or a timeout error.
---@param timeout number?
---@return any
function Future:wait(timeout) end

---A FIFO between tasks.
---@class sonde.Channel
local Channel = {}
---Appends v; with a capacity, waits while the channel is full.
---@param v any
---@param timeout number?
function Channel:send(v, timeout) end
---The oldest value, waiting for one; nil once the channel is closed and empty.
---@param timeout number?
---@return any
function Channel:recv(timeout) end
---No more sends; receivers drain what is buffered, then get nil.
function Channel:close() end
---@return integer
function Channel:size() end
---`for v in ch:iter() do ... end`, until the channel is closed.
---@return fun(): any
function Channel:iter() end

---Who owns what a task starts; closed when its owner ends.
---@class sonde.Scope
---@field name string?

local task = {}

---The class of task handles (task.spawn's results).
task.Task = Task
---The class of futures (task.future's results).
task.Future = Future

---Runs fn(...) as a new task in the current scope. A task a test leaves
---running is cancelled when the test ends; an error nobody joins fails it.
---@param fn function
---@param ... any
---@return sonde.Task
function task.spawn(fn, ...) end

---Waits `seconds` (virtual ones under a mocked clock); 0 yields once.
---@param seconds number
function task.sleep(seconds) end

---Monotonic seconds; follows the virtual clock when one is active.
---@return number
function task.now() end

---Epoch seconds; follows the virtual clock when one is active.
---@return number
function task.time() end

---Runs the functions concurrently and returns each one's first result; the
---first error cancels the others and is raised.
---@param ... function
---@return any ...
function task.gather(...) end

---fn(...)'s results, or raises a timeout error (message starting "timeout")
---after cancelling fn's task when it takes longer than `seconds`.
---@param seconds number
---@param fn function
---@param ... any
---@return any ...
function task.timeout(seconds, fn, ...) end

---@return sonde.Event
function task.event() end

---@return sonde.Future
function task.future() end

---A FIFO between tasks; unbounded unless `capacity` is given.
---@param capacity integer?
---@return sonde.Channel
function task.channel(capacity) end

---The running task, or nil between tasks.
---@return sonde.Task?
function task.current() end

---@param err any
---@return boolean
function task.is_cancelled(err) end

---@param err any
---@return boolean
function task.is_timeout(err) end

---Any error value in one string: strings as they are, tables through
---__tostring or their `message`, other tables as the REPL prints them.
---@param err any
---@return string
function task.describe(err) end

---Makes an error object of the scheduler's kind.
---@param kind string
---@param message string
---@param fields table? more fields of the error
---@return sonde.TaskError
function task.new_error(kind, message, fields) end

---{n = select("#", ...), ...}
---@return table
function task.pack(...) end

---Adds fn(count) to run when SIGINT/SIGTERM arrives.
---@param fn fun(count: integer)
---@return fun() remove
function task.on_interrupt(fn) end

---Runs fn(...) in the running task with what it starts (tasks, servers,
---processes) owned by `scope` rather than by the task's own.
---@param scope sonde.Scope
---@param fn function
---@return any ...
function task.in_scope(scope, fn, ...) end

---The scope that owns what the running task starts.
---@return sonde.Scope
function task.current_scope() end

---Resumes ready tasks in a seeded random order from now on (`--interleave`);
---nil or false goes back to first-queued-first.
---@param seed integer|false|nil
function task.set_interleave(seed) end

-- The scheduler's own primitives, exported for sonde's modules (the runner,
-- sonde.clock, sonde.server...); tests have no use for them.

---@package
---A new scope (the runner makes one per test and block).
---@param name string?
---@return sonde.Scope
function task.scope(name) end

---@package
---task.spawn under an explicit scope.
---@return sonde.Task
function task.spawn_in(scope, fn, ...) end

---@package
---Runs fn() as a task under `scope` at once, inside the running task, until
---it returns or first waits (the runner starts each test so).
---@return sonde.Task
function task.spawn_now(scope, fn) end

---@package
---Cancels every task still running under `scope`, lets them unwind, and
---returns the tasks whose errors nobody joined.
---@return sonde.Task[] lost
function task.close_scope(scope, why) end

---@package
---Runs fn as the root task of a fresh scope until it is done.
---@return sonde.Task t, sonde.Task[] lost
function task.run(fn, ...) end

---@package
---Runs the loop until `t` is done; a deadlock wakes t with an error.
---@param t sonde.Task
function task.run_until_done(t) end

---@package
---One turn of the loop: ready tasks, then completions (waiting for one
---when may_block). False when the loop has nothing left.
---@return boolean
function task.turn(may_block, until_done) end

---@package
---Dispatches the completions already there, without waiting.
---@return integer n
function task.poll_now() end

---@package
---How many tasks wait in the ready queue.
---@return integer
function task.ready_count() end

---@package
---fn(may_block) runs when no task is ready (sonde.clock's autojump).
---@param fn function?
function task.set_idle_hook(fn) end

---@package
---Suspends the running task until obj schedules it (task.wake); raises a
---timeout error naming `what`.
---@return any
function task.wait(obj, timeout, what) end

---@package
---Makes a task waiting through task.wait runnable with `value`.
---@param t sonde.Task
function task.wake(t, value) end

---@package
---Makes t's current wait raise err.
---@param t sonde.Task
function task.raise_in(t, err) end

---@package
---Turns skipping sleeps on or off (clock.assert_sleeps_for); reset also
---drops the skipped seconds from now() and time().
---@return number skipped
function task.skip_sleeps(on, reset) end

---@package
---A completion token whose completion calls waker (or wakes a task).
---@return integer
function task.new_token(waker) end

---@package
---A token whose completions all call fn, until drop_token.
---@return integer
function task.persistent_token(fn) end

---@package
---@param token integer
function task.drop_token(token) end

---@package
---The task a timer token wakes, or the function a completion calls.
function task.waker_of(token) end

---@package
---Sonde.clock took the timer of token out of the loop (to raise in its task
---instead of waking it): its token is free again.
---@param token integer
function task.timer_popped(token) end

---@package
---Delivers one completion of the loop to its token's waker.
function task.dispatch(token, a, b) end

---@package
---The running task; raises "WHAT must be called inside a task" otherwise.
---@return sonde.Task
function task.need_task(what) end

---@package
---Raises at the caller's line unless fn is callable.
function task.check_callable(fn, what, level) end

---@package
---Raises at the caller's line unless timeout is nil or seconds >= 0.
function task.check_timeout(timeout) end

return task
